// The @grpc/grpc-js path (src/grpc-js/): the runtime's server also serving its
// routes on a grpc-js listener, called through the grpc-js connect Transport,
// with the same handlers and the same interceptor chain as connect-node. Each
// rule the chain enforces over connect is checked here over grpc-js: codes and
// details, deadlines, auth and the peer, validation, streams and cancellation.
import test from "ava";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import type { ServiceImpl } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { AuthService, RegisterRequestSchema } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { ModerationService } from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import { PostInternalService } from "@aviary/gen/aviary/post/v1/post_internal_pb";
import { BadRequestSchema, RetryInfoSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { HealthService, ServingStatus } from "../src/health.ts";
import { ServerReflectionV1 } from "../src/reflection.ts";
import { resourceExhausted } from "../src/errors.ts";
import { createGrpcJsTransport, grpcTarget, type GrpcJsTransport } from "../src/grpc-js/transport.ts";
import { createServiceClient, isGrpcJsPeerUrl } from "../src/interceptors/client.ts";
import { ConfigError, loadConfig } from "../src/config.ts";
import { internalListener, internalPortConfigSpec, peerBase, peerUrl } from "../src/service-config.ts";
import { Code, ConnectError, enteredHandlers, startFixture, stubAuth } from "./server-fixture.ts";
import type { Fixture } from "./server-fixture.ts";
import { eventually } from "../test-support/infra.ts";

const FAILING_USER = "00000000-0000-4000-8000-000000000002";
const HANGING_USER = "00000000-0000-4000-8000-000000000003";
const A_USER = "00000000-0000-4000-8000-000000000001";

/** Why each hanging export's signal fired, by the call's x-test-call header. */
const exportAborts = new Map<string, unknown>();

const exports: Partial<ServiceImpl<typeof PostInternalService>> = {
  async *exportUserPosts(req, ctx) {
    for (let i = 0; i < 3; i++) {
      yield { item: { case: "post", value: { postId: `p-${i}`, text: `post ${i}` } } };
      if (i === 1 && req.userId === FAILING_USER) throw resourceExhausted("export quota spent", 7);
      if (req.userId === HANGING_USER) {
        await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
        exportAborts.set(ctx.requestHeader.get("x-test-call") ?? "", ctx.signal.reason);
        return;
      }
    }
  },
};

let fx: Fixture;
let transport: GrpcJsTransport;
test.before(async () => {
  fx = await startFixture({
    grpcJsPort: 0,
    routes: (router) => router.service(AuthService, stubAuth).service(PostInternalService, exports),
  });
  transport = createGrpcJsTransport({ baseUrl: fx.server.grpcJsUrl ?? "" });
});
test.after.always(async () => {
  transport?.close();
  await fx?.close();
});

const auth = () => createClient(AuthService, transport);
const posts = () => createClient(PostInternalService, transport);

async function failure(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (e) {
    return ConnectError.from(e);
  }
  throw new Error("the call succeeded");
}

test("the server announces a separate grpc-js listener", (t) => {
  t.regex(fx.server.grpcJsUrl ?? "", /^http:\/\/127\.0\.0\.1:\d+$/);
  t.not(fx.server.grpcJsUrl, fx.server.url);
  t.is(grpcTarget("http://user:8082/"), "user:8082");
  t.is(grpcTarget("127.0.0.1:9"), "127.0.0.1:9");
});

test("without grpcJsPort there is no grpc-js listener; a port in use fails startup and leaves nothing listening", async (t) => {
  const plain = await startFixture();
  t.teardown(() => plain.close());
  t.is(plain.server.grpcJsUrl, undefined);
  const taken = Number(new URL(fx.server.grpcJsUrl ?? "").port);
  await t.throwsAsync(startFixture({ grpcJsPort: taken }));
});

test("peerUrl is the grpc-js listener as grpc://; a service client given it calls over grpc-js, one given an http:// URL over connect-node", async (t) => {
  t.is(fx.server.peerUrl, (fx.server.grpcJsUrl ?? "").replace(/^http:/, "grpc:"));
  t.true(isGrpcJsPeerUrl(fx.server.peerUrl));
  t.false(isGrpcJsPeerUrl(fx.server.url));
  // connect-node's transports cannot call a grpc: URL at all, so an answer here came over grpc-js.
  const viaPeerUrl = await createServiceClient(HealthService, fx.server.peerUrl).check({ service: "" });
  t.is(viaPeerUrl.status, ServingStatus.SERVING);
  const viaMainPort = await createServiceClient(HealthService, fx.server.url).check({ service: "" });
  t.is(viaMainPort.status, ServingStatus.SERVING);
  const plain = await startFixture();
  t.teardown(() => plain.close());
  t.is(plain.server.peerUrl, plain.server.url, "without an internal listener peers use the main port");
});

test("peer URL and internal port settings: grpc, http and https peers; ports 0–65535; anything else is a configuration error", (t) => {
  const spec = { peer: peerUrl("USER_URL", "http://127.0.0.1:8082"), ...internalPortConfigSpec("USER") };
  t.is(peerBase(loadConfig(spec, {}).peer), "http://127.0.0.1:8082");
  t.is(peerBase(loadConfig(spec, { USER_URL: "grpc://user:9082" }).peer), "grpc://user:9082");
  t.is(loadConfig(spec, {}).internalPort, undefined);
  t.deepEqual(internalListener(loadConfig(spec, { USER_INTERNAL_PORT: "9082" })), { grpcJsPort: 9082 });
  t.deepEqual(internalListener(loadConfig(spec, {})), {});
  const problems = (env: Record<string, string>) => t.throws(() => loadConfig(spec, env), { instanceOf: ConfigError })?.message ?? "";
  t.regex(problems({ USER_URL: "ftp://user:21" }), /USER_URL/);
  t.regex(problems({ USER_INTERNAL_PORT: "70000" }), /USER_INTERNAL_PORT/);
  t.regex(problems({ USER_INTERNAL_PORT: "nine" }), /USER_INTERNAL_PORT/);
});

// ---------------------------------------------------------------- unary

test("a unary call reaches the handler and returns its message", async (t) => {
  const res = await auth().register({ identity: { case: "email", value: "jane@example.com" }, password: "correct horse battery" });
  t.is(res.userId, "u-1");
  t.is(res.identity, "jane@example.com");
  t.true(res.verificationRequired);
});

test("health is served on the grpc-js listener too", async (t) => {
  const res = await createClient(HealthService, transport).check({ service: "" });
  t.is(res.status, ServingStatus.SERVING);
});

// ---------------------------------------------------------------- errors

test("a deliberate error keeps its code, message, details and metadata", async (t) => {
  const error = await failure(auth().requestPasswordReset({ identity: { case: "email", value: "a@example.com" } }));
  t.is(error.code, Code.ResourceExhausted);
  t.is(error.rawMessage, "too many requests");
  t.is(error.metadata.get("retry-after"), "42");
  t.is(error.findDetails(RetryInfoSchema)[0]?.retryDelay?.seconds, 42n);
});

test("an unexpected error is a bare internal error, logged with its stack server-side", async (t) => {
  const error = await failure(auth().login({ identity: { case: "email", value: "a@example.com" }, password: "x" }));
  t.is(error.code, Code.Internal);
  t.is(error.rawMessage, "internal error");
  t.deepEqual(error.details, []);
  t.true(fx.logs.some((l) => l["msg"] === "unhandled error in handler" && l["procedure"] === "aviary.auth.v1.AuthService/Login"));
});

test("bad input is INVALID_ARGUMENT with field violations, before the handler runs", async (t) => {
  const error = await failure(auth().register(create(RegisterRequestSchema, { identity: { case: "email", value: "not an email" }, password: "x" })));
  t.is(error.code, Code.InvalidArgument);
  const fields = error.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field) ?? [];
  t.true(fields.length > 0, "field violations are reported");
});

