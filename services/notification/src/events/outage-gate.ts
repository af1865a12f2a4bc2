// Optional work against a store that may be down (the realtime Redis): after
// a failure, skip the work for a while instead of paying the store's timeout
// on every event. Live updates and the foreground check are worth having,
// not worth stalling the consumer for; Redis coming back ends the skipping.
export interface OutageGate {
  /** Runs `task` unless a failure happened within the last `skipMs`; returns `fallback` when skipped or failed. */
  run<T>(task: () => Promise<T>, fallback: T, onError: (error: unknown) => void): Promise<T>;
}

export function outageGate(skipMs: number, now: () => number = Date.now): OutageGate {
  let skipUntil = 0;
  return {
    async run(task, fallback, onError) {
      if (now() < skipUntil) return fallback;
      try {
        return await task();
      } catch (error) {
        skipUntil = now() + skipMs;
        onError(error);
        return fallback;
      }
    },
  };
}
