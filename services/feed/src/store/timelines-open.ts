import type { TimelineStore, TimelineStoreOptions } from "./timelines.ts";

/** Redis when a URL is configured, else the in-memory store with the same rules. */
export async function openTimelineStore(options: TimelineStoreOptions & { url?: string }): Promise<TimelineStore> {
  if (options.url) {
    const { openRedisTimelineStore } = await import("./timelines-redis.ts");
    return openRedisTimelineStore({ ...options, url: options.url });
  }
  const { MemoryTimelineStore } = await import("./timelines-memory.ts");
  return new MemoryTimelineStore(options);
}
