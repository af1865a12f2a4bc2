// Streams outlive the token check at their start, so revocation must reach
// them: the auth service announces each revoked session on a cache channel
// (ended here at once), and every `recheckMs` the sessions held here are
// checked against the denylist itself, in case an announcement was missed
// (a subscriber reconnect, a cache restart before the auth service re-synced).
import { cacheRevocationCheck, revokedSessionsChannel } from "@aviary/runtime/auth/denylist";
import type { Cache } from "@aviary/runtime/cache/cache";
import type { Logger } from "@aviary/runtime/log";
import { sessionRevoked, type StreamRegistry } from "./registry.ts";

export async function watchRevocations(deps: { cache: Cache; registry: StreamRegistry; logger: Logger; recheckMs: number }): Promise<{ stop(): Promise<void> }> {
  const end = (sessionId: string) => {
    const ended = deps.registry.endSession(sessionId, sessionRevoked());
    if (ended > 0) deps.logger.info({ sessionId, streams: ended }, "streams of a revoked session ended");
  };
  const unsubscribe = await deps.cache.subscribe(revokedSessionsChannel, end);
  const isRevoked = cacheRevocationCheck(deps.cache);
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    const sessions = deps.registry.sessions();
    Promise.all(sessions.map(async (sessionId) => ((await isRevoked(sessionId)) ? end(sessionId) : undefined)))
      .catch((e: unknown) => deps.logger.warn({ err: e }, "revocation recheck failed"))
      .finally(() => (running = false));
  }, deps.recheckMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await unsubscribe();
    },
  };
}
