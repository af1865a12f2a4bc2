// The servers of bench/transport.ts: our runtime's server (startServer, the
// full interceptor chain, user-token auth configured) serving one unary
// method, aviary.auth.v1.AuthService/GetJwks (public), on both of its
// listeners: connect-node and the grpc-js one (grpcJsPort). With HOP_URL the
// handler first makes one internal call, grpc.health.v1.Health/Check on the
// server at HOP_URL, over HOP_TRANSPORT (connect|grpc-js) through
// createServiceClient: one hop, with the caller's and the callee's side.
//
//   LISTENER=connect|grpc-js   which listener's URL is announced ({"url": …} on stdout)
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { HealthService } from "@aviary/runtime/health";
import { startServer } from "@aviary/runtime/server";
import { createServiceClient } from "@aviary/runtime/interceptors/client";
import { createTokenVerifier } from "@aviary/runtime/auth/verifier";
import { createLogger } from "@aviary/runtime/log";
import { startTelemetry } from "@aviary/runtime/telemetry";

const env = process.env;
const hopUrl = env["HOP_URL"];
const hopTransport = env["HOP_TRANSPORT"] === "grpc-js" ? "grpc-js" : "connect";
const back = hopUrl === undefined ? undefined : createServiceClient(HealthService, hopUrl, { transport: hopTransport, defaultTimeoutMs: 5_000 });

// Like bench/ladder-server.ts' runtime rung: the logger and telemetry a
// service has, the standard chain, a verifier that is configured (GetJwks is
// public, so it is never asked).
const server = await startServer({
  name: "transport-bench",
  port: 0,
  grpcJsPort: 0,
  routes: (router) =>
    router.service(AuthService, {
      async getJwks() {
        if (back !== undefined) await back.check({});
        return { keys: [] };
      },
    }),
  readiness: [],
  logger: createLogger("transport-bench", "warn"),
  telemetry: startTelemetry({ serviceName: "transport-bench" }),
  auth: {
    verifier: createTokenVerifier({ issuer: "aviary-auth", audience: "aviary", jwks: () => ({ keys: [] }), typ: "at+jwt" }),
    isSessionRevoked: () => Promise.resolve(false),
    publicProcedures: ["aviary.auth.v1.AuthService/GetJwks"],
  },
});
process.once("SIGTERM", () => void server.close().then(() => process.exit(0)));
console.log(JSON.stringify({ url: env["LISTENER"] === "grpc-js" ? server.grpcJsUrl : server.url }));
