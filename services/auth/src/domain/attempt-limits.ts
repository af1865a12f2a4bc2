import type { Cache } from "@aviary/runtime/cache/cache";

/** A fixed-window limit: at most `limit` counted events per `windowSeconds`. */
export interface WindowLimit {
  limit: number;
  windowSeconds: number;
}

/** Answer of a limit check: allowed, or blocked for `retryAfterSeconds`. */
export type LimitState = { blocked: false } | { blocked: true; retryAfterSeconds: number };

/**
 * Counts failures (wrong passwords, code requests) per subject in the cache.
 * A subject over its limit is blocked until its window ends. When the cache is
 * unreachable the limiter lets the request through: losing Redis must cost
 * protection for a moment, never lock every user out.
 */
export interface AttemptLimiter {
  state(subject: string): Promise<LimitState>;
  count(subject: string): Promise<void>;
  reset(subject: string): Promise<void>;
}

export function cacheAttemptLimiter(cache: Cache, name: string, window: WindowLimit): AttemptLimiter {
  const key = (subject: string) => `auth:limit:${name}:${subject}`;
  return {
    async state(subject) {
      try {
        const value = await cache.get(key(subject));
        if (value === null || Number(value) < window.limit) return { blocked: false };
        const ttl = await cache.ttl(key(subject));
        return { blocked: true, retryAfterSeconds: ttl > 0 ? ttl : window.windowSeconds };
      } catch {
        return { blocked: false };
      }
    },
    async count(subject) {
      try {
        await cache.incrWindow(key(subject), window.windowSeconds);
      } catch {
        // See above: a cache outage must not turn into failed logins.
      }
    },
    async reset(subject) {
      try {
        await cache.del(key(subject));
      } catch {
        // Nothing to undo: the window expires on its own.
      }
    },
  };
}
