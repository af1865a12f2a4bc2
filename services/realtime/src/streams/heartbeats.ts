// When idle streams beat: one wheel per instance instead of a timer per
// stream. Streams are kept in slots of `tickMs`; one interval timer walks the
// slots that came due and asks each stream in them to beat.
//
// Why a wheel: a timer per stream allocates a Timeout on every beat (garbage
// a held stream would not otherwise make), and every stream beats on its own
// schedule, so each heartbeat is a write of its own. Here the streams due in
// one slot beat in the same turn of the event loop, so the frames for the
// streams sharing an HTTP/2 connection (the edge multiplexes many users onto
// few upstream connections) leave in one write.
//
// A slot is taken by rounding the due time down, so a stream may beat up to
// one tick early, never a tick late: no stream is silent for longer than its
// interval (plus the timer's own lateness).

/** A stream the wheel beats. */
export interface Beating {
  /** Beats now if due; returns when to be asked next (ms since the epoch), or undefined to be dropped. */
  beat(nowMs: number): number | undefined;
}

export interface HeartbeatWheel {
  /** The slot width: how early a beat may come. */
  readonly tickMs: number;
  /** Asks `stream` to beat at `dueMs` (replacing any earlier schedule). */
  schedule(stream: Beating, dueMs: number): void;
  cancel(stream: Beating): void;
  close(): void;
}

/** A tick of a 25th of the interval, between 10 ms and 1 s. */
export function heartbeatTickMs(heartbeatMs: number): number {
  return Math.min(1_000, Math.max(10, Math.floor(heartbeatMs / 25)));
}

export function createHeartbeatWheel(tickMs: number): HeartbeatWheel {
  const slots = new Map<number, Set<Beating>>();
  const slotOf = new Map<Beating, number>();
  /** The first slot not walked yet. */
  let next = Math.floor(Date.now() / tickMs);

  const cancel = (stream: Beating) => {
    const slot = slotOf.get(stream);
    if (slot === undefined) return;
    slotOf.delete(stream);
    const streams = slots.get(slot);
    streams?.delete(stream);
    if (streams?.size === 0) slots.delete(slot);
  };

  const schedule = (stream: Beating, dueMs: number) => {
    cancel(stream);
    // Never into a slot already walked: it would wait forever.
    const slot = Math.max(next, Math.floor(dueMs / tickMs));
    let streams = slots.get(slot);
    if (streams === undefined) slots.set(slot, (streams = new Set()));
    streams.add(stream);
    slotOf.set(stream, slot);
  };

  const timer = setInterval(() => {
    const now = Date.now();
    const current = Math.floor(now / tickMs);
    for (; next <= current; next++) {
      const streams = slots.get(next);
      if (streams === undefined) continue;
      slots.delete(next);
      for (const stream of streams) {
        slotOf.delete(stream);
        // `next` is still the slot being walked: a stream due again at once lands in the following one.
        const again = stream.beat(now);
        if (again !== undefined) schedule(stream, Math.max(again, (next + 1) * tickMs));
      }
    }
  }, tickMs);
  timer.unref();

  return {
    tickMs,
    schedule,
    cancel,
    close() {
      clearInterval(timer);
      slots.clear();
      slotOf.clear();
    },
  };
}
