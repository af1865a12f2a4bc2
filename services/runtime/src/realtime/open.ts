// Opening the user-stream port from configuration, for the realtime service
// and for every producer (the feed now; notification and chat next).
import { duration, int, optionalString, type ConfigOf } from "../config.ts";
import type { LogSink } from "../bus/log-sink.ts";
import type { UserStreamHub } from "./user-streams.ts";

/**
 * Where users' streams live: REALTIME_REDIS_URL, else REDIS_URL, else memory
 * (one process: `make dev`). Producers and the realtime service must agree on
 * all three settings.
 */
export const userStreamsConfigSpec = {
  realtimeRedisUrl: optionalString("REALTIME_REDIS_URL"),
  /** Durable items kept per user for resuming streams. */
  historyMaxItems: int("REALTIME_HISTORY_MAX_ITEMS", { default: 1000, min: 1, max: 100_000 }),
  /** A user's history expires this long after the last durable item. */
  historyTtlMs: duration("REALTIME_HISTORY_TTL", { default: "24h", min: "1m", max: "30d" }),
  realtimePrefix: optionalString("REALTIME_REDIS_PREFIX"),
};

export type UserStreamsConfig = ConfigOf<typeof userStreamsConfigSpec> & { redisUrl?: string | undefined };

export async function openUserStreams(config: UserStreamsConfig, logger?: LogSink): Promise<UserStreamHub> {
  const history = { maxItems: config.historyMaxItems, ttlSeconds: Math.ceil(config.historyTtlMs / 1000) };
  const url = config.realtimeRedisUrl ?? config.redisUrl;
  if (url) {
    const { openRedisUserStreams } = await import("./redis.ts");
    return openRedisUserStreams({ url, history, ...(config.realtimePrefix ? { prefix: config.realtimePrefix } : {}), ...(logger ? { logger } : {}) });
  }
  const { MemoryUserStreams } = await import("./memory.ts");
  return new MemoryUserStreams({ history });
}
