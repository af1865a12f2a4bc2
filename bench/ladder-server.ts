// The reference servers of bench/ladder.ts, one per process: each answers
// grpc.health.v1.Health/Check with SERVING over cleartext HTTP/2, so every rung
// of the ladder serves the same bytes and only the server stack differs.
//
//   LADDER_SERVER=h2-stream   node:http2 stream API, fixed reply
//   LADDER_SERVER=h2-compat   node:http2 compat API (req/res), fixed reply
//   LADDER_SERVER=grpc-js     @grpc/grpc-js server, protobuf-es codec
//   LADDER_SERVER=runtime     services/runtime's server: the full interceptor chain
//
// (the bare connect-node rung is bench/noop-server.ts.) Prints {"url": …} on
// stdout like the runtime's "listening" line, and serves until killed.
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { HealthCheckRequestSchema, HealthCheckResponseSchema } from "@aviary/gen/grpc/health/v1/health_pb";
import { HealthService, ServingStatus } from "@aviary/runtime/health";
import { runService, startServer, type RunningServer } from "@aviary/runtime/server";
import { createTokenVerifier } from "@aviary/runtime/auth/verifier";
import { createLogger } from "@aviary/runtime/log";
import { startTelemetry } from "@aviary/runtime/telemetry";

/** The one reply every rung sends: a length-prefixed HealthCheckResponse{status: SERVING}. */
export const servingFrame = grpcFrame(toBinary(HealthCheckResponseSchema, create(HealthCheckResponseSchema, { status: ServingStatus.SERVING })));
export const checkPath = `/${HealthService.typeName}/Check`;

/** A gRPC length-prefixed message: flag byte 0 (uncompressed), big-endian length, the bytes. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

const announce = (port: number) => console.log(JSON.stringify({ url: `http://127.0.0.1:${port}` }));

async function main(kind: string | undefined): Promise<void> {
  switch (kind) {
    case "h2-stream": {
      const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
      server.on("stream", (stream) => {
        // Read the request to its end (a real server must), then the fixed reply.
        stream.resume();
        stream.once("end", () => {
          stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
          stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
          stream.end(servingFrame);
        });
      });
      server.listen(0, "127.0.0.1", () => announce((server.address() as AddressInfo).port));
      return;
    }
    case "h2-compat": {
      const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } }, (req, res) => {
        req.resume();
        req.once("end", () => {
          res.writeHead(200, { "content-type": "application/grpc" });
          res.addTrailers({ "grpc-status": "0" });
          res.end(servingFrame);
        });
      });
      server.listen(0, "127.0.0.1", () => announce((server.address() as AddressInfo).port));
      return;
    }
    case "grpc-js": {
      const server = new grpc.Server();
      const check: grpc.MethodDefinition<ReturnType<typeof fromBinary<typeof HealthCheckRequestSchema>>, ReturnType<typeof create<typeof HealthCheckResponseSchema>>> = {
        path: checkPath,
        requestStream: false,
        responseStream: false,
        requestSerialize: (m) => Buffer.from(toBinary(HealthCheckRequestSchema, m)),
        requestDeserialize: (b) => fromBinary(HealthCheckRequestSchema, b),
        responseSerialize: (m) => Buffer.from(toBinary(HealthCheckResponseSchema, m)),
        responseDeserialize: (b) => fromBinary(HealthCheckResponseSchema, b),
      };
      server.addService({ Check: check }, {
        Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<ReturnType<typeof create<typeof HealthCheckResponseSchema>>>) =>
          callback(null, create(HealthCheckResponseSchema, { status: ServingStatus.SERVING })),
      });
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
        if (error !== null) throw error;
        announce(port);
      });
      return;
    }
    case "runtime": {
      // Through runService, as a service's main.ts: AVIARY_PROCESSES=2 (the "runtime-2" rung) serves with two processes.
      await runService(() => startLadderRuntime(), { name: "ladder" });
      return;
    }
    default:
      throw new Error(`usage: LADDER_SERVER=h2-stream|h2-compat|grpc-js|runtime node bench/ladder-server.ts (got ${kind ?? "nothing"})`);
  }
}

// What a real service runs (startServiceBase's logger and telemetry, without
// the adapters, whose imports take seconds): the Prometheus meter, the tracer,
// user-token auth, the standard chain. Health is public, so no token is
// needed; the verifier is configured but never asked. No readiness checks:
// Check answers at once.
function startLadderRuntime(): Promise<RunningServer> {
  const base = { logger: createLogger("ladder", "info"), telemetry: startTelemetry({ serviceName: "ladder" }) };
  return startServer({
    name: "ladder",
    port: 0,
    routes: () => {},
    readiness: [],
    logger: base.logger,
    telemetry: base.telemetry,
    auth: {
      verifier: createTokenVerifier({ issuer: "aviary-auth", audience: "aviary", jwks: () => ({ keys: [] }), typ: "at+jwt" }),
      isSessionRevoked: () => Promise.resolve(false),
    },
  });
}

if (import.meta.main) {
  // A clean exit on SIGTERM, so that `--cpu-prof` (BENCH_LADDER_PROFILE) writes its profile;
  // a supervisor of several processes stops its workers first (runService does).
  if ((process.env["AVIARY_PROCESSES"] ?? "1") === "1") process.once("SIGTERM", () => process.exit(0));
  await main(process.env["LADDER_SERVER"]);
}
