// Losing Redis degrades protection, never availability: with its Redis
// stopped the service answers OK (fail open) promptly, and counts again once
// Redis is back.
import test from "ava";
import { RateLimitResponse_Code } from "@aviary/gen/envoy/service/ratelimit/v3/rls_pb";
import { privateServer, type PrivateServer } from "../../runtime/test-support/infra.ts";
import { freshWindow, header, request, startTestRateLimit, uniqueValue, type TestRateLimit } from "./harness.ts";

let redis: PrivateServer;
let rl: TestRateLimit;
test.before(async () => {
  redis = await privateServer("redis", "ratelimit-redis-loss");
  rl = await startTestRateLimit({ REDIS_URL: redis.url, RATELIMIT_CACHE_TIMEOUT: "200ms" });
});
test.after.always(async () => {
  await rl?.close();
  await redis?.down();
});

test.serial("Redis stopped: every call is OK (fail open), fast; Redis back: counting again", async (t) => {
  const user = uniqueValue();
  const req = request([[["route_class", "test_hour"], ["user_id", user]]]);
  await freshWindow(3600, 60_000);
  t.is((await rl.client.shouldRateLimit(req)).statuses[0]!.limitRemaining, 4, "counting while Redis is up");

  await redis.stop();
  for (let i = 0; i < 8; i++) {
    const started = Date.now();
    const res = await rl.client.shouldRateLimit(req);
    t.is(res.overallCode, RateLimitResponse_Code.OK, `call ${i} with Redis down`);
    t.is(res.statuses[0]!.code, RateLimitResponse_Code.OK);
    t.is(res.statuses[0]!.currentLimit, undefined, "no made-up counts");
    t.is(header(res, "x-ratelimit-remaining"), undefined);
    t.true(Date.now() - started < 1_000, `answered in ${Date.now() - started} ms`);
  }

  await redis.start();
  // ioredis reconnects in the background (backoff up to 2 s); the first calls may still fail open.
  const deadline = Date.now() + 15_000;
  let res = await rl.client.shouldRateLimit(req);
  while (res.statuses[0]!.currentLimit === undefined && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    res = await rl.client.shouldRateLimit(req);
  }
  t.not(res.statuses[0]!.currentLimit, undefined, "counting again after Redis came back");
  // Redis came back empty (no persistence) or kept the key: either way the count continues from what it holds.
  const remaining = res.statuses[0]!.limitRemaining;
  const next = await rl.client.shouldRateLimit(req);
  t.is(next.statuses[0]!.limitRemaining, Math.max(0, remaining - 1), "remaining counts down again");
  for (let i = 0; i < 6; i++) res = await rl.client.shouldRateLimit(req);
  t.is(res.overallCode, RateLimitResponse_Code.OVER_LIMIT, "and limits again");
});
