// Typing signals, coalesced: a client may call SetTyping on every keystroke,
// but members need at most one signal per (conversation, typer) per interval
// to keep their indicator alive. Kept in memory, per instance: behind several
// instances a typer may be signalled once per instance per interval, which
// is harmless (signals are ephemeral and idempotent for the client).

export interface TypingCoalescer {
  /** True when a signal for (conversation, user) should go out now (and records it). */
  admit(conversationId: string, userId: string, nowMs?: number): boolean;
}

/** Entries older than the interval are dropped once the map grows past this. */
const SWEEP_AT = 10_000;

export function typingCoalescer(intervalMs = 1_000): TypingCoalescer {
  const lastSent = new Map<string, number>();
  return {
    admit(conversationId, userId, nowMs = Date.now()) {
      const key = `${conversationId}:${userId}`;
      const last = lastSent.get(key);
      if (last !== undefined && nowMs - last < intervalMs) return false;
      if (lastSent.size >= SWEEP_AT) {
        for (const [k, at] of lastSent) if (nowMs - at >= intervalMs) lastSent.delete(k);
      }
      lastSent.set(key, nowMs);
      return true;
    },
  };
}
