// ShouldRateLimit over plain gRPC (what Envoy sends) against the real service
// counting in the shared Redis.
import test from "ava";
import { RateLimitResponse_Code, RateLimitResponse_RateLimit_Unit } from "@aviary/gen/envoy/service/ratelimit/v3/rls_pb";
import { freshWindow, header, request, startTestRateLimit, uniqueValue, type TestRateLimit } from "./harness.ts";

let rl: TestRateLimit;
test.before(async () => {
  rl = await startTestRateLimit();
});
test.after.always(async () => {
  await rl?.close();
});

const OK = RateLimitResponse_Code.OK;
const OVER = RateLimitResponse_Code.OVER_LIMIT;

test("under the limit: OK, remaining counts down; over: OVER_LIMIT with retry-after at the window end", async (t) => {
  const user = uniqueValue();
  const req = request([[["route_class", "test_minute"], ["user_id", user]]]);
  await freshWindow(60, 5_000);
  for (let i = 1; i <= 5; i++) {
    const res = await rl.client.shouldRateLimit(req);
    t.is(res.overallCode, OK, `call ${i}`);
    t.is(res.statuses.length, 1);
    const status = res.statuses[0]!;
    t.is(status.code, OK);
    t.is(status.limitRemaining, 5 - i);
    t.like(status.currentLimit, { name: "test_minute_per_user", requestsPerUnit: 5, unit: RateLimitResponse_RateLimit_Unit.MINUTE });
    t.is(header(res, "x-ratelimit-limit"), "5, 5;w=60");
    t.is(header(res, "x-ratelimit-remaining"), String(5 - i));
    t.is(header(res, "retry-after"), undefined);
  }
  const over = await rl.client.shouldRateLimit(req);
  t.is(over.overallCode, OVER);
  t.is(over.statuses[0]!.code, OVER);
  t.is(over.statuses[0]!.limitRemaining, 0);
  const untilReset = 60 - Math.floor((Date.now() / 1000) % 60);
  const retryAfter = Number(header(over, "retry-after"));
  t.true(Math.abs(retryAfter - untilReset) <= 1, `retry-after ${retryAfter} ≈ ${untilReset}`);
  t.is(header(over, "x-ratelimit-reset"), String(retryAfter));
  t.is(header(over, "x-ratelimit-remaining"), "0");
  const seconds = Number(over.statuses[0]!.durationUntilReset?.seconds ?? -1n);
  t.true(seconds >= 0 && seconds < 60 && Math.abs(seconds + 1 - retryAfter) <= 1, `duration_until_reset ${seconds}s`);
  // Another user is counted separately.
  t.is((await rl.client.shouldRateLimit(request([[["route_class", "test_minute"], ["user_id", uniqueValue()]]]))).overallCode, OK);
});

test("the window rolls over: OK again in the next window (1-second rule)", async (t) => {
  const req = request([[["route_class", "test_second"], ["user_id", uniqueValue()]]]);
  await freshWindow(1, 600);
  for (let i = 0; i < 3; i++) t.is((await rl.client.shouldRateLimit(req)).overallCode, OK);
  const over = await rl.client.shouldRateLimit(req);
  t.is(over.overallCode, OVER);
  t.is(header(over, "retry-after"), "1");
  t.is(over.statuses[0]!.durationUntilReset?.seconds, 0n, "less than a second left");
  await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 20));
  const next = await rl.client.shouldRateLimit(req);
  t.is(next.overallCode, OK);
  t.is(next.statuses[0]!.limitRemaining, 2);
});

test("hits_addend: the request's, and a descriptor's own", async (t) => {
  await freshWindow(60, 5_000);
  const user = uniqueValue();
  const req = request([[["route_class", "test_minute"], ["user_id", user]]], { hitsAddend: 3 });
  let res = await rl.client.shouldRateLimit(req);
  t.is(res.overallCode, OK);
  t.is(res.statuses[0]!.limitRemaining, 2);
  res = await rl.client.shouldRateLimit(req);
  t.is(res.overallCode, OVER, "3 + 3 > 5");
  // A descriptor-level hits_addend overrides the request's (0 = look without counting).
  const other = uniqueValue();
  const peek = await rl.client.shouldRateLimit({
    domain: "aviary",
    hitsAddend: 4,
    descriptors: [{ entries: [{ key: "route_class", value: "test_minute" }, { key: "user_id", value: other }], hitsAddend: 0n }],
  });
  t.is(peek.statuses[0]!.limitRemaining, 5);
  const two = await rl.client.shouldRateLimit({
    domain: "aviary",
    hitsAddend: 4,
    descriptors: [{ entries: [{ key: "route_class", value: "test_minute" }, { key: "user_id", value: other }], hitsAddend: 2n }],
  });
  t.is(two.statuses[0]!.limitRemaining, 3);
  // More hits than the whole limit: over at once.
  t.is((await rl.client.shouldRateLimit(request([[["route_class", "test_minute"], ["user_id", uniqueValue()]]], { hitsAddend: 1000 }))).overallCode, OVER);
});

test("two descriptors, one over: overall OVER_LIMIT, each status its own", async (t) => {
  await freshWindow(60, 5_000);
  const user = uniqueValue();
  const ip = `198.51.100.${Math.floor(Math.random() * 250)}-${uniqueValue("ip")}`;
  const spent = request([[["route_class", "test_minute"], ["user_id", user]]], { hitsAddend: 5 });
  t.is((await rl.client.shouldRateLimit(spent)).overallCode, OK);
  const both = request([
    [["route_class", "auth_public"], ["remote_address", ip]],
    [["route_class", "test_minute"], ["user_id", user]],
  ]);
  const res = await rl.client.shouldRateLimit(both);
  t.is(res.overallCode, OVER);
  t.is(res.statuses.length, 2);
  t.is(res.statuses[0]!.code, OK);
  t.is(res.statuses[0]!.limitRemaining, 29);
  t.is(res.statuses[1]!.code, OVER);
  t.is(header(res, "x-ratelimit-remaining"), "0", "headers follow the tightest descriptor");
  t.truthy(header(res, "retry-after"));
});

test("unmatched descriptors and other domains are not limited", async (t) => {
  const req = request([[["route_class", "unknown"], ["user_id", uniqueValue()]]], { hitsAddend: 1_000_000 });
  const res = await rl.client.shouldRateLimit(req);
  t.is(res.overallCode, OK);
  t.is(res.statuses[0]!.code, OK);
  t.is(res.statuses[0]!.currentLimit, undefined);
  t.deepEqual(res.responseHeadersToAdd, []);
  const otherDomain = await rl.client.shouldRateLimit(request([[["route_class", "test_minute"], ["user_id", uniqueValue()]]], { domain: "elsewhere", hitsAddend: 100 }));
  t.is(otherDomain.overallCode, OK);
});

test("the service answers health and needs no token", async (t) => {
  const res = await fetch(`${rl.service.url}/readyz`);
  t.is(res.status, 200);
  t.is((await fetch(`${rl.service.url}/healthz`)).status, 200);
});
