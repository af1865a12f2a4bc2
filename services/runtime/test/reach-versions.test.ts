// Reach versions (src/cache/reach-versions.ts) on both cache adapters: a
// reader always gets a stored value, the same until a bump, and a new one
// when the key is lost, so an answer kept under a version never holds again
// after the cache lost it.
import test from "ava";
import type { Cache } from "../src/cache/cache.ts";
import { MemoryCache } from "../src/cache/memory.ts";
import { openRedisCache } from "../src/cache/redis.ts";
import { bumpReachVersions, readReachVersions, reachVersionKey } from "../src/cache/reach-versions.ts";
import { silentSink } from "../src/bus/log-sink.ts";
import { infra } from "../test-support/infra.ts";

function suite(name: string, open: () => Promise<Cache>): void {
  test(`${name}: a missing version is set on read and read back; a bump or a lost key gives a new one`, async (t) => {
    const cache = await open();
    t.teardown(() => cache.close());
    const [ana, ben] = [crypto.randomUUID(), crypto.randomUUID()];
    t.is(await cache.get(reachVersionKey(ana)), null);
    const first = await readReachVersions(cache, [ana, ben, ana]);
    t.is(first.length, 3);
    t.is(first[0], first[2], "the same user, the same version");
    t.not(first[0], first[1]);
    t.is(await cache.get(reachVersionKey(ana)), first[0]!, "what a reader holds is stored");
    t.true((await cache.ttl(reachVersionKey(ana))) > 3600, "it expires, a day on");
    t.deepEqual(await readReachVersions(cache, [ana, ben]), [first[0]!, first[1]!], "stable until something changes");

    await bumpReachVersions(cache, [ana, ana]);
    const bumped = await readReachVersions(cache, [ana, ben]);
    t.not(bumped[0], first[0]);
    t.is(bumped[1], first[1]);

    // Lost with the cache's data: the next read sets a value no reader held.
    await cache.del(reachVersionKey(ben));
    const afterLoss = await readReachVersions(cache, [ben]);
    t.not(afterLoss[0], first[1]);
    t.is(await cache.get(reachVersionKey(ben)), afterLoss[0]!);
  });

  test(`${name}: a bump racing a first read wins, and the read answers the stored value`, async (t) => {
    const inner = await open();
    t.teardown(() => inner.close());
    const ana = crypto.randomUUID();
    // The bump lands between the read that found nothing and the set that would have made the first version.
    const racing = new Proxy(inner, {
      get(target, property) {
        if (property === "setIfAbsent") {
          return async (key: string, value: string, options?: { ttlSeconds?: number }) => {
            await bumpReachVersions(target, [ana]);
            return target.setIfAbsent(key, value, options);
          };
        }
        const value: unknown = Reflect.get(target, property);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const [version] = await readReachVersions(racing, [ana]);
    t.is(version, (await inner.get(reachVersionKey(ana)))!);
  });
}

suite("memory", async () => new MemoryCache());
suite("redis", async () => openRedisCache({ url: (await infra()).redisUrl, logger: silentSink }));
