// Graceful shutdown and runService. Each test has its own server: close() is final.
import test from "ava";
import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "@aviary/gen/grpc/health/v1/health_pb";
import { runService } from "../src/server.ts";
import { createLogger } from "../src/log.ts";
import { ConfigError, loadConfig, string } from "../src/config.ts";
import { Code, ConnectError, connectJson, enteredHandlers, http1, startFixture } from "./server-fixture.ts";
import { eventually } from "../test-support/infra.ts";

test("close() lets in-flight unary calls finish, refuses new calls, and ends streams with a status", async (t) => {
  const fx = await startFixture({ deadlines: { defaultTimeoutMs: 10_000 } });
  t.teardown(() => fx.close());
  const transport = createGrpcTransport({ baseUrl: fx.url });
  const auth = createClient(AuthService, transport);
  const health = createClient(Health, transport);

  // A health watcher (stream) and two slow unary calls, one per HTTP version.
  const watch = health.watch({ service: "" })[Symbol.asyncIterator]();
  t.is((await watch.next()).value?.status, ServingStatus.SERVING);
  const [grpcCall, http1Call] = [crypto.randomUUID(), crypto.randomUUID()];
  const slowGrpc = auth.listSessions({ pageToken: "sleep-600" }, { headers: { "x-test-call": grpcCall } });
  const slowHttp1 = connectJson(fx.url, "aviary.auth.v1.AuthService/ListSessions", { pageToken: "sleep-600" }, { "x-test-call": http1Call });
  await eventually("both handlers running", async () => enteredHandlers.has(grpcCall) && enteredHandlers.has(http1Call), 20_000);

  const started = performance.now();
  const closed = fx.server.close();

  // Readiness flips at once and watchers hear it.
  t.is(fx.server.health.status(), ServingStatus.NOT_SERVING);
  t.is((await watch.next()).value?.status, ServingStatus.NOT_SERVING);

  // New calls are refused: on a fresh connection and on the draining one.
  const fresh = ConnectError.from(await t.throwsAsync(createClient(AuthService, createGrpcTransport({ baseUrl: fx.url })).getJwks({})));
  t.is(fresh.code, Code.Unavailable);
  const reused = ConnectError.from(await t.throwsAsync(auth.getJwks({})));
  t.is(reused.code, Code.Unavailable);

  // The in-flight calls complete normally.
  t.is((await slowGrpc).nextPageToken, "slept 600");
  const h1 = await slowHttp1;
  t.is(h1.status, 200);
  t.is(h1.json["nextPageToken"], "slept 600");

  // The stream is ended by the server with Unavailable, not cut.
  const streamEnd = ConnectError.from(await t.throwsAsync(watch.next()));
  t.is(streamEnd.code, Code.Unavailable);
  t.regex(streamEnd.rawMessage, /shutting down/);

  // close() resolved only after the in-flight calls answered (above), within its budget (else they would have been aborted).
  await closed;
  t.log(`closed after ${Math.round(performance.now() - started)} ms`);
  // Idempotent.
  await fx.server.close();
});

test("unary calls still running at the shutdown timeout are aborted with Unavailable", async (t) => {
  const fx = await startFixture({ shutdownTimeoutMs: 300, deadlines: { defaultTimeoutMs: 10_000, maxTimeoutMs: 20_000 } });
  t.teardown(() => fx.close());
  const auth = createClient(AuthService, createGrpcTransport({ baseUrl: fx.url }));
  const [stuckCall, abortCall] = [crypto.randomUUID(), crypto.randomUUID()];
  const stuck = auth.listSessions({ pageToken: "observe-signal" }, { headers: { "x-test-call": stuckCall } });
  // A handler that gives up with a raw AbortError gets the shutdown reason, not Internal.
  const abortError = auth.changePassword({ currentPassword: "old", newPassword: "correct horse battery" }, { headers: { "x-test-call": abortCall } });
  // Both inside their handlers before the shutdown begins (not merely sent).
  await eventually("both calls in their handlers", async () => enteredHandlers.has(stuckCall) && enteredHandlers.has(abortCall), 20_000);
  const started = performance.now();
  await fx.server.close();
  const ms = performance.now() - started;
  t.is(ConnectError.from(await t.throwsAsync(stuck)).code, Code.Unavailable);
  t.is(ConnectError.from(await t.throwsAsync(abortError)).code, Code.Unavailable);
  // It waited for the budget, and did not wait for the 10 s handler (bounds wide enough for a busy machine).
  t.true(ms >= 250 && ms < 5_000, `closed after ${Math.round(ms)} ms (budget 300)`);
});

test("/readyz says 503 once shutdown began", async (t) => {
  const fx = await startFixture();
  t.teardown(() => fx.close());
  t.is((await http1(fx.url, "/readyz")).status, 200);
  fx.server.health.beginShutdown();
  const ready = await http1(fx.url, "/readyz");
  t.is(ready.status, 503);
  t.is(ready.json["status"], "shutting_down");
});

function captureLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger("svc", "info", { destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } });
  return { logger, lines };
}

test("runService: a config error is one fatal record listing the problems, without a stack, and exit 1", async (t) => {
  const { logger, lines } = captureLogger();
  const codes: number[] = [];
  await runService(
    async () => {
      loadConfig({ issuer: string("AUTH_ISSUER"), secret: string("PAGE_TOKEN_SECRET") }, {});
      return { close: async () => {} };
    },
    { logger, exit: (c) => codes.push(c), signals: new EventEmitter() },
  );
  t.deepEqual(codes, [1]);
  t.is(lines.length, 1);
  t.is(lines[0]?.["level"], "fatal");
  t.regex(String(lines[0]?.["msg"]), /AUTH_ISSUER: missing[\s\S]*PAGE_TOKEN_SECRET: missing/);
  t.false(JSON.stringify(lines[0]).includes("stack"));
  t.is((lines[0]?.["problems"] as unknown[]).length, 2);
  t.true(new ConfigError([]) instanceof Error);
});

test("runService: other startup failures are logged with their stack", async (t) => {
  const { logger, lines } = captureLogger();
  const codes: number[] = [];
  await runService(
    async () => {
      throw new Error("port in use");
    },
    { logger, exit: (c) => codes.push(c), signals: new EventEmitter() },
  );
  t.deepEqual(codes, [1]);
  t.regex(JSON.stringify(lines[0]), /"stack":"Error: port in use/);
});

test("runService: SIGTERM closes the service and exits 0; a second signal forces exit 1", async (t) => {
  const { logger } = captureLogger();
  const signals = new EventEmitter();
  const codes: number[] = [];
  let closes = 0;
  let release = () => {};
  await runService(
    async () => ({
      close: () => {
        closes++;
        return new Promise<void>((resolve) => (release = resolve));
      },
    }),
    { logger, exit: (c) => codes.push(c), signals },
  );
  signals.emit("SIGTERM", "SIGTERM");
  t.is(closes, 1);
  signals.emit("SIGINT", "SIGINT");
  t.deepEqual(codes, [1], "second signal while closing");
  release();
  await sleep(10);
  t.deepEqual(codes, [1, 0]);
});
