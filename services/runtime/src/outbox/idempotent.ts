import type { Database, Tx } from "../db/database.ts";
import type { ProcessedEventsTable } from "./tables.ts";

/**
 * Applies an event at most once per consumer, whatever the redeliveries.
 *
 * The (consumer, event id) row and the effects commit in one transaction: if
 * `apply` throws, neither stays, and the retry starts clean. Two deliveries
 * racing on real Postgres serialise on the primary key: the second waits for
 * the first to commit, then inserts nothing and skips.
 *
 * Resolves true if it applied the event, false if it had been applied before.
 */
export async function handleOnce(
  database: Database,
  tables: { processedEvents: ProcessedEventsTable },
  consumer: string,
  eventId: string,
  apply: (tx: Tx) => Promise<void>,
): Promise<boolean> {
  return database.db.transaction(async (tx) => {
    const claimed = await tx
      .insert(tables.processedEvents)
      .values({ consumer, eventId })
      .onConflictDoNothing()
      .returning({ eventId: tables.processedEvents.eventId });
    if (claimed.length === 0) return false;
    await apply(tx);
    return true;
  });
}