test("a service the server does not serve is UNIMPLEMENTED", async (t) => {
  const error = await failure(createClient(ModerationService, transport).listReports({}));
  t.is(error.code, Code.Unimplemented);
});

test("a plain grpc-js client sees the same status and grpc-status-details-bin", async (t) => {
  const target = grpcTarget(fx.server.grpcJsUrl ?? "");
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  const status = await new Promise<grpc.ServiceError>((resolve) => {
    client.makeUnaryRequest(
      "/aviary.auth.v1.AuthService/RequestPasswordReset",
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      new grpc.Metadata(),
      (error) => resolve(error as grpc.ServiceError),
    );
  });
  // An empty request fails validation (the identity is required).
  t.is(status.code, grpc.status.INVALID_ARGUMENT);
  t.is(status.metadata.get("grpc-status-details-bin").length, 1);
});

// ---------------------------------------------------------------- auth and peer

test("protected procedures need a bearer token, sent as metadata", async (t) => {
  const error = await failure(auth().getMe({}));
  t.is(error.code, Code.Unauthenticated);
  t.regex(error.metadata.get("www-authenticate") ?? "", /^Bearer /);

  const token = await fx.token({ sub: "u-42", sid: "s-42" });
  const me = await auth().getMe({}, { headers: { authorization: `Bearer ${token}`, "user-agent": "ignored-by-grpc-js" } });
  t.is(me.userId, "u-42");
  t.is(me.sessionId, "s-42");
  t.is(me.email, "127.0.0.1", "the peer's socket address");
  t.regex(me.phone, /grpc-node-js/, "the user-agent grpc-js sends");
});

