// Unit tests: rule matching, the window math and the handler's decisions on
// the in-memory cache (no servers).
import test from "ava";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { MemoryCache } from "@aviary/runtime/cache/memory";
import { createLogger } from "@aviary/runtime/log";
import { RateLimitRequestSchema, RateLimitResponse_Code, RateLimitResponse_RateLimit_Unit, type RateLimitResponse } from "@aviary/gen/envoy/service/ratelimit/v3/rls_pb";
import { RateLimitUnit } from "@aviary/gen/envoy/type/v3/ratelimit_unit_pb";
import type { Cache } from "@aviary/runtime/cache/cache";
import { defaultRules, matchRule, parseRules, type LimitRule } from "../src/domain/limits.ts";
import { counterKey, decide, hitWindow, windowAt } from "../src/domain/window.ts";
import { createRateLimitHandlers, hitsOf, limitFor, rateLimitHeaders } from "../src/handlers.ts";
import { rateLimitConfigFromEnv } from "../src/server.ts";

const e = (key: string, value: string) => ({ key, value });

test("rules match exact entry lists in order; a value-less rule entry matches any value", (t) => {
  t.is(matchRule(defaultRules, [e("route_class", "auth_public"), e("remote_address", "203.0.113.7")])?.name, "auth_public_per_ip");
  t.is(matchRule(defaultRules, [e("route_class", "read"), e("user_id", "u1")])?.name, "read_per_user");
  t.is(matchRule(defaultRules, [e("route_class", "write"), e("user_id", "u1")])?.name, "write_per_user");
  t.is(matchRule(defaultRules, [e("route_class", "stream_open"), e("user_id", "u1")])?.name, "stream_open_per_user");
  t.is(matchRule(defaultRules, [e("route_class", "stream_open"), e("remote_address", "203.0.113.7")])?.name, "stream_open_per_ip");
  t.is(matchRule(defaultRules, [e("route_class", "stream_open"), e("session_id", "s1")]), undefined, "stream_open is per user or per address only");
  t.is(matchRule(defaultRules, [e("route_class", "other"), e("user_id", "u1")]), undefined, "other value");
  t.is(matchRule(defaultRules, [e("user_id", "u1"), e("route_class", "read")]), undefined, "order matters");
  t.is(matchRule(defaultRules, [e("route_class", "read")]), undefined, "too few entries");
  t.is(matchRule(defaultRules, [e("route_class", "read"), e("user_id", "u1"), e("x", "y")]), undefined, "too many entries");
  t.is(matchRule(defaultRules, []), undefined);
});

test("default limits are 30/min per IP on public auth, 600/min reads and 120/min writes per user, stream opens 30/min per user and 120/min per IP", (t) => {
  t.deepEqual(
    defaultRules.map((r) => [r.name, r.requestsPerUnit, r.unit]),
    [
      ["auth_public_per_ip", 30, "minute"],
      ["read_per_user", 600, "minute"],
      ["write_per_user", 120, "minute"],
      ["stream_open_per_user", 30, "minute"],
      ["stream_open_per_ip", 120, "minute"],
    ],
  );
});

test("RATELIMIT_RULES parses, and bad rules fail config with one clear message", (t) => {
  const rules = parseRules('[{"name":"x","entries":[{"key":"a","value":"b"},{"key":"c"}],"requests_per_unit":7,"unit":"hour"}]');
  t.deepEqual(rules, [{ name: "x", entries: [{ key: "a", value: "b" }, { key: "c" }], requestsPerUnit: 7, unit: "hour" }]);
  t.throws(() => parseRules("{"), { message: /not JSON/ });
  t.throws(() => parseRules("{}"), { message: /array/ });
  t.throws(() => parseRules('[{"name":"x","entries":[],"requests_per_unit":1,"unit":"hour"}]'), { message: /entries/ });
  t.throws(() => parseRules('[{"name":"x","entries":[{"key":"a"}],"requests_per_unit":-1,"unit":"hour"}]'), { message: /requests_per_unit/ });
  t.throws(() => parseRules('[{"name":"x","entries":[{"key":"a"}],"requests_per_unit":1,"unit":"month"}]'), { message: /unit/ });
  t.throws(() => parseRules('[{"name":"x","entries":[{"key":"a"}],"requests_per_unit":1,"unit":"day"},{"name":"x","entries":[{"key":"b"}],"requests_per_unit":1,"unit":"day"}]'), {
    message: /duplicate/,
  });
  const error = t.throws(() => rateLimitConfigFromEnv({ RATELIMIT_RULES: "[1]", RATELIMIT_PORT: "nope" }));
  t.regex(error.message, /RATELIMIT_RULES: rule 0: must be an object/);
  t.regex(error.message, /RATELIMIT_PORT/);
  const config = rateLimitConfigFromEnv({});
  t.is(config.port, 8090);
  t.is(config.host, "127.0.0.1");
  t.is(config.domain, "aviary");
  t.is(config.rules, defaultRules);
});

