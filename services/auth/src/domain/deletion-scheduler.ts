import type { Database } from "@aviary/runtime/db/database";
import { lockDueDeletions, purgeAccount } from "../store/deletions.ts";
import { accountDeleted } from "../events/publish.ts";
import type { SessionDenylist } from "./denylist.ts";

/** Deletions purged per transaction: a backlog is worked off in bounded steps. */
const BATCH = 20;

/**
 * The durable scheduler of account purges: the due times are rows
 * (auth.account_deletions), so a restart loses nothing, and it polls them
 * every `intervalMs`. Due rows are locked with SKIP LOCKED, so several
 * instances share the work and purge each account once; the purge, its
 * tombstone and AccountDeleted commit together. `clock` is the deletion
 * clock the handlers schedule with: tests move it instead of waiting.
 */
export function startDeletionScheduler(options: {
  database: Database;
  denylist: SessionDenylist;
  clock: () => Date;
  intervalMs: number;
  onError: (error: unknown) => void;
}): { stop(): void; purgeDue(): Promise<number> } {
  let running: Promise<number> | undefined;

  async function purgeBatch(): Promise<{ purged: number; sessions: string[] }> {
    return options.database.db.transaction(async (tx) => {
      const due = await lockDueDeletions(tx, options.clock(), BATCH);
      const sessions: string[] = [];
      for (const deletion of due) {
        const at = options.clock();
        sessions.push(...(await purgeAccount(tx, deletion.userId, at)));
        await accountDeleted(tx, deletion.userId, deletion.requestedAt, at);
      }
      return { purged: due.length, sessions };
    });
  }

  async function drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const { purged, sessions } = await purgeBatch();
      // Sessions opened during the grace period end with the account (auth itself denies them already: the rows are gone).
      if (sessions.length > 0) await options.denylist.add(sessions);
      total += purged;
      if (purged < BATCH) return total;
    }
  }

  /** One pass at a time per process; a call during a pass waits for it and then runs its own (it may have moved the clock). */
  async function purgeDue(): Promise<number> {
    while (running !== undefined) await running.catch(() => 0);
    running = drain();
    try {
      return await running;
    } finally {
      running = undefined;
    }
  }

  const timer = setInterval(() => purgeDue().catch(options.onError), options.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer), purgeDue };
}
