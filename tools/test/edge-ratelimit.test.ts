// Global rate limiting for real: the real Envoy (loopback render WITH the
// rate-limit filter) in front of the real auth service, asking the real
// rate-limit service (in-process, counting in the shared Redis) with tiny
// one-second limits so windows are short. What a client sees: 429 with
// Retry-After, X-RateLimit-* and a JSON body; per-address limits on public
// routes, per-user (JWT sub) limits on protected ones; recovery in the next
// window; requests passing while the limiter is down (fail open).
//
// Client addresses: with use_remote_address every loopback client is
// 127.0.0.1, so these Envoys trust one x-forwarded-for hop
// (trustedProxyHops: 1, as an edge behind a load balancer would) and each
// request names its client address there.
import test, { type ExecutionContext } from "ava";
import { randomInt } from "node:crypto";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { startTestAuth, uniqueEmail, password, as, type TestAuth } from "../../services/auth/test/harness.ts";
import { startTestRateLimit, type TestRateLimit } from "../../services/ratelimit/test/harness.ts";
import { startEnvoy, type RunningEnvoy } from "../../services/runtime/test-support/envoy.ts";

/** The default rules' names and shapes (services/ratelimit/src/domain/limits.ts), with limits a test can spend. */
const rules = [
  { name: "auth_public_per_ip", entries: [{ key: "route_class", value: "auth_public" }, { key: "remote_address" }], requests_per_unit: 3, unit: "second" },
  { name: "read_per_user", entries: [{ key: "route_class", value: "read" }, { key: "user_id" }], requests_per_unit: 3, unit: "second" },
  { name: "write_per_user", entries: [{ key: "route_class", value: "write" }, { key: "user_id" }], requests_per_unit: 3, unit: "second" },
];
const LIMIT = 3;

// Budgets generous enough that a loaded machine never turns a counting test
// into a fail-open answer; the service's stays below the filter's, as in deploy.
const rateLimitEnv = { RATELIMIT_RULES: JSON.stringify(rules), RATELIMIT_CACHE_TIMEOUT: "1s" };
const filterTimeoutMs = 2000;

let auth: TestAuth;
let limiter: TestRateLimit;
let envoy: RunningEnvoy;

test.before(async () => {
  auth = await startTestAuth();
  limiter = await startTestRateLimit(rateLimitEnv);
  envoy = await startEnvoy({ upstreams: { auth: auth.service.url }, rateLimitService: limiter.service.url, rateLimitTimeoutMs: filterTimeoutMs, trustedProxyHops: 1 });
});

test.after.always(async () => {
  await envoy?.stop();
  await limiter?.close();
  await auth?.close();
});

/** A documentation-range address no other test or run uses in the same second. */
function clientIp(): string {
  return `198.18.${randomInt(256)}.${randomInt(1, 255)}`;
}

/** A fresh user, registered and logged in at the service directly (not through the limited edge). */
async function newUser(): Promise<{ userId: string; accessToken: string }> {
  const email = uniqueEmail("rl");
  await auth.client.register({ identity: { case: "email", value: email }, password });
  const login = await auth.client.login({ identity: { case: "email", value: email }, password, deviceName: "test" }, as({ ip: clientIp() }));
  return { userId: login.userId, accessToken: login.tokens!.accessToken };
}

function get(base: string, path: string, options: { ip: string; token?: string }): Promise<Response> {
  const headers: Record<string, string> = { "x-forwarded-for": options.ip };
  if (options.token) headers["authorization"] = `Bearer ${options.token}`;
  return fetch(`${base}${path}`, { headers });
}

/** Waits for the start of the next one-second window (the rules' unit). */
async function nextWindow(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 30));
}

/**
 * Runs `body` at the start of a fresh one-second window. A burst that
 * nevertheless straddles a window boundary (a stalled machine) proves nothing
 * either way, so it is discarded and run again in a later window.
 */
async function inOneWindow(t: ExecutionContext, title: string, body: (tt: ExecutionContext) => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await nextWindow();
    const window = Math.floor(Date.now() / 1000);
    // ava refuses a second t.try under one title: each attempt is named.
    const result = await t.try(attempt === 1 ? title : `${title} (attempt ${attempt})`, body);
    if (Math.floor(Date.now() / 1000) === window || attempt === 3) {
      result.commit();
      return;
    }
    result.discard();
  }
}

/** Every rate-limit header exactly once (fetch joins repeated headers with ", ", so an exact value rules out duplicates). */
function assertLimitHeaders(t: ExecutionContext, response: Response, remaining: number, label: string): void {
  t.is(response.headers.get("x-ratelimit-limit"), `${LIMIT}, ${LIMIT};w=1`, label);
  t.is(response.headers.get("x-ratelimit-remaining"), String(remaining), label);
  t.is(response.headers.get("x-ratelimit-reset"), "1", label);
}

async function assertRateLimited(t: ExecutionContext, response: Response, label: string): Promise<void> {
  t.is(response.status, 429, label);
  t.is(response.headers.get("retry-after"), "1", label);
  assertLimitHeaders(t, response, 0, label);
  t.regex(response.headers.get("content-type") ?? "", /^application\/json/, label);
  // RESOURCE_EXHAUSTED, in the google.rpc.Status shape of every other error.
  t.deepEqual(await response.json(), { code: 8, message: "rate limit exceeded" }, label);
}