test("windows are aligned to the epoch; reset is the time left in the window", (t) => {
  t.deepEqual(windowAt(120_000, 60), { startSeconds: 120, resetMs: 60_000 });
  t.deepEqual(windowAt(179_999, 60), { startSeconds: 120, resetMs: 1 });
  t.deepEqual(windowAt(1_500, 1), { startSeconds: 1, resetMs: 500 });
  t.deepEqual(decide(5, 5), { over: false, remaining: 0 }, "the limit-th request is allowed");
  t.deepEqual(decide(6, 5), { over: true, remaining: 0 });
  t.deepEqual(decide(1, 0), { over: true, remaining: 0 }, "a zero limit blocks everything");
});

test("counter keys separate domains, units, windows and values, and cannot be forged with separators", (t) => {
  const k = (d: string, entries: Array<{ key: string; value: string }>, start = 60) => counterKey(d, "minute", start, entries);
  t.not(k("a", [e("u", "1")]), k("b", [e("u", "1")]));
  t.not(k("a", [e("u", "1")]), k("a", [e("u", "1")], 120));
  t.not(counterKey("a", "minute", 60, [e("u", "1")]), counterKey("a", "second", 60, [e("u", "1")]));
  t.not(k("a", [e("u", "1&v=2")]), k("a", [e("u", "1"), e("v", "2")]));
  t.not(k("a:b", [e("u", "1")]), k("a", [e("b:u", "1")]));
});

test("hitWindow counts hits in the window, rolls over, and honours hits", async (t) => {
  const cache = new MemoryCache();
  t.teardown(() => cache.close());
  const input = { domain: "d", entries: [e("u", "1")], limit: { requestsPerUnit: 3, unit: "minute" as const } };
  const t0 = 60_000 * 1000 + 10_000; // 10 s into a minute
  t.like(await hitWindow(cache, { ...input, hits: 1 }, t0), { count: 1, over: false, remaining: 2, resetMs: 50_000, windowSeconds: 60 });
  t.like(await hitWindow(cache, { ...input, hits: 2 }, t0 + 1), { count: 3, over: false, remaining: 0 });
  t.like(await hitWindow(cache, { ...input, hits: 0 }, t0 + 2), { count: 3, over: false, remaining: 0 }, "0 hits only looks");
  t.like(await hitWindow(cache, { ...input, hits: 1 }, t0 + 3), { count: 4, over: true, remaining: 0 });
  t.like(await hitWindow(cache, { ...input, hits: 1 }, t0 + 50_000), { count: 1, over: false, remaining: 2, resetMs: 60_000 }, "next window starts at zero");
  // More hits than the limit: over at once, with at most limit + 1 increments.
  const big = await hitWindow(cache, { domain: "d", entries: [e("u", "2")], limit: { requestsPerUnit: 3, unit: "minute" }, hits: 1_000_000 }, t0);
  t.like(big, { over: true, remaining: 0 });
  t.is(big.count, 4);
});

test("hits: the descriptor's hits_addend wins, else the request's, where 0 means 1", (t) => {
  t.is(hitsOf({ hitsAddend: 0 }, { hitsAddend: undefined }), 1);
  t.is(hitsOf({ hitsAddend: 4 }, { hitsAddend: undefined }), 4);
  t.is(hitsOf({ hitsAddend: 4 }, { hitsAddend: 2n }), 2);
  t.is(hitsOf({ hitsAddend: 4 }, { hitsAddend: 0n }), 0);
  t.is(hitsOf({ hitsAddend: 0 }, { hitsAddend: 1n << 40n }), 0xffff_ffff);
});

test("a descriptor's limit override replaces the table for units with a fixed length", (t) => {
  const entries = [create(RateLimitRequestSchema, { descriptors: [{ entries: [e("route_class", "read"), e("user_id", "u")] }] }).descriptors[0]!.entries].flat();
  t.is(limitFor(defaultRules, { entries, limit: undefined })?.name, "read_per_user");
  const override = limitFor(defaultRules, { entries, limit: { $typeName: "envoy.extensions.common.ratelimit.v3.RateLimitDescriptor.RateLimitOverride", requestsPerUnit: 9, unit: RateLimitUnit.HOUR } });
  t.deepEqual(override, { name: "override", limit: { requestsPerUnit: 9, unit: "hour" } });
  const month = limitFor(defaultRules, { entries, limit: { $typeName: "envoy.extensions.common.ratelimit.v3.RateLimitDescriptor.RateLimitOverride", requestsPerUnit: 9, unit: RateLimitUnit.MONTH } });
  t.is(month?.name, "read_per_user", "a month override is ignored");
});

