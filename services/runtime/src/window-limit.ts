// Per-subject limits as "COUNT/WINDOW" (e.g. "30/10s"): at most COUNT actions
// per fixed window, counted in the cache (Redis in production: shared by
// every instance; memory under `make dev`). Losing the cache must not stop
// the feature it guards, so a failing cache lets the action through.
import { ConfigError, parseDuration } from "./config.ts";
import type { Cache } from "./cache/cache.ts";
import { resourceExhausted } from "./errors.ts";
import type { LogSink } from "./bus/log-sink.ts";

export interface WindowRate {
  readonly count: number;
  readonly windowSeconds: number;
}

/** The pattern a config variable holding a rate must match (checked by loadConfig). */
export const windowRatePattern = /^[1-9][0-9]*\/([0-9]+(ms|s|m|h|d))+$/;

export function parseWindowRate(text: string): WindowRate {
  const [count, window] = text.split("/");
  const windowMs = window === undefined ? undefined : parseDuration(window);
  if (count === undefined || windowMs === undefined || windowMs < 1000) throw new Error(`invalid rate ${JSON.stringify(text)}: expected COUNT/WINDOW with a window of at least 1s`);
  return { count: Number(count), windowSeconds: Math.ceil(windowMs / 1000) };
}

/** A rate setting's value (`variable` names it in the error): a ConfigError when it does not parse. */
export function windowRateSetting(variable: string, text: string): WindowRate {
  try {
    return parseWindowRate(text);
  } catch (error) {
    throw new ConfigError([{ variable, problem: error instanceof Error ? error.message : String(error) }]);
  }
}

export interface WindowLimiter {
  /** Counts one action of `subject`; throws RESOURCE_EXHAUSTED (with retry info) past the limit. */
  admit(subject: string): Promise<void>;
}

export function cacheWindowLimiter(cache: Cache, options: { keyPrefix: string; rate: WindowRate; actions: string; logger?: LogSink }): WindowLimiter {
  const { rate } = options;
  return {
    async admit(subject) {
      const key = `${options.keyPrefix}:${subject}`;
      let count: number;
      let retryAfter: number;
      try {
        count = await cache.incrWindow(key, rate.windowSeconds);
        if (count <= rate.count) return;
        retryAfter = await cache.ttl(key);
      } catch (error) {
        options.logger?.warn({ err: error, key: options.keyPrefix }, "rate limit unavailable: letting the action through");
        return;
      }
      throw resourceExhausted(`at most ${rate.count} ${options.actions} per ${rate.windowSeconds}s`, retryAfter > 0 ? retryAfter : rate.windowSeconds);
    },
  };
}
