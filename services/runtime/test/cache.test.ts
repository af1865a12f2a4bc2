/**
 * One suite for the Cache port, run against the in-memory adapter and real
 * Redis: both must give the same answers, including TTL edge cases.
 */
import test from "ava";
import { createServer } from "node:net";
import type { Cache } from "../src/cache/cache.ts";
import { MemoryCache } from "../src/cache/memory.ts";
import { openCache } from "../src/cache/open.ts";
import { openRedisCache } from "../src/cache/redis.ts";
import { silentSink } from "../src/bus/log-sink.ts";
import { eventually, infra, privateServer, uniqueName } from "../test-support/infra.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function cacheSuite(name: string, open: () => Promise<Cache>): void {
  test(`${name}: get, set, exists and del`, async (t) => {
    const cache = await open();
    const k = uniqueName("k");
    try {
      t.is(await cache.get(`${k}:a`), null);
      t.false(await cache.exists(`${k}:a`));
      await cache.set(`${k}:a`, "1");
      await cache.set(`${k}:b`, "2");
      t.is(await cache.get(`${k}:a`), "1");
      t.true(await cache.exists(`${k}:a`));
      await cache.set(`${k}:a`, "one");
      t.is(await cache.get(`${k}:a`), "one");
      t.is(await cache.del(`${k}:a`, `${k}:b`, `${k}:missing`), 2);
      t.is(await cache.del(), 0);
      t.is(await cache.get(`${k}:b`), null);
    } finally {
      await cache.close();
    }
  });

  test(`${name}: getMany answers in the order asked, null where missing or expired`, async (t) => {
    const cache = await open();
    const k = uniqueName("k");
    try {
      t.deepEqual(await cache.getMany([]), []);
      await cache.set(`${k}:a`, "1");
      await cache.set(`${k}:b`, "2");
      await cache.set(`${k}:gone`, "x", { ttlSeconds: 0.2 });
      await eventually("the short key expired", async () => (await cache.get(`${k}:gone`)) === null, 5_000, 50);
      t.deepEqual(await cache.getMany([`${k}:b`, `${k}:missing`, `${k}:a`, `${k}:gone`, `${k}:b`]), ["2", null, "1", null, "2"]);
    } finally {
      await cache.close();
    }
  });

  test(`${name}: ttl is -2 when missing, -1 without expiry, rounded seconds with one`, async (t) => {
    const cache = await open();
    const k = uniqueName("k");
    try {
      t.is(await cache.ttl(`${k}:none`), -2);
      await cache.set(`${k}:forever`, "x");
      t.is(await cache.ttl(`${k}:forever`), -1);
      await cache.set(`${k}:short`, "x", { ttlSeconds: 30 });
      t.is(await cache.ttl(`${k}:short`), 30);
      // A plain SET drops the expiry, as in Redis.
      await cache.set(`${k}:short`, "y");
      t.is(await cache.ttl(`${k}:short`), -1);
    } finally {
      await cache.close();
    }
  });

  test(`${name}: values with a TTL expire`, async (t) => {
    const cache = await open();
    const k = uniqueName("k");
    try {
      await cache.set(`${k}:a`, "soon gone", { ttlSeconds: 0.4 });
      t.is(await cache.get(`${k}:a`), "soon gone");
      await sleep(600);
      t.is(await cache.get(`${k}:a`), null);
      t.false(await cache.exists(`${k}:a`));
      t.is(await cache.ttl(`${k}:a`), -2);
    } finally {
      await cache.close();
    }
  });

  test(`${name}: setIfAbsent sets once, and again after expiry`, async (t) => {
    const cache = await open();
    const k = uniqueName("k");
    try {
      t.true(await cache.setIfAbsent(`${k}:lock`, "first", { ttlSeconds: 0.4 }));
      t.false(await cache.setIfAbsent(`${k}:lock`, "second", { ttlSeconds: 0.4 }));
      t.is(await cache.get(`${k}:lock`), "first");
      await sleep(600);
      t.true(await cache.setIfAbsent(`${k}:lock`, "third"));
      t.is(await cache.get(`${k}:lock`), "third");
      t.is(await cache.ttl(`${k}:lock`), -1);
    } finally {
      await cache.close();
    }
  });

  test(`${name}: incrWindow counts within a window the first increment opens`, async (t) => {
    const cache = await open();
    const k = uniqueName("k");
    try {
      t.is(await cache.incrWindow(`${k}:rate`, 1), 1);
      t.is(await cache.ttl(`${k}:rate`), 1);
      await sleep(300);
      t.is(await cache.incrWindow(`${k}:rate`, 1), 2);
      t.is(await cache.incrWindow(`${k}:rate`, 60), 3, "a later increment neither resets nor extends the window");
      await sleep(800);
      // 1.1 s after the first increment the window has closed: a new one starts.
      t.is(await cache.incrWindow(`${k}:rate`, 1), 1);
      // A counter whose expiry was lost gets one back instead of living forever.
      await cache.set(`${k}:stuck`, "5");
      t.is(await cache.incrWindow(`${k}:stuck`, 10), 6);
      t.is(await cache.ttl(`${k}:stuck`), 10);
    } finally {
      await cache.close();
    }
  });

  test(`${name}: incrWindow on a non-number fails`, async (t) => {
    const cache = await open();
    const k = uniqueName("k");
    try {
      await cache.set(`${k}:text`, "abc");
      await t.throwsAsync(() => cache.incrWindow(`${k}:text`, 10), { message: /not an integer/ });
    } finally {
      await cache.close();
    }
  });

  test(`${name}: a TTL must be positive`, async (t) => {
    const cache = await open();
    try {
      await t.throwsAsync(() => cache.set(uniqueName("k"), "x", { ttlSeconds: 0 }), { instanceOf: RangeError });
      await t.throwsAsync(() => cache.setIfAbsent(uniqueName("k"), "x", { ttlSeconds: -1 }), { instanceOf: RangeError });
      await t.throwsAsync(() => cache.incrWindow(uniqueName("k"), 0), { instanceOf: RangeError });
    } finally {
      await cache.close();
    }
  });

  test(`${name}: pub/sub delivers in order to every subscriber until unsubscribed`, async (t) => {
    const cache = await open();
    const channel = uniqueName("ch");
    try {
      const first: string[] = [];
      const second: string[] = [];
      const other: string[] = [];
      const stopFirst = await cache.subscribe(channel, (m) => first.push(m));
      const stopSecond = await cache.subscribe(channel, (m) => second.push(m));
      const stopOther = await cache.subscribe(`${channel}-other`, (m) => other.push(m));
      for (const m of ["a", "b", "c"]) await cache.publish(channel, m);
      await eventually("both subscribers to get 3 messages", () => first.length === 3 && second.length === 3, 5_000);
      t.deepEqual(first, ["a", "b", "c"]);
      t.deepEqual(second, ["a", "b", "c"]);

      await stopFirst();
      await cache.publish(channel, "d");
      await eventually("the remaining subscriber to get d", () => second.length === 4, 5_000);
      await sleep(100);
      t.deepEqual(first, ["a", "b", "c"], "unsubscribed handler got nothing more");
      t.deepEqual(second, ["a", "b", "c", "d"]);
      t.deepEqual(other, []);
      await stopSecond();
      await stopOther();
    } finally {
      await cache.close();
    }
  });

}

