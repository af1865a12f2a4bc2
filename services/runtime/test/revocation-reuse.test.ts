// reusedRevocationCheck: a session's "not revoked" reused for a bounded
// time, forgotten on the auth service's announcement; on both cache adapters,
// since the announcement path is the cache's pub/sub.
import test from "ava";
import { randomUUID } from "node:crypto";
import type { Cache } from "../src/cache/cache.ts";
import { MemoryCache } from "../src/cache/memory.ts";
import { openCache } from "../src/cache/open.ts";
import { revokedSessionKey, revokedSessionsChannel, reusedRevocationCheck } from "../src/auth/denylist.ts";
import { eventually, infra } from "../test-support/infra.ts";

const REUSE_MS = 1_000;

/** The cache, counting the denylist lookups made through it. */
function counting(cache: Cache): { cache: Cache; lookups: () => number } {
  let lookups = 0;
  const counted: Cache = Object.create(cache);
  counted.exists = (key) => {
    lookups += 1;
    return cache.exists(key);
  };
  counted.subscribe = (channel, onMessage) => cache.subscribe(channel, onMessage);
  return { cache: counted, lookups: () => lookups };
}

/** A clock the test moves. */
function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

const adapters: Array<[string, () => Promise<Cache>]> = [
  ["memory", async () => new MemoryCache()],
  ["redis", async () => openCache({ url: (await infra()).redisUrl })],
];

/** The check's subscription is live once an announcement for some other session reaches it (it then answers that one from memory). */
async function untilSubscribed(cache: Cache, check: (sessionId: string) => Promise<boolean>): Promise<void> {
  const probe = randomUUID();
  await check(probe);
  await eventually("the check subscribed to revocation announcements", async () => {
    await cache.publish(revokedSessionsChannel, probe);
    return check(probe);
  }, 10_000);
}

for (const [name, open] of adapters) {
  test(`${name}: "not revoked" is reused within the window and asked again after it`, async (t) => {
    const cache = await open();
    t.teardown(() => cache.close());
    const { cache: counted, lookups } = counting(cache);
    const time = clock();
    const check = reusedRevocationCheck(counted, { reuseMs: REUSE_MS, now: time.now });
    await untilSubscribed(cache, check);
    const session = randomUUID();
    const before = lookups();
    t.false(await check(session));
    t.false(await check(session));
    time.advance(REUSE_MS - 1);
    t.false(await check(session));
    t.is(lookups() - before, 1, "one lookup inside the window");
    time.advance(1);
    t.false(await check(session));
    t.is(lookups() - before, 2, "asked again once the window passed");
  });

  test(`${name}: an announced revocation is refused at once, inside the window, and stays refused`, async (t) => {
    const cache = await open();
    t.teardown(() => cache.close());
    const time = clock();
    const check = reusedRevocationCheck(cache, { reuseMs: 60_000, now: time.now });
    await untilSubscribed(cache, check);
    const session = randomUUID();
    t.false(await check(session));
    // What the auth service does on revoke: the denylist key, then the announcement.
    await cache.set(revokedSessionKey(session), "1", { ttlSeconds: 60 });
    await cache.publish(revokedSessionsChannel, session);
    await eventually("the announcement applied", () => check(session), 10_000);
    await cache.del(revokedSessionKey(session)); // a cache that lost the key (flushed): the session is still revoked here
    time.advance(120_000);
    t.true(await check(session));
  });

  test(`${name}: a revocation that was never announced is refused once the window passes`, async (t) => {
    const cache = await open();
    t.teardown(() => cache.close());
    const time = clock();
    const check = reusedRevocationCheck(cache, { reuseMs: REUSE_MS, now: time.now });
    await untilSubscribed(cache, check);
    const session = randomUUID();
    t.false(await check(session));
    await cache.set(revokedSessionKey(session), "1", { ttlSeconds: 60 }); // announcement lost
    t.false(await check(session), "inside the window: the reused answer (the bound this buys)");
    time.advance(REUSE_MS);
    t.true(await check(session));
  });
}

test("a lookup answered after the announcement does not store its stale 'not revoked' over it", async (t) => {
  const cache = new MemoryCache();
  t.teardown(() => cache.close());
  const session = randomUUID();
  let release: (() => void) | undefined;
  const slow: Cache = Object.create(cache);
  // The lookup's reply ("not revoked", read before the revocation) arrives only after the announcement.
  slow.exists = async (key) => {
    const answer = await cache.exists(key);
    if (key === revokedSessionKey(session)) await new Promise<void>((resolve) => (release = resolve));
    return answer;
  };
  let announced = false;
  slow.subscribe = (channel, onMessage) =>
    cache.subscribe(channel, (message) => {
      onMessage(message);
      if (message === session) announced = true;
    });
  const time = clock();
  const check = reusedRevocationCheck(slow, { reuseMs: 60_000, now: time.now });
  await untilSubscribed(cache, check);
  const inFlight = check(session);
  await eventually("the lookup sent", () => release !== undefined, 5_000);
  await cache.publish(revokedSessionsChannel, session);
  await eventually("the announcement delivered", () => announced, 5_000);
  release!();
  t.false(await inFlight, "the call sent before the revocation passes, as without reuse");
  t.true(await check(session), "but its answer is not reused");
});

test("no reuse before the subscription is live, and with a zero window", async (t) => {
  const cache = new MemoryCache();
  t.teardown(() => cache.close());
  const { cache: counted, lookups } = counting(cache);
  counted.subscribe = () => new Promise(() => undefined); // never confirmed
  const time = clock();
  const unsubscribed = reusedRevocationCheck(counted, { reuseMs: REUSE_MS, now: time.now });
  const session = randomUUID();
  for (let i = 0; i < 3; i += 1) t.false(await unsubscribed(session));
  t.is(lookups(), 3, "every call asks while announcements cannot reach this process");
  const { cache: counted2, lookups: lookups2 } = counting(cache);
  const off = reusedRevocationCheck(counted2, { reuseMs: 0, now: time.now });
  for (let i = 0; i < 3; i += 1) t.false(await off(session));
  t.is(lookups2(), 3);
});

test("a cache error fails the check (closed), except for a session answered inside the window", async (t) => {
  const cache = new MemoryCache();
  t.teardown(() => cache.close());
  let down = false;
  const flaky: Cache = Object.create(cache);
  flaky.exists = async (key) => {
    if (down) throw new Error("redis down");
    return cache.exists(key);
  };
  flaky.subscribe = (channel, onMessage) => cache.subscribe(channel, onMessage);
  const time = clock();
  const check = reusedRevocationCheck(flaky, { reuseMs: REUSE_MS, now: time.now });
  await untilSubscribed(cache, check);
  const recent = randomUUID();
  t.false(await check(recent));
  down = true;
  t.false(await check(recent), "answered inside the window");
  await t.throwsAsync(check(randomUUID()), { message: "redis down" });
  time.advance(REUSE_MS);
  await t.throwsAsync(check(recent), { message: "redis down" });
});

test("remembered sessions are bounded", async (t) => {
  const cache = new MemoryCache();
  t.teardown(() => cache.close());
  const { cache: counted, lookups } = counting(cache);
  const time = clock();
  const check = reusedRevocationCheck(counted, { reuseMs: 60_000, maxEntries: 2, now: time.now });
  await untilSubscribed(cache, check);
  const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
  for (const session of [a, b, c]) await check(session);
  const before = lookups();
  await check(c);
  await check(b);
  t.is(lookups() - before, 0, "the two newest are reused");
  await check(a);
  t.is(lookups() - before, 1, "the oldest was let go");
});
