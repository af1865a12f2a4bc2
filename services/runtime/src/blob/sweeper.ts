// Objects past their time (media: pending uploads whose confirmation window
// passed; data exports: archives past their download window) are removed
// from storage and then their rows are removed or marked (object first, so a
// failed delete is retried on the next pass rather than leaving an object
// nobody knows about). Several instances may sweep at once: deletes are
// idempotent.

export interface SweeperDeps {
  expired(limit: number): Promise<Array<{ id: string; objectKey: string }>>;
  deleteObject(key: string): Promise<void>;
  /** Removes (or marks) the rows whose objects are gone; resolves to how many. */
  deleteRows(ids: readonly string[]): Promise<number>;
  onError(error: unknown): void;
}

export interface Sweeper {
  /** One full pass now (every expired item, in batches); resolves to how many were removed. */
  sweepNow(): Promise<number>;
  stop(): void;
}

export function startSweeper(deps: SweeperDeps, options: { intervalMs: number; batchSize?: number }): Sweeper {
  const batchSize = options.batchSize ?? 100;
  let running: Promise<number> | undefined;

  async function pass(): Promise<number> {
    let removed = 0;
    for (;;) {
      const batch = await deps.expired(batchSize);
      if (batch.length === 0) return removed;
      const gone: string[] = [];
      for (const item of batch) {
        try {
          await deps.deleteObject(item.objectKey);
          gone.push(item.id);
        } catch (error) {
          deps.onError(error);
        }
      }
      removed += await deps.deleteRows(gone);
      // Every object in the batch failed: stop rather than spin on the same rows.
      if (gone.length === 0 || batch.length < batchSize) return removed;
    }
  }

  const sweepNow = () => {
    running ??= pass().finally(() => {
      running = undefined;
    });
    return running;
  };
  const timer = setInterval(() => {
    sweepNow().catch(deps.onError);
  }, options.intervalMs);
  timer.unref();
  return { sweepNow, stop: () => clearInterval(timer) };
}
