// The standard interceptor chain, end to end through a real server:
// tracing → errors → deadline → auth → validation.
import test from "ava";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { RetryInfoSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { createServiceClient } from "../src/interceptors/client.ts";
import { eventually } from "../test-support/infra.ts";
import { abortOrder, Code, ConnectError, connectJson, startFixture } from "./server-fixture.ts";
import type { Fixture } from "./server-fixture.ts";

let fx: Fixture;
test.before(async () => {
  fx = await startFixture();
});
test.after.always(async () => {
  await fx?.close();
});

const grpcClient = () => createClient(AuthService, createGrpcTransport({ baseUrl: fx.url }));
const login = { email: "jane@example.com", password: "correct horse battery" };

function spansNamed(name: string): ReadableSpan[] {
  return fx.spans.getFinishedSpans().filter((s) => s.name === name);
}

// ---------------------------------------------------------------- errors

test("an unexpected error becomes internal/\"internal error\" with no message, SQL or stack", async (t) => {
  const res = await connectJson(fx.url, "aviary.auth.v1.AuthService/Login", login);
  t.is(res.status, 500);
  t.deepEqual(res.json, { code: "internal", message: "internal error" });
  for (const leak of ["duplicate", "INSERT", "users_email_key", "server-fixture", "at "]) t.false(res.text.includes(leak), leak);

  const error = ConnectError.from(await t.throwsAsync(grpcClient().login({ identity: { case: "email", value: "a@example.com" }, password: "x" })));
  t.is(error.code, Code.Internal);
  t.is(error.rawMessage, "internal error");
  t.deepEqual(error.details, []);
});

test("the hidden error is logged server-side with its stack and the trace id", async (t) => {
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  await connectJson(fx.url, "aviary.auth.v1.AuthService/Login", login, { traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
  const record = fx.logs.find((l) => l["msg"] === "unhandled error in handler" && l["trace_id"] === traceId);
  t.truthy(record, "logged with the request's trace id");
  const err = record?.["err"] as { stack?: string; message?: string } | undefined;
  t.regex(err?.message ?? "", /INSERT INTO auth\.users/);
  t.regex(err?.stack ?? "", /server-fixture\.ts/);
  t.is(record?.["procedure"], "aviary.auth.v1.AuthService/Login");
});

test("deliberate Connect errors pass through with details and a retry-after header", async (t) => {
  const res = await connectJson(fx.url, "aviary.auth.v1.AuthService/RequestPasswordReset", { email: "a@example.com" });
  t.is(res.status, 429);
  t.is(res.json["code"], "resource_exhausted");
  t.is(res.json["message"], "too many requests");
  t.is(res.headers["retry-after"], "42");

  const error = ConnectError.from(await t.throwsAsync(grpcClient().requestPasswordReset({ identity: { case: "email", value: "a@example.com" } })));
  t.is(error.code, Code.ResourceExhausted);
  t.is(error.metadata.get("retry-after"), "42");
  t.is(error.findDetails(RetryInfoSchema)[0]?.retryDelay?.seconds, 42n);
});

// ---------------------------------------------------------------- deadlines

async function timed<T>(p: Promise<T>): Promise<{ ms: number; error: ConnectError | undefined }> {
  const start = performance.now();
  try {
    await p;
    return { ms: performance.now() - start, error: undefined };
  } catch (e) {
    return { ms: performance.now() - start, error: ConnectError.from(e) };
  }
}

test("a default deadline applies when the client sends none, even if the handler ignores its signal", async (t) => {
  // Raw HTTP/1.1, so no client-side timer is involved: the server answers by itself.
  const { ms, error } = await timed(
    connectJson(fx.url, "aviary.auth.v1.AuthService/ListSessions", { pageToken: "sleep-3000" }).then((r) => {
      if (r.status !== 200) throw new ConnectError(String(r.json["message"]), r.json["code"] === "deadline_exceeded" ? Code.DeadlineExceeded : Code.Unknown);
    }),
  );
  t.is(error?.code, Code.DeadlineExceeded);
  t.true(ms >= 250 && ms < 2_900, `answered after ${Math.round(ms)} ms (default 300; before the handler's own 3,000)`);
});

test("the handler's signal is aborted with DeadlineExceeded at the default deadline", async (t) => {
  const { ms, error } = await timed(grpcClient().listSessions({ pageToken: "observe-signal" }));
  t.is(error?.code, Code.DeadlineExceeded);
  t.true(ms >= 250 && ms < 2_900, `${Math.round(ms)} ms`);
});

test("client deadlines above the cap are shortened to it", async (t) => {
  const res = await timed(
    connectJson(fx.url, "aviary.auth.v1.AuthService/ListSessions", { pageToken: "sleep-3000" }, { "connect-timeout-ms": "5000" }).then((r) => {
      if (r.json["code"] !== "deadline_exceeded") throw new Error(r.text);
    }),
  );
  t.is(res.error, undefined);
  t.true(res.ms >= 550 && res.ms < 2_900, `${Math.round(res.ms)} ms (cap 600; before the handler's own 3,000)`);
});

// Which deadline ended the call is told by timer order, not by a clock: the
// handler's signal must abort before a 200 ms timer the handler set (the
// default here is 300 ms). An elapsed-time bound failed under a CPU hog (a
// call ended by the client's 80 ms deadline took 419 ms to come back).
test("a shorter client deadline wins over the default", async (t) => {
  const marker = `client-deadline-${process.pid}`;
  const res = await connectJson(fx.url, "aviary.auth.v1.AuthService/ListSessions", { pageToken: "abort-vs-200" }, { "connect-timeout-ms": "80", "x-test-call": marker });
  t.is(res.json["code"], "deadline_exceeded", res.text);
  await eventually("the handler to see its signal abort", () => abortOrder.has(marker));
  t.is(abortOrder.get(marker), "signal first", "the client's 80 ms ended the call, not the default 300 ms");
});

test("a handler that throws an AbortError on its deadline yields DeadlineExceeded, not Internal", async (t) => {
  const { error } = await timed(grpcClient().changePassword({ currentPassword: "old", newPassword: "correct horse battery" }));
  t.is(error?.code, Code.DeadlineExceeded);
});

test("calls within the deadline are unaffected", async (t) => {
  t.is((await grpcClient().listSessions({ pageToken: "sleep-50" })).nextPageToken, "slept 50");
});

// ---------------------------------------------------------------- auth

test("protected procedures need a bearer token", async (t) => {
  const res = await connectJson(fx.url, "aviary.auth.v1.AuthService/GetMe", {});
  t.is(res.status, 401);
  t.is(res.json["code"], "unauthenticated");
  t.regex(String(res.headers["www-authenticate"]), /^Bearer/);
  const bad = await connectJson(fx.url, "aviary.auth.v1.AuthService/GetMe", {}, { authorization: "Bearer not.a.token" });
  t.is(bad.status, 401);
  const basic = await connectJson(fx.url, "aviary.auth.v1.AuthService/GetMe", {}, { authorization: "Basic dXNlcjpwYXNz" });
  t.is(basic.status, 401);
});

test("a valid token puts the principal and peer on the context", async (t) => {
  const token = await fx.token();
  const res = await connectJson(fx.url, "aviary.auth.v1.AuthService/GetMe", {}, { authorization: `Bearer ${token}`, "user-agent": "aviary-test/1.0", "x-forwarded-for": "6.6.6.6" });
  t.is(res.status, 200, res.text);
  t.is(res.json["userId"], "u-1");
  t.is(res.json["sessionId"], "s-1");
  t.is(res.json["email"], "127.0.0.1", "x-forwarded-for is ignored without a trusted proxy");
  t.is(res.json["phone"], "aviary-test/1.0");

  const me = await grpcClient().getMe({}, { headers: { authorization: `Bearer ${token}` } });
  t.is(me.userId, "u-1");
});

test("a revoked session's token is refused", async (t) => {
  const token = await fx.token({ sid: "s-revoked" });
  fx.revoked.add("s-revoked");
  const error = ConnectError.from(await t.throwsAsync(grpcClient().getMe({}, { headers: { authorization: `Bearer ${token}` } })));
  t.is(error.code, Code.Unauthenticated);
  t.regex(error.rawMessage, /session has ended/);
});

test("an expired token is refused with a message that says so", async (t) => {
  const token = await fx.token({ exp: Math.floor(Date.now() / 1000) - 60 });
  const error = ConnectError.from(await t.throwsAsync(grpcClient().getMe({}, { headers: { authorization: `Bearer ${token}` } })));
  t.is(error.code, Code.Unauthenticated);
  t.regex(error.rawMessage, /expired/);
});

test("public procedures work without a token, and a bad token does not block them", async (t) => {
  const res = await connectJson(fx.url, "aviary.auth.v1.AuthService/Register", login, { authorization: "Bearer expired.or.junk" });
  t.is(res.status, 200, res.text);
});

test("with a trusted proxy hop, the client IP comes from x-forwarded-for (the proxy-appended entry)", async (t) => {
  const proxied = await startFixture({ trustedProxyHops: 1 });
  t.teardown(() => proxied.close());
  const token = await proxied.token();
  const res = await connectJson(proxied.url, "aviary.auth.v1.AuthService/GetMe", {}, {
    authorization: `Bearer ${token}`,
    // "6.6.6.6" was supplied by the client; the proxy appended the address it saw.
    "x-forwarded-for": "6.6.6.6, 203.0.113.7",
  });
  t.is(res.json["email"], "203.0.113.7");
  const garbage = await connectJson(proxied.url, "aviary.auth.v1.AuthService/GetMe", {}, { authorization: `Bearer ${token}`, "x-forwarded-for": "not-an-ip" });
  t.is(garbage.json["email"], "127.0.0.1", "an unparseable hop falls back to the socket address");
});

// ---------------------------------------------------------------- tracing

test("a SERVER span per RPC continues the caller's traceparent, with rpc attributes", async (t) => {
  const traceId = "0af7651916cd43dd8448eb211c80319c";
  const parentId = "b7ad6b7169203331";
  const res = await connectJson(fx.url, "aviary.auth.v1.AuthService/Register", login, { traceparent: `00-${traceId}-${parentId}-01` });
  t.is(res.status, 200);
  const span = spansNamed("aviary.auth.v1.AuthService/Register").find((s) => s.spanContext().traceId === traceId);
  t.truthy(span, "span shares the caller's trace id");
  t.is(span?.kind, SpanKind.SERVER);
  t.is(span?.parentSpanContext?.spanId, parentId);
  t.like(span?.attributes, { "rpc.system": "connect_rpc", "rpc.service": "aviary.auth.v1.AuthService", "rpc.method": "Register" });
});

test("span status and code attributes per protocol", async (t) => {
  const traceId = "1af7651916cd43dd8448eb211c80319c";
  await t.throwsAsync(
    grpcClient().login({ identity: { case: "email", value: "a@example.com" }, password: "x" }, { headers: { traceparent: `00-${traceId}-b7ad6b7169203331-01` } }),
  );
  const grpcSpan = spansNamed("aviary.auth.v1.AuthService/Login").find((s) => s.spanContext().traceId === traceId);
  t.like(grpcSpan?.attributes, { "rpc.system": "grpc", "rpc.grpc.status_code": Code.Internal });
  t.is(grpcSpan?.status.code, SpanStatusCode.ERROR);

  const traceId2 = "2af7651916cd43dd8448eb211c80319c";
  await connectJson(fx.url, "aviary.auth.v1.AuthService/GetMe", {}, { traceparent: `00-${traceId2}-b7ad6b7169203331-01` });
  const connectSpan = spansNamed("aviary.auth.v1.AuthService/GetMe").find((s) => s.spanContext().traceId === traceId2);
  t.like(connectSpan?.attributes, { "rpc.system": "connect_rpc", "rpc.connect_rpc.error_code": "unauthenticated" });
  t.is(connectSpan?.status.code, SpanStatusCode.UNSET, "a caller error is not a server error");

  const ok = await grpcClient().register({ identity: { case: "email", value: "a@example.com" }, password: "correct horse battery" });
  t.truthy(ok);
  t.true(spansNamed("aviary.auth.v1.AuthService/Register").some((s) => s.attributes["rpc.grpc.status_code"] === 0));
});

test("outgoing calls through createServiceClient carry the active trace", async (t) => {
  const client = createServiceClient(AuthService, fx.url, { telemetry: { tracer: fx.telemetry.tracer, propagator: fx.telemetry.propagator } });
  const parent = fx.telemetry.tracer.startSpan("caller");
  await context.with(trace.setSpan(context.active(), parent), () =>
    client.register({ identity: { case: "email", value: "a@example.com" }, password: "correct horse battery" }),
  );
  parent.end();
  const traceId = parent.spanContext().traceId;
  const clientSpan = fx.spans.getFinishedSpans().find((s) => s.kind === SpanKind.CLIENT && s.spanContext().traceId === traceId);
  const serverSpan = fx.spans.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER && s.spanContext().traceId === traceId);
  t.truthy(clientSpan);
  t.truthy(serverSpan, "the server continued the caller's trace");
  t.is(clientSpan?.parentSpanContext?.spanId, parent.spanContext().spanId);
  t.is(serverSpan?.parentSpanContext?.spanId, clientSpan?.spanContext().spanId);
});
