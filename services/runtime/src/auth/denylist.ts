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
