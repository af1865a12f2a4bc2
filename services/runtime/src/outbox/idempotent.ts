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

/**
 * `handleOnce` for a run of events in one transaction: claims every id in one
 * statement, then calls `apply` with the ids not applied before (none: no
 * call), in the order given. A consumer's `handleBatch` uses it to pay one
 * transaction for many events; if `apply` throws, no claim stays, and the
 * bus hands the events to `handle` one by one.
 *
 * Resolves with the ids it applied. Ids are compared lower-cased (as
 * Postgres prints UUIDs): `fresh` and the result hold them that way.
 */
export async function handleOnceEach(
  database: Database,
  tables: { processedEvents: ProcessedEventsTable },
  consumer: string,
  eventIds: readonly string[],
  apply: (tx: Tx, fresh: ReadonlySet<string>) => Promise<void>,
): Promise<Set<string>> {
  if (eventIds.length === 0) return new Set();
  return database.db.transaction(async (tx) => {
    const claimed = await tx
      .insert(tables.processedEvents)
      .values([...new Set(eventIds.map((id) => id.toLowerCase()))].map((eventId) => ({ consumer, eventId })))
      .onConflictDoNothing()
      .returning({ eventId: tables.processedEvents.eventId });
    const fresh = new Set(claimed.map((row) => row.eventId));
    if (fresh.size > 0) await apply(tx, fresh);
    return fresh;
  });
}