cacheSuite("memory", async () => new MemoryCache());
cacheSuite("redis", async () => openRedisCache({ url: (await infra()).redisUrl, logger: silentSink }));

test("openCache picks redis for a url and memory without", async (t) => {
  const redis = await openCache({ url: (await infra()).redisUrl, logger: silentSink });
  const memory = await openCache();
  try {
    t.is(redis.kind, "redis");
    t.is(memory.kind, "memory");
    await redis.ping();
  } finally {
    await Promise.all([redis.close(), memory.close()]);
  }
});

test("redis: an unreachable server fails commands within seconds instead of hanging", async (t) => {
  const port = await closedPort();
  const cache = openRedisCache({ url: `redis://127.0.0.1:${port}`, logger: silentSink });
  try {
    const started = Date.now();
    await t.throwsAsync(() => cache.get("anything"));
    await t.throwsAsync(() => cache.ping());
    t.true(Date.now() - started < 8_000, `took ${Date.now() - started} ms`);
  } finally {
    await cache.close();
  }
});

test("redis: commands and pub/sub recover when the server comes back, without reopening", async (t) => {
  t.timeout(120_000);
  // A Redis of its own: stopping the shared one would break parallel suites.
  const server = await privateServer("redis", "redis-restart");
  const cache = openRedisCache({ url: server.url, logger: silentSink });
  const channel = uniqueName("ch");
  try {
    const received: string[] = [];
    await cache.subscribe(channel, (m) => received.push(m));
    await cache.set("k", "before");
    await server.stop();

    const started = Date.now();
    await t.throwsAsync(() => cache.get("k"), undefined, "a dead Redis is an error, not a hang");
    t.true(Date.now() - started < 8_000, `failed after ${Date.now() - started} ms`);

    await server.start();
    await eventually(
      "commands to work again",
      async () => (await cache.set("k", "after").then(() => true, () => false)),
      30_000,
      200,
    );
    t.is(await cache.get("k"), "after");
    // The subscriber connection reconnects and subscribes again by itself.
    await eventually(
      "pub/sub to deliver again",
      async () => {
        await cache.publish(channel, "ping").catch(() => undefined);
        return received.includes("ping");
      },
      30_000,
      200,
    );
    t.pass();
  } finally {
    await cache.close();
    await server.down();
  }
});

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (typeof address !== "object" || address === null) throw new Error("no port");
  return address.port;
}