test("a revoked session's token is refused", async (t) => {
  fx.revoked.add("s-revoked");
  const token = await fx.token({ sid: "s-revoked" });
  const error = await failure(auth().getMe({}, { headers: { authorization: `Bearer ${token}` } }));
  t.is(error.code, Code.Unauthenticated);
});

test("a client interceptor sees and changes the request headers (how service tokens are attached)", async (t) => {
  const token = await fx.token({ sub: "u-7" });
  const withToken = createGrpcJsTransport({
    baseUrl: fx.server.grpcJsUrl ?? "",
    interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))],
  });
  t.teardown(() => withToken.close());
  t.is((await createClient(AuthService, withToken).getMe({})).userId, "u-7");
});

// ---------------------------------------------------------------- deadlines

test("the server's default deadline applies when the client sends none", async (t) => {
  // The fixture's default is 300 ms; the handler ignores its signal and sleeps 2 s.
  const error = await failure(auth().listSessions({ pageToken: "sleep-2000" }));
  t.is(error.code, Code.DeadlineExceeded);
});

test("the handler's signal ends with DeadlineExceeded at the client's deadline", async (t) => {
  const error = await failure(auth().listSessions({ pageToken: "observe-signal" }, { timeoutMs: 100 }));
  t.is(error.code, Code.DeadlineExceeded);
});

test("timeoutMs() in the handler context is what is left of the client's deadline", async (t) => {
  const seen: (number | undefined)[] = [];
  const probe = await startFixture({
    grpcJsPort: 0,
    routes: (router) => router.service(AuthService, { getJwks: (_req, ctx) => (seen.push(ctx.timeoutMs()), { keys: [] }) }),
    auth: undefined,
  });
  const client = createClient(AuthService, createGrpcJsTransport({ baseUrl: probe.server.grpcJsUrl ?? "" }));
  t.teardown(() => probe.close());
  await client.getJwks({}, { timeoutMs: 5_000 });
  await client.getJwks({});
  t.true(seen[0] !== undefined && seen[0] > 0 && seen[0] <= 5_000, `left: ${seen[0]}`);
  t.is(seen[1], undefined, "no client deadline: none reported");
});

test("the handler's signal ends with DeadlineExceeded at the server's default deadline (the listener's own controller, aborted by the deadline interceptor)", async (t) => {
  const reasons: unknown[] = [];
  const probe = await startFixture({
    grpcJsPort: 0,
    auth: undefined,
    routes: (router) =>
      router.service(AuthService, {
        async listSessions(_req, ctx) {
          await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
          reasons.push(ctx.signal.reason);
          return { sessions: [], nextPageToken: "" };
        },
      }),
  });
  const probeTransport = createGrpcJsTransport({ baseUrl: probe.server.grpcJsUrl ?? "" });
  t.teardown(async () => {
    probeTransport.close();
    await probe.close();
  });
  const error = await failure(createClient(AuthService, probeTransport).listSessions({}));
  t.is(error.code, Code.DeadlineExceeded);
  await eventually("the handler to see its signal abort", () => reasons.length > 0);
  t.is(ConnectError.from(reasons[0]).code, Code.DeadlineExceeded);
});

test("a client deadline above the server's cap is shortened to it", async (t) => {
  // The fixture's cap is 600 ms; the handler ignores its signal and sleeps 3 s.
  const error = await failure(auth().listSessions({ pageToken: "sleep-3000" }, { timeoutMs: 30_000 }));
  t.is(error.code, Code.DeadlineExceeded);
});

