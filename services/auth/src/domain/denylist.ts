import type { Cache } from "@aviary/runtime/cache/cache";
import { revokedSessionKey, revokedSessionsChannel } from "@aviary/runtime/auth/denylist";

// The key lives in the runtime: every service's auth interceptor reads it.
export { revokedSessionKey };

/**
 * Access tokens are stateless, so revoking a session would only take effect
 * when its tokens expire. The denylist closes that gap: revoked session ids
 * are kept in the cache for one access-token lifetime (after which every token
 * of the session has expired anyway), and the shared auth interceptor rejects
 * tokens whose `sid` is listed.
 */
export interface SessionDenylist {
  add(sessionIds: string[]): Promise<void>;
  has(sessionId: string): Promise<boolean>;
}

/**
 * The cache may lose the denylist (a Redis restart or flush). The sessions
 * table is the authority, so the auth service re-publishes every session
 * revoked within one token lifetime on a timer: after a cache loss, other
 * services deny revoked tokens again within one interval.
 */
export function startDenylistSync(options: {
  denylist: SessionDenylist;
  recentlyRevoked: (since: Date) => Promise<string[]>;
  accessTokenTtlSeconds: number;
  intervalMs: number;
  onError: (error: unknown) => void;
}): { stop(): void; syncNow(): Promise<void> } {
  const syncNow = async () => {
    const since = new Date(Date.now() - (options.accessTokenTtlSeconds + 60) * 1000);
    await options.denylist.add(await options.recentlyRevoked(since));
  };
  const timer = setInterval(() => syncNow().catch(options.onError), options.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer), syncNow };
}

export function cacheSessionDenylist(cache: Cache, accessTokenTtlSeconds: number): SessionDenylist {
  // A minute beyond the token lifetime covers clock skew between services.
  const ttlSeconds = accessTokenTtlSeconds + 60;
  return {
    async add(sessionIds) {
      await Promise.all(sessionIds.map((id) => cache.set(revokedSessionKey(id), "1", { ttlSeconds })));
      // Announced after the key is set, so a listener that checks the key agrees.
      // The periodic sync announces again: listeners treat an id they hold no stream for as nothing.
      await Promise.all(sessionIds.map((id) => cache.publish(revokedSessionsChannel, id)));
    },
    has: (sessionId) => cache.exists(revokedSessionKey(sessionId)),
  };
}
