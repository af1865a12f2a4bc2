// The cache key of the session denylist, shared by its writer (the auth
// service) and every service's auth interceptor that reads it.
import type { Cache } from "../cache/cache.ts";

/** Key under which a revoked session id is denylisted; every service's auth interceptor reads it. */
export function revokedSessionKey(sessionId: string): string {
  return `auth:revoked-session:${sessionId}`;
}

/**
 * The channel the auth service announces each revoked session id on, so
 * holders of long-lived streams (the realtime service) can end them at once
 * rather than at their next periodic check.
 */
export const revokedSessionsChannel = "auth:revoked-sessions";

/**
 * The revocation check of a service that does not own sessions: the cache
 * denylist alone. A cache error propagates, so the auth interceptor fails
 * closed (UNAVAILABLE).
 */
export function cacheRevocationCheck(cache: Cache): (sessionId: string) => Promise<boolean> {
  return (sessionId) => cache.exists(revokedSessionKey(sessionId));
}

export interface ReusedRevocationOptions {
  /** How long a "not revoked" answer of the denylist is reused (AUTH_REVOCATION_REUSE); 0 asks on every call. */
  reuseMs: number;
  /** Sessions remembered, each way (default 100,000); past it the oldest entry goes. */
  maxEntries?: number;
  now?: () => number;
}

/**
 * The cache denylist, asked at most once per `reuseMs` per session, for the
 * services whose every call checks it: a Redis round trip per call was a
 * tenth of a cached read's CPU. The rule that keeps revocation prompt:
 * - A "not revoked" answer is reused for at most `reuseMs`, and only once
 *   this process has subscribed to the auth service's announcements
 *   (revokedSessionsChannel); an announcement forgets it at once, so a
 *   revoked session is refused as soon as the announcement arrives, and
 *   within `reuseMs` even when the announcement is lost (a subscriber
 *   connection that dropped and is reconnecting: the Cache port does not
 *   say so, and the bound does not need it; the auth service also
 *   re-announces every sync interval).
 * - "Revoked" is final (a session never comes back), so an announced or
 *   found revocation is remembered, and a "not revoked" answer to a lookup
 *   sent before the announcement arrived is not stored over it.
 * - A cache error still propagates (the interceptor fails closed), except
 *   for a session answered in the last `reuseMs`.
 */
export function reusedRevocationCheck(cache: Cache, options: ReusedRevocationOptions): (sessionId: string) => Promise<boolean> {
  const ask = cacheRevocationCheck(cache);
  if (options.reuseMs <= 0) return ask;
  const { reuseMs } = options;
  const now = options.now ?? Date.now;
  const maxEntries = options.maxEntries ?? 100_000;
  /** Session → clock ms until which "not revoked" may be reused; in insertion order, so expiry order too. */
  const notRevokedUntil = new Map<string, number>();
  const revoked = new Set<string>();
  let subscribing: Promise<void> | undefined;
  let live = false;

  const markRevoked = (sessionId: string) => {
    notRevokedUntil.delete(sessionId);
    revoked.add(sessionId);
    if (revoked.size > maxEntries) revoked.delete(revoked.values().next().value!);
  };
  const listen = () => {
    // Retried on a later call when it fails (the cache down at start).
    subscribing ??= cache.subscribe(revokedSessionsChannel, markRevoked).then(
      () => void (live = true),
      () => void (subscribing = undefined),
    );
  };
  const prune = (at: number) => {
    for (const [sessionId, until] of notRevokedUntil) {
      if (until > at && notRevokedUntil.size <= maxEntries) break;
      notRevokedUntil.delete(sessionId);
    }
  };

  return async (sessionId) => {
    if (revoked.has(sessionId)) return true;
    listen();
    const askedAt = now();
    if (live && (notRevokedUntil.get(sessionId) ?? 0) > askedAt) return false;
    const isRevoked = await ask(sessionId);
    if (isRevoked) markRevoked(sessionId);
    else if (live && !revoked.has(sessionId)) {
      notRevokedUntil.delete(sessionId);
      notRevokedUntil.set(sessionId, askedAt + reuseMs);
      prune(askedAt);
    }
    return isRevoked;
  };
}
