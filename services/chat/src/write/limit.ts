// The per-user send limit: a fixed window counted in the cache (Redis in
// production: shared by every instance; in memory under `make dev`).
// Losing the cache must not stop chat, so a failing cache lets sends through.
import type { Cache } from "@aviary/runtime/cache/cache";
import { resourceExhausted } from "@aviary/runtime/errors";
import type { LogSink } from "@aviary/runtime/bus/log-sink";
import type { SendRate } from "../domain/send-rate.ts";

export interface SendLimiter {
  /** Counts one send of `userId`; throws RESOURCE_EXHAUSTED (with retry info) past the limit. */
  admit(userId: string): Promise<void>;
}

export function sendLimiter(cache: Cache, rate: SendRate, logger?: LogSink): SendLimiter {
  return {
    async admit(userId) {
      const key = `chat:send-rate:${userId}`;
      let count: number;
      let retryAfter: number;
      try {
        count = await cache.incrWindow(key, rate.windowSeconds);
        if (count <= rate.count) return;
        retryAfter = await cache.ttl(key);
      } catch (error) {
        logger?.warn({ err: error }, "send rate limit unavailable: letting the send through");
        return;
      }
      throw resourceExhausted(`at most ${rate.count} messages per ${rate.windowSeconds}s`, retryAfter > 0 ? retryAfter : rate.windowSeconds);
    },
  };
}