test.serial("public routes: limited per client address; 429 with Retry-After, X-RateLimit-* and JSON; others unaffected; 200 again next window", async (t) => {
  const user = await newUser();
  const ip = clientIp();
  await inOneWindow(t, "burst", async (tt) => {
    for (let i = 1; i <= LIMIT; i++) {
      const ok = await get(envoy.url, "/.well-known/jwks.json", { ip });
      tt.is(ok.status, 200, `request ${i}`);
      assertLimitHeaders(tt, ok, LIMIT - i, `request ${i}`);
      tt.is(ok.headers.get("retry-after"), null);
      await ok.arrayBuffer();
    }
    await assertRateLimited(tt, await get(envoy.url, "/.well-known/jwks.json", { ip }), "over the limit");
    // Every public method shares the class: Login from that address is refused at the edge too.
    const login = await fetch(`${envoy.url}/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-forwarded-for": ip },
      body: JSON.stringify({ email: "nobody@example.org", password }),
    });
    await assertRateLimited(tt, login, "login from the same address");
    // Another address is counted separately.
    const other = await get(envoy.url, "/.well-known/jwks.json", { ip: clientIp() });
    tt.is(other.status, 200, "another address");
    assertLimitHeaders(tt, other, LIMIT - 1, "another address");
    // Another route class: a protected read from the same address counts against the user.
    const me = await get(envoy.url, "/v1/auth/me", { ip, token: user.accessToken });
    tt.is(me.status, 200, "authenticated read from the exhausted address");
    tt.like(await me.json(), { userId: user.userId });
    assertLimitHeaders(tt, me, LIMIT - 1, "authenticated read");
  });
  // Recovery: the next window starts from zero.
  await nextWindow();
  const again = await get(envoy.url, "/.well-known/jwks.json", { ip });
  t.is(again.status, 200, "next window");
  assertLimitHeaders(t, again, LIMIT - 1, "next window");
});

test.serial("protected routes: limited per user (JWT sub) across REST, Connect and gRPC; another user is unaffected", async (t) => {
  const [first, second] = await Promise.all([newUser(), newUser()]);
  // One address for everyone: the limit is the user's, not the address's.
  const ip = clientIp();
  const grpc = createClient(AuthService, createGrpcTransport({ baseUrl: envoy.url }));
  await inOneWindow(t, "burst", async (tt) => {
    for (let i = 1; i <= LIMIT; i++) {
      const ok = await get(envoy.url, "/v1/auth/me", { ip, token: first.accessToken });
      tt.is(ok.status, 200, `request ${i}`);
      assertLimitHeaders(tt, ok, LIMIT - i, `request ${i}`);
      await ok.arrayBuffer();
    }
    await assertRateLimited(tt, await get(envoy.url, "/v1/auth/me", { ip, token: first.accessToken }), "REST over the limit");
    // The same read through the gRPC path (Connect JSON): the same user's counter.
    const connect = await fetch(`${envoy.url}/aviary.auth.v1.AuthService/GetMe`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${first.accessToken}`, "x-forwarded-for": ip },
      body: "{}",
    });
    await assertRateLimited(tt, connect, "Connect JSON over the limit");
    // gRPC clients get RESOURCE_EXHAUSTED (not UNAVAILABLE, which they would retry at once).
    const error = await grpc.getMe({}, { headers: { authorization: `Bearer ${first.accessToken}`, "x-forwarded-for": ip } }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    tt.is(error?.code, Code.ResourceExhausted, "gRPC over the limit");
    // The second user, same address, same route: untouched.
    const other = await get(envoy.url, "/v1/auth/me", { ip, token: second.accessToken });
    tt.is(other.status, 200, "another user");
    tt.like(await other.json(), { userId: second.userId });
    assertLimitHeaders(tt, other, LIMIT - 1, "another user");
  });
});

test.serial("rate-limit service down: requests pass (fail open), without rate-limit headers", async (t) => {
  const downLimiter = await startTestRateLimit(rateLimitEnv);
  const edge = await startEnvoy({ upstreams: { auth: auth.service.url }, rateLimitService: downLimiter.service.url, rateLimitTimeoutMs: filterTimeoutMs, trustedProxyHops: 1 });
  t.teardown(async () => {
    await edge.stop();
    await downLimiter.close();
  });
  const ip = clientIp();
  // Limiting works on this edge while the service is up...
  await inOneWindow(t, "limited while up", async (tt) => {
    const statuses: number[] = [];
    for (let i = 0; i <= LIMIT; i++) statuses.push((await get(edge.url, "/.well-known/jwks.json", { ip })).status);
    tt.deepEqual(statuses, [200, 200, 200, 429]);
  });
  await downLimiter.close();
  // ...and with it gone, more than twice the limit passes: across at most two
  // windows, one of them would be over the limit if anything were counting.
  for (let i = 1; i <= 2 * LIMIT + 1; i++) {
    const response = await get(edge.url, "/.well-known/jwks.json", { ip });
    t.is(response.status, 200, `request ${i} with the limiter down`);
    t.is(response.headers.get("x-ratelimit-remaining"), null);
    t.is(response.headers.get("retry-after"), null);
    await response.arrayBuffer();
  }
});
