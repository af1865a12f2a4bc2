import { isNull, sql } from "drizzle-orm";
import type { BatchObservableResult } from "@opentelemetry/api";
import type { Database } from "../db/database.ts";
import { meterOf, outboxInstruments } from "../metrics.ts";
import type { OutboxEventsTable } from "./tables.ts";

/**
 * `outbox_backlog{outbox}` and `outbox_oldest_age_seconds{outbox}` for one
 * relay, read when Prometheus scrapes: one query over the partial index of
 * unpublished rows (outbox_events_unpublished_idx), so it costs what the
 * relay's own claim costs, once per scrape, and nothing per event. Returns
 * the unregister function.
 */
export function observeOutboxBacklog(telemetry: object | undefined, database: Database, table: OutboxEventsTable, outbox: string): () => void {
  const { backlog, oldestAge } = outboxInstruments(meterOf(telemetry));
  const read = async () => {
    const [row] = await database.db
      .select({
        pending: sql<number>`count(*)::int`,
        age: sql<number>`coalesce(extract(epoch from now() - min(${table.createdAt})), 0)::float8`,
      })
      .from(table)
      .where(isNull(table.publishedAt));
    return { pending: Number(row?.pending ?? 0), age: Math.max(0, Number(row?.age ?? 0)) };
  };
  // One batch callback, one query, both gauges.
  const meter = meterOf(telemetry);
  const callback = async (result: BatchObservableResult) => {
    const value = await read().catch(() => undefined); // the database is down: /readyz says so; no series this scrape
    if (value === undefined) return;
    result.observe(backlog, value.pending, { outbox });
    result.observe(oldestAge, value.age, { outbox });
  };
  meter.addBatchObservableCallback(callback, [backlog, oldestAge]);
  return () => meter.removeBatchObservableCallback(callback, [backlog, oldestAge]);
}
