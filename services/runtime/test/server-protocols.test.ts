// One port, every protocol: Connect JSON over HTTP/1.1, gRPC over h2c,
// gRPC-web, Connect over HTTP/2, and a non-Connect gRPC client (grpc-js).
import test from "ava";
import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport as createNodeGrpcWebTransport } from "@connectrpc/connect-node";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import * as grpc from "@grpc/grpc-js";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthCheckResponseSchema,
} from "@aviary/gen/grpc/health/v1/health_pb";
import type { HealthCheckRequest, HealthCheckResponse } from "@aviary/gen/grpc/health/v1/health_pb";
import { BadRequestSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { ServerReflectionRequestSchema } from "@aviary/gen/grpc/reflection/v1/reflection_pb";
import { Code, ConnectError, connectJson, http1, startFixture } from "./server-fixture.ts";
import type { Fixture } from "./server-fixture.ts";

let fx: Fixture;
test.before(async () => {
  fx = await startFixture();
});
test.after.always(async () => {
  await fx?.close();
});

const registerBody = { email: "jane@example.com", password: "correct horse battery" };

test("Connect JSON over HTTP/1.1 (what curl sends)", async (t) => {
  const res = await connectJson(fx.url, "aviary.auth.v1.AuthService/Register", registerBody);
  t.is(res.httpVersion, "1.1");
  t.is(res.status, 200, res.text);
  t.deepEqual(res.json, { userId: "u-1", identity: "jane@example.com", verificationRequired: true });
});

test("gRPC over cleartext HTTP/2 (connect-node gRPC transport)", async (t) => {
  const client = createClient(AuthService, createGrpcTransport({ baseUrl: fx.url }));
  const res = await client.register({ identity: { case: "email", value: "g@example.com" }, password: "correct horse battery" });
  t.is(res.identity, "g@example.com");
  const health = createClient(Health, createGrpcTransport({ baseUrl: fx.url }));
  t.is((await health.check({ service: "" })).status, ServingStatus.SERVING);
  t.is((await health.check({ service: "aviary.auth.v1.AuthService" })).status, ServingStatus.SERVING);
  const { statuses } = await health.list({});
  // Every served service, the runtime's own (health, reflection) included.
  t.deepEqual(Object.keys(statuses).sort(), [
    "",
    "aviary.auth.v1.AuthService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
  ]);
});

test("gRPC-web from a browser-style fetch client (HTTP/1.1) and from connect-node over HTTP/2", async (t) => {
  const web = createClient(AuthService, createGrpcWebTransport({ baseUrl: fx.url }));
  t.is((await web.register({ identity: { case: "email", value: "w@example.com" }, password: "correct horse battery" })).identity, "w@example.com");
  const web2 = createClient(AuthService, createNodeGrpcWebTransport({ baseUrl: fx.url, httpVersion: "2" }));
  t.is((await web2.register({ identity: { case: "email", value: "w2@example.com" }, password: "correct horse battery" })).identity, "w2@example.com");
});

test("Connect over HTTP/2, binary", async (t) => {
  const client = createClient(AuthService, createConnectTransport({ baseUrl: fx.url, httpVersion: "2", useBinaryFormat: true }));
  t.is((await client.register({ identity: { case: "phone", value: "+1 415 555 0123" }, password: "correct horse battery" })).identity, "+1 415 555 0123");
});

test("a plain @grpc/grpc-js client (non-Connect) can call Health/Check over h2c", async (t) => {
  const HealthClient = grpc.makeGenericClientConstructor(
    {
      Check: {
        path: "/grpc.health.v1.Health/Check",
        requestStream: false,
        responseStream: false,
        requestSerialize: (m: HealthCheckRequest) => Buffer.from(toBinary(HealthCheckRequestSchema, m)),
        requestDeserialize: (b: Buffer) => fromBinary(HealthCheckRequestSchema, b),
        responseSerialize: (m: HealthCheckResponse) => Buffer.from(toBinary(HealthCheckResponseSchema, m)),
        responseDeserialize: (b: Buffer) => fromBinary(HealthCheckResponseSchema, b),
      },
    },
    "Health",
  );
  const client = new HealthClient(`127.0.0.1:${fx.server.port}`, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  const check = (service: string) =>
    new Promise<HealthCheckResponse>((resolve, reject) => {
      const method = client["Check"] as (req: HealthCheckRequest, cb: (err: grpc.ServiceError | null, res: HealthCheckResponse) => void) => void;
      method.call(client, create(HealthCheckRequestSchema, { service }), (err, res) => (err === null ? resolve(res) : reject(err)));
    });
  t.is((await check("")).status, ServingStatus.SERVING);
  const error = await t.throwsAsync(check("no.such.Service"));
  t.is((error as grpc.ServiceError).code, grpc.status.NOT_FOUND);
});

test("unknown JSON fields are rejected as invalid_argument", async (t) => {
  const res = await connectJson(fx.url, "aviary.auth.v1.AuthService/Register", { ...registerBody, isAdmin: true });
  t.is(res.status, 400);
  t.is(res.json["code"], "invalid_argument");
});

test("field rules reject bad input with BadRequest details, over Connect JSON and gRPC", async (t) => {
  const res = await connectJson(fx.url, "aviary.auth.v1.AuthService/Register", { email: "nope", password: "short" });
  t.is(res.status, 400);
  t.is(res.json["code"], "invalid_argument");
  t.is(res.json["message"], "invalid request");
  const details = res.json["details"] as { type: string; debug?: { fieldViolations?: { field: string }[] } }[];
  t.is(details[0]?.type, "google.rpc.BadRequest");

  const client = createClient(AuthService, createGrpcTransport({ baseUrl: fx.url }));
  const error = await t.throwsAsync(client.register({ identity: { case: "email", value: "nope" }, password: "short" }));
  const ce = ConnectError.from(error);
  t.is(ce.code, Code.InvalidArgument);
  t.deepEqual(
    ce.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => [v.field, v.reason]),
    [
      ["email", "FORMAT_EMAIL"],
      ["password", "MIN_LEN"],
    ],
  );
});

test("requests over readMaxBytes are refused", async (t) => {
  const client = createClient(AuthService, createGrpcTransport({ baseUrl: fx.url }));
  const error = await t.throwsAsync(client.register({ identity: { case: "email", value: "a@example.com" }, password: "x".repeat(1_100_000) }));
  t.is(ConnectError.from(error).code, Code.ResourceExhausted);
});

test("/healthz answers 200 over HTTP/1.1 and HTTP/2; unknown paths 404", async (t) => {
  const res = await http1(fx.url, "/healthz");
  t.is(res.status, 200);
  t.deepEqual(res.json, { status: "ok" });
  const h2 = await fetchH2(fx.url, "/healthz");
  t.is(h2.status, 200);
  t.is((await http1(fx.url, "/nope")).status, 404);
  t.is((await http1(fx.url, "/healthz", { method: "POST" })).status, 405);
});

test("/metrics serves Prometheus text with the RPC metrics", async (t) => {
  await connectJson(fx.url, "aviary.auth.v1.AuthService/Register", registerBody);
  const res = await http1(fx.url, "/metrics");
  t.is(res.status, 200);
  t.regex(res.headers["content-type"] ?? "", /text\/plain/);
  t.regex(res.text, /rpc_server_requests.*rpc_method="Register".*\} \d+/);
  t.regex(res.text, /rpc_server_duration.*_bucket\{/);
  t.regex(res.text, /status="ok"/);
});

/** A minimal HTTP/2 GET, to show plain HTTP routes work over h2c too. */
async function fetchH2(url: string, path: string): Promise<{ status: number; body: string }> {
  const http2 = await import("node:http2");
  const session = http2.connect(url);
  try {
    return await new Promise((resolve, reject) => {
      const req = session.request({ ":path": path });
      let status = 0;
      let body = "";
      req.on("response", (h) => (status = Number(h[":status"])));
      req.setEncoding("utf8");
      req.on("data", (c: string) => (body += c));
      req.on("end", () => resolve({ status, body }));
      req.on("error", reject);
      req.end();
    });
  } finally {
    session.close();
  }
}

// Readiness flips are serial: they share one fixture.
test.serial("/readyz and gRPC health follow the readiness checks; Watch streams the change", async (t) => {
  const health = createClient(Health, createGrpcTransport({ baseUrl: fx.url }));
  const abort = new AbortController();
  t.teardown(() => abort.abort());
  const stream = health.watch({ service: "" }, { signal: abort.signal })[Symbol.asyncIterator]();
  t.is((await stream.next()).value?.status, ServingStatus.SERVING);

  t.is((await http1(fx.url, "/readyz")).status, 200);
  fx.setReady(false);
  try {
    const res = await http1(fx.url, "/readyz");
    t.is(res.status, 503);
    t.deepEqual(res.json, { status: "unavailable", failing: [{ name: "database", reason: "failed" }] });
    t.false(res.text.includes("5432"), "check errors stay in the log");
    t.is((await stream.next()).value?.status, ServingStatus.NOT_SERVING, "Watch sends the change");
    t.is((await health.check({ service: "" })).status, ServingStatus.NOT_SERVING);
  } finally {
    fx.setReady(true);
  }
  t.is((await health.check({ service: "" })).status, ServingStatus.SERVING);
  t.is((await stream.next()).value?.status, ServingStatus.SERVING);
});

test("gRPC health: unknown services are NOT_FOUND for Check and SERVICE_UNKNOWN for Watch", async (t) => {
  const health = createClient(Health, createGrpcTransport({ baseUrl: fx.url }));
  const error = await t.throwsAsync(health.check({ service: "aviary.nope.v1.Nope" }));
  t.is(ConnectError.from(error).code, Code.NotFound);
  const abort = new AbortController();
  t.teardown(() => abort.abort());
  const stream = health.watch({ service: "aviary.nope.v1.Nope" }, { signal: abort.signal })[Symbol.asyncIterator]();
  t.is((await stream.next()).value?.status, ServingStatus.SERVICE_UNKNOWN);
});

/**
 * A raw gRPC call of ServerReflectionInfo (one request, then the end of the
 * stream) whose answer, a file descriptor, is well over connect's 1 KiB
 * compression threshold.
 */
async function reflectionCall(headers: Record<string, string>, gzipRequest: boolean) {
  const message = toBinary(ServerReflectionRequestSchema, create(ServerReflectionRequestSchema, { messageRequest: { case: "fileContainingSymbol", value: "aviary.auth.v1.AuthService" } }));
  const payload = gzipRequest ? gzipSync(message) : Buffer.from(message);
  const envelope = Buffer.alloc(5 + payload.length);
  envelope.writeUInt8(gzipRequest ? 1 : 0, 0);
  envelope.writeUInt32BE(payload.length, 1);
  payload.copy(envelope, 5);
  const session = http2.connect(fx.url);
  try {
    return await new Promise<{ headers: Record<string, unknown>; body: Buffer; status: string | undefined }>((done, fail) => {
      const stream = session.request({
        ":method": "POST",
        ":path": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "content-type": "application/grpc",
        te: "trailers",
        ...(gzipRequest ? { "grpc-encoding": "gzip" } : {}),
        ...headers,
      });
      let responseHeaders: Record<string, unknown> = {};
      let status: string | undefined;
      const chunks: Buffer[] = [];
      stream.on("response", (h) => (responseHeaders = { ...h }));
      stream.on("trailers", (trailers) => (status = String(trailers["grpc-status"])));
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => done({ headers: responseHeaders, body: Buffer.concat(chunks), status: status ?? (responseHeaders["grpc-status"] as string | undefined) }));
      stream.on("error", fail);
      stream.end(envelope);
    });
  } finally {
    session.close();
  }
}

test("answers are never compressed, even to a client that accepts gzip; a gzipped request is still accepted", async (t) => {
  for (const gzipRequest of [false, true]) {
    const answer = await reflectionCall({ "grpc-accept-encoding": "gzip" }, gzipRequest);
    t.is(answer.status, "0", `request ${gzipRequest ? "gzipped" : "plain"}`);
    // The header may still name gzip (what the server could use); each message's flag says whether it is.
    t.is(answer.body.readUInt8(0), 0, "the answer's message is not compressed");
    t.true(answer.body.readUInt32BE(1) > 1024, "and is above connect's default threshold, so it would have been");
  }
});
