import type { Cache } from "./cache.ts";
import type { LogSink } from "../bus/log-sink.ts";

export interface OpenCacheOptions {
  /** A redis:// URL selects Redis; without it, the in-memory cache. */
  url?: string;
  logger?: LogSink;
}

export async function openCache(options: OpenCacheOptions = {}): Promise<Cache> {
  if (options.url) {
    const { openRedisCache } = await import("./redis.ts");
    return openRedisCache({ url: options.url, ...(options.logger ? { logger: options.logger } : {}) });
  }
  const { MemoryCache } = await import("./memory.ts");
  return new MemoryCache();
}