test("headers describe the tightest descriptor; retry-after when over", (t) => {
  const minute = { requestsPerUnit: 10, unit: "minute" as const };
  const second = { requestsPerUnit: 3, unit: "second" as const };
  t.deepEqual(
    rateLimitHeaders([
      { limit: minute, result: { count: 2, over: false, remaining: 8, resetMs: 30_500, windowSeconds: 60 } },
      { limit: second, result: { count: 1, over: false, remaining: 2, resetMs: 400, windowSeconds: 1 } },
    ]),
    [
      { key: "x-ratelimit-limit", value: "3, 3;w=1" },
      { key: "x-ratelimit-remaining", value: "2" },
      { key: "x-ratelimit-reset", value: "1" },
    ],
  );
  const over = rateLimitHeaders([{ limit: minute, result: { count: 11, over: true, remaining: 0, resetMs: 30_500, windowSeconds: 60 } }]);
  t.deepEqual(over.at(-1), { key: "retry-after", value: "31" });
  t.deepEqual(rateLimitHeaders([]), []);
});

function handlers(
  cache: Cache,
  rules: readonly LimitRule[] = defaultRules,
  options: { cacheTimeoutMs?: number; now?: () => number; responseHeaders?: "all" | "none" } = {},
) {
  return createRateLimitHandlers({
    cache,
    rules,
    domain: "aviary",
    cacheTimeoutMs: options.cacheTimeoutMs ?? 1000,
    responseHeaders: options.responseHeaders ?? "all",
    logger: createLogger("ratelimit-test", "silent"),
    ...(options.now ? { now: options.now } : {}),
  });
}

// The handler builds full messages (create), and ignores the handler context.
const call = async (h: ReturnType<typeof handlers>, init: MessageInitShape<typeof RateLimitRequestSchema>): Promise<RateLimitResponse> =>
  (await h.shouldRateLimit!(create(RateLimitRequestSchema, init), undefined as never)) as RateLimitResponse;

test("ShouldRateLimit on the memory cache: statuses per descriptor, overall over when any is", async (t) => {
  const cache = new MemoryCache();
  t.teardown(() => cache.close());
  let now = 1_000_000 * 60_000 + 5_000;
  const h = handlers(cache, parseRules('[{"name":"two","entries":[{"key":"k"}],"requests_per_unit":2,"unit":"minute"}]'), { now: () => now });
  const req = { domain: "aviary", descriptors: [{ entries: [e("k", "a")] }, { entries: [e("nomatch", "x")] }] };
  let res = await call(h, req);
  t.is(res.overallCode, RateLimitResponse_Code.OK);
  t.is(res.statuses.length, 2);
  t.like(res.statuses[0], { code: RateLimitResponse_Code.OK, limitRemaining: 1, currentLimit: { name: "two", requestsPerUnit: 2, unit: RateLimitResponse_RateLimit_Unit.MINUTE } });
  t.is(res.statuses[0]!.durationUntilReset?.seconds, 55n);
  t.like(res.statuses[1], { code: RateLimitResponse_Code.OK, currentLimit: undefined });
  await call(h, req);
  res = await call(h, req);
  t.is(res.overallCode, RateLimitResponse_Code.OVER_LIMIT);
  t.is(res.statuses[0]!.code, RateLimitResponse_Code.OVER_LIMIT);
  t.is(res.statuses[1]!.code, RateLimitResponse_Code.OK);
  t.is(res.responseHeadersToAdd.find((x) => x.key === "retry-after")?.value, "55");
  now += 55_000;
  t.is((await call(h, req)).overallCode, RateLimitResponse_Code.OK, "next window");
  // Another domain is not ours to limit.
  t.is((await call(h, { ...req, domain: "other" })).statuses[0]!.currentLimit, undefined);
  // Bad requests.
  await t.throwsAsync(call(h, { domain: "", descriptors: req.descriptors }), { message: /invalid request/ });
  await t.throwsAsync(call(h, { domain: "aviary" }), { message: /invalid request/ });
});

