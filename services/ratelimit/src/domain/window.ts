// Fixed-window counting on the cache port.
//
// Time is cut into windows of one limit unit, aligned to the epoch (a minute
// window runs from :00 to :59). Each (domain, descriptor, window) has one
// counter key that includes the window's start, so a new window starts at zero
// without anyone resetting anything; the counter expires one window after its
// first hit (cache.incrWindow), so old windows clean themselves up.
// A fixed window lets a client spend up to twice the limit across a window
// boundary; that is the usual price for one atomic INCR per check.
import type { Cache } from "@aviary/runtime/cache/cache";
import { UNIT_SECONDS, type DescriptorEntry, type LimitUnit } from "./limits.ts";

export interface WindowLimit {
  requestsPerUnit: number;
  unit: LimitUnit;
}

export interface WindowResult {
  /** The count in this window after this request's hits. */
  count: number;
  over: boolean;
  /** Requests left in this window (0 when over). */
  remaining: number;
  /** Milliseconds until the window ends. */
  resetMs: number;
  windowSeconds: number;
}

/** The window containing `nowMs`: its start (epoch seconds) and the milliseconds left in it. */
export function windowAt(nowMs: number, windowSeconds: number): { startSeconds: number; resetMs: number } {
  const windowMs = windowSeconds * 1000;
  const startMs = Math.floor(nowMs / windowMs) * windowMs;
  return { startSeconds: startMs / 1000, resetMs: startMs + windowMs - nowMs };
}

/**
 * The counter key: domain, unit, window start and every entry, each part
 * URI-encoded so no value can forge a separator ("a:b" cannot collide with a
 * two-entry descriptor).
 */
export function counterKey(domain: string, unit: LimitUnit, startSeconds: number, entries: readonly DescriptorEntry[]): string {
  const parts = entries.map((e) => `${encodeURIComponent(e.key)}=${encodeURIComponent(e.value)}`);
  return `ratelimit:${encodeURIComponent(domain)}:${unit}:${startSeconds}:${parts.join("&")}`;
}

/** Over once the count passes the limit: the limit-th request is the last one allowed. */
export function decide(count: number, limit: number): { over: boolean; remaining: number } {
  return { over: count > limit, remaining: Math.max(0, limit - count) };
}

/**
 * Adds `hits` to the descriptor's counter in the current window and decides.
 * `hits` 0 only reads the counter. The cache port increments by one, so `hits`
 * increments are issued together (one round trip's worth on a pipelined
 * connection) — capped at limit + 1, which already puts the window over: more
 * would change no decision until the window ends.
 */
export async function hitWindow(
  cache: Cache,
  input: { domain: string; entries: readonly DescriptorEntry[]; limit: WindowLimit; hits: number },
  nowMs: number = Date.now(),
): Promise<WindowResult> {
  const windowSeconds = UNIT_SECONDS[input.limit.unit];
  const { startSeconds, resetMs } = windowAt(nowMs, windowSeconds);
  const key = counterKey(input.domain, input.limit.unit, startSeconds, input.entries);
  let count: number;
  if (input.hits <= 0) {
    count = Number((await cache.get(key)) ?? 0) || 0;
  } else {
    const increments = Math.min(input.hits, input.limit.requestsPerUnit + 1);
    // Each INCR is atomic, so the largest reply is the count after all of ours.
    const replies = await Promise.all(Array.from({ length: increments }, () => cache.incrWindow(key, windowSeconds)));
    count = Math.max(...replies);
  }
  return { count, ...decide(count, input.limit.requestsPerUnit), resetMs, windowSeconds };
}