test("a call within its deadline is unaffected", async (t) => {
  const res = await auth().listSessions({ pageToken: "sleep-10" }, { timeoutMs: 5_000 });
  t.is(res.nextPageToken, "slept 10");
});

// ---------------------------------------------------------------- response metadata

test("a handler's response header and trailer reach the caller; a call that sets none sends none", async (t) => {
  const probe = await startFixture({
    grpcJsPort: 0,
    auth: undefined,
    routes: (router) =>
      router.service(AuthService, {
        getJwks(_req, ctx) {
          if (ctx.requestHeader.get("x-want-metadata") === "yes") {
            ctx.responseHeader.set("x-served-by", "probe");
            ctx.responseTrailer.append("x-cost", "3");
            ctx.responseTrailer.append("x-cost", "4");
          }
          return { keys: [] };
        },
      }),
  });
  const probeTransport = createGrpcJsTransport({ baseUrl: probe.server.grpcJsUrl ?? "" });
  t.teardown(async () => {
    probeTransport.close();
    await probe.close();
  });
  const client = createClient(AuthService, probeTransport);
  const seen: { header?: Headers; trailer?: Headers } = {};
  await client.getJwks({}, { headers: { "x-want-metadata": "yes" }, onHeader: (h) => (seen.header = h), onTrailer: (h) => (seen.trailer = h) });
  t.is(seen.header?.get("x-served-by"), "probe");
  t.is(seen.trailer?.get("x-cost"), "3, 4");
  const plain: { header?: Headers; trailer?: Headers } = {};
  await client.getJwks({}, { onHeader: (h) => (plain.header = h), onTrailer: (h) => (plain.trailer = h) });
  t.is(plain.header?.get("x-served-by") ?? null, null);
  t.is(plain.trailer?.get("x-cost") ?? null, null);
});

// ---------------------------------------------------------------- cancellation

test("the caller's abort cancels the call, and the handler's signal says Canceled", async (t) => {
  const controller = new AbortController();
  const marker = `cancel-${crypto.randomUUID()}`;
  const call = failure(auth().changePassword({ currentPassword: "old", newPassword: "correct horse battery" }, { signal: controller.signal, headers: { "x-test-call": marker }, timeoutMs: 5_000 }));
  await eventually("the handler to start", () => enteredHandlers.has(marker));
  controller.abort(new ConnectError("the caller gave up", Code.Canceled));
  const error = await call;
  t.is(error.code, Code.Canceled);
  t.is(error.rawMessage, "the caller gave up", "the caller's own reason");
});

test("a signal already aborted fails the call without sending it", async (t) => {
  const controller = new AbortController();
  controller.abort(new ConnectError("too late", Code.DeadlineExceeded));
  const error = await failure(auth().getJwks({}, { signal: controller.signal }));
  t.is(error.code, Code.DeadlineExceeded);
});

// ---------------------------------------------------------------- streams

test("a server stream delivers every message in order", async (t) => {
  const ids: string[] = [];
  const token = await fx.token();
  for await (const res of posts().exportUserPosts({ userId: A_USER }, { headers: { authorization: `Bearer ${token}` } })) {
    if (res.item.case === "post") ids.push(res.item.value.postId);
  }
  t.deepEqual(ids, ["p-0", "p-1", "p-2"]);
});

test("a server stream's error mid-stream arrives after its messages, with code and details", async (t) => {
  const ids: string[] = [];
  const token = await fx.token();
  const error = await failure(
    (async () => {
      for await (const res of posts().exportUserPosts({ userId: FAILING_USER }, { headers: { authorization: `Bearer ${token}` } })) {
        if (res.item.case === "post") ids.push(res.item.value.postId);
      }
    })(),
  );
  t.deepEqual(ids, ["p-0", "p-1"]);
  t.is(error.code, Code.ResourceExhausted);
  t.is(error.findDetails(RetryInfoSchema)[0]?.retryDelay?.seconds, 7n);
});

test("a server stream's request is validated and authenticated", async (t) => {
  const invalid = await failure((async () => {
    for await (const _ of posts().exportUserPosts({ userId: "not-a-uuid" }, { headers: { authorization: `Bearer ${await fx.token()}` } }));
  })());
  t.is(invalid.code, Code.InvalidArgument);
  const anonymous = await failure((async () => {
    for await (const _ of posts().exportUserPosts({ userId: A_USER }));
  })());
  t.is(anonymous.code, Code.Unauthenticated);
});