test("stream opens with the default rules: both descriptors counted, refused when either is over", async (t) => {
  const cache = new MemoryCache();
  t.teardown(() => cache.close());
  const now = 2_000_000 * 60_000 + 1_000;
  const h = handlers(cache, defaultRules, { now: () => now });
  // What the edge sends for one Subscribe (tools/edge/envoy-config.ts rateLimitActions).
  const open = (user: string, ip: string) => ({
    domain: "aviary",
    descriptors: [{ entries: [e("route_class", "stream_open"), e("user_id", user)] }, { entries: [e("route_class", "stream_open"), e("remote_address", ip)] }],
  });
  const perUser = defaultRules.find((r) => r.name === "stream_open_per_user")!.requestsPerUnit;
  const perIp = defaultRules.find((r) => r.name === "stream_open_per_ip")!.requestsPerUnit;
  t.true(perUser < perIp, "an address may hold more users than one");
  // One user reconnecting from ever new addresses: the per-user limit refuses it.
  for (let i = 0; i < perUser; i++) t.is((await call(h, open("loop", `198.51.100.${i}`))).overallCode, RateLimitResponse_Code.OK, `open ${i + 1}`);
  let res = await call(h, open("loop", "198.51.100.250"));
  t.is(res.overallCode, RateLimitResponse_Code.OVER_LIMIT);
  t.like(res.statuses[0], { code: RateLimitResponse_Code.OVER_LIMIT, currentLimit: { name: "stream_open_per_user" } });
  t.like(res.statuses[1], { code: RateLimitResponse_Code.OK, currentLimit: { name: "stream_open_per_ip" } });
  // Many users from one address: the per-address limit refuses the next one, whose own count is fine.
  for (let i = 0; i < perIp; i++) t.is((await call(h, open(`user-${i}`, "203.0.113.9"))).overallCode, RateLimitResponse_Code.OK);
  res = await call(h, open("fresh", "203.0.113.9"));
  t.is(res.overallCode, RateLimitResponse_Code.OVER_LIMIT);
  t.like(res.statuses[0], { code: RateLimitResponse_Code.OK, limitRemaining: perUser - 1 });
  t.like(res.statuses[1], { code: RateLimitResponse_Code.OVER_LIMIT, currentLimit: { name: "stream_open_per_ip" } });
  t.truthy(res.responseHeadersToAdd.find((x) => x.key === "retry-after"));
});

test("ShouldRateLimit fails open when the cache errors or is slow", async (t) => {
  const broken = new MemoryCache();
  t.teardown(() => broken.close());
  broken.incrWindow = () => Promise.reject(new Error("connection refused"));
  const req = { domain: "aviary", descriptors: [{ entries: [e("route_class", "read"), e("user_id", "u")] }] };
  let res = await call(handlers(broken), req);
  t.is(res.overallCode, RateLimitResponse_Code.OK);
  t.is(res.statuses[0]!.code, RateLimitResponse_Code.OK);
  t.is(res.responseHeadersToAdd.length, 0);
  const slow = new MemoryCache();
  t.teardown(() => slow.close());
  slow.incrWindow = () => new Promise((resolve) => setTimeout(() => resolve(1_000_000), 500));
  const started = Date.now();
  res = await call(handlers(slow, defaultRules, { cacheTimeoutMs: 50 }), req);
  t.is(res.overallCode, RateLimitResponse_Code.OK);
  t.true(Date.now() - started < 400, "answers within the cache timeout, not the cache's time");
});

test("RATELIMIT_RESPONSE_HEADERS: all by default (the edge's only rate-limit headers), or none", async (t) => {
  const cache = new MemoryCache();
  t.teardown(() => cache.close());
  const rules = parseRules('[{"name":"one","entries":[{"key":"k"}],"requests_per_unit":1,"unit":"hour"}]');
  const req = { domain: "aviary", descriptors: [{ entries: [e("k", "a")] }] };
  const all = handlers(cache, rules);
  t.deepEqual((await call(all, req)).responseHeadersToAdd.map((h) => h.key), ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"], "under the limit");
  t.deepEqual((await call(all, req)).responseHeadersToAdd.map((h) => h.key), ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"], "over");
  const none = handlers(cache, rules, { responseHeaders: "none" });
  t.deepEqual((await call(none, req)).responseHeadersToAdd, []);
  t.is(rateLimitConfigFromEnv({}).responseHeaders, "all");
  t.throws(() => rateLimitConfigFromEnv({ RATELIMIT_RESPONSE_HEADERS: "retry_after" }), { message: /RATELIMIT_RESPONSE_HEADERS/ });
});
