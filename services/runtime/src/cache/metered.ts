import type { Meter } from "@opentelemetry/api";
import { cacheInstruments, keyspaceOf } from "../metrics.ts";
import type { Cache } from "./cache.ts";

/**
 * The cache with `cache_lookups_total{cache, keyspace, result}` counted on
 * every `get` and every key of a `getMany` (hit: a value came back; miss:
 * null). One counter add per key read;
 * the keyspace is the key's first `:` segment (`auth`, `feed`, …), so the
 * hit ratio is per use, not a blend of OTP codes and feed pages. Every other
 * call goes straight through.
 */
export function meteredCache(cache: Cache, meter: Meter): Cache {
  const { lookups } = cacheInstruments(meter);
  const get = async (key: string) => {
    const value = await cache.get(key);
    lookups.add(1, { cache: cache.kind, keyspace: keyspaceOf(key), result: value === null ? "miss" : "hit" });
    return value;
  };
  const getMany = async (keys: readonly string[]) => {
    const values = await cache.getMany(keys);
    values.forEach((value, index) => lookups.add(1, { cache: cache.kind, keyspace: keyspaceOf(keys[index]!), result: value === null ? "miss" : "hit" }));
    return values;
  };
  return new Proxy(cache, {
    get(target, property) {
      if (property === "get") return get;
      if (property === "getMany") return getMany;
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