test("a caller that aborts mid-stream cancels it: the handler's signal fires with Canceled", async (t) => {
  // (connect's clients do not pass a consumer's early `break` on to the
  // transport; aborting the call's signal is how a caller ends a stream.)
  const marker = `stop-${crypto.randomUUID()}`;
  const token = await fx.token();
  const controller = new AbortController();
  const reading = failure(
    (async () => {
      for await (const res of posts().exportUserPosts({ userId: HANGING_USER }, { headers: { authorization: `Bearer ${token}`, "x-test-call": marker }, signal: controller.signal })) {
        t.is(res.item.case, "post");
        controller.abort(new ConnectError("enough", Code.Canceled));
      }
    })(),
  );
  const error = await reading;
  t.is(error.code, Code.Canceled);
  t.is(error.rawMessage, "enough");
  await eventually("the handler's signal to fire", () => exportAborts.has(marker));
  t.is(ConnectError.from(exportAborts.get(marker)).code, Code.Canceled);
});

test("server shutdown ends an open stream with UNAVAILABLE", async (t) => {
  const local = await startFixture({ grpcJsPort: 0, routes: (router) => router.service(PostInternalService, exports), auth: undefined });
  const client = createClient(PostInternalService, createGrpcJsTransport({ baseUrl: local.server.grpcJsUrl ?? "" }));
  const seen: string[] = [];
  const reading = failure(
    (async () => {
      for await (const res of client.exportUserPosts({ userId: HANGING_USER })) seen.push(res.item.case ?? "");
    })(),
  );
  await eventually("the first message", () => seen.length === 1);
  const closing = local.close();
  const error = await reading;
  await closing;
  t.is(error.code, Code.Unavailable);
});

test("bidi streaming works (reflection, served like every other route)", async (t) => {
  const client = createClient(ServerReflectionV1, transport);
  async function* ask() {
    yield { messageRequest: { case: "listServices" as const, value: "" } };
  }
  const names: string[] = [];
  for await (const res of client.serverReflectionInfo(ask())) {
    if (res.messageResponse.case === "listServicesResponse") names.push(...res.messageResponse.value.service.map((s) => s.name));
  }
  t.true(names.includes("aviary.auth.v1.AuthService"));
  t.true(names.includes("grpc.health.v1.Health"));
});

// ---------------------------------------------------------------- tracing, shutdown, factory

test("a SERVER span per call continues the caller's traceparent", async (t) => {
  const traceId = "5bf92f3577b34da6a3ce929d0e0e4736";
  await auth().getJwks({}, { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
  await eventually("the span", () => fx.spans.getFinishedSpans().some((s) => s.name === "aviary.auth.v1.AuthService/GetJwks" && s.spanContext().traceId === traceId));
  const span = fx.spans.getFinishedSpans().find((s) => s.spanContext().traceId === traceId);
  t.is(span?.attributes["rpc.system"], "grpc");
  t.is(span?.attributes["rpc.grpc.status_code"], 0);
});

test("a call that arrives while the server shuts down is refused with UNAVAILABLE", async (t) => {
  const local = await startFixture({ grpcJsPort: 0, auth: undefined });
  const client = createClient(AuthService, createGrpcJsTransport({ baseUrl: local.server.grpcJsUrl ?? "" }));
  const marker = `drain-${crypto.randomUUID()}`;
  // A slow unary call keeps the server draining while the second call arrives.
  const slow = client.listSessions({ pageToken: "sleep-300" }, { headers: { "x-test-call": marker }, timeoutMs: 5_000 });
  await eventually("the slow call to start", () => enteredHandlers.has(marker));
  const closing = local.close();
  const refused = await failure(client.getJwks({}));
  t.true(refused.code === Code.Unavailable, `code ${Code[refused.code]}`);
  t.is((await slow).nextPageToken, "slept 300", "the call in flight finished");
  await closing;
});

test("createServiceClient(…, { transport: \"grpc-js\" }) calls over grpc-js with trace propagation", async (t) => {
  const client = createServiceClient(AuthService, fx.server.grpcJsUrl ?? "", { transport: "grpc-js", defaultTimeoutMs: 10_000 });
  const res = await client.listSessions({ pageToken: "sleep-1" });
  t.is(res.nextPageToken, "slept 1");
  const error = await failure(client.listSessions({ pageToken: "sleep-5000" }));
  t.is(error.code, Code.DeadlineExceeded, "the server's default deadline (300 ms) cut it");
});
