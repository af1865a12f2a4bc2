import { sql } from "drizzle-orm";
import { bigint, getTableConfig, index, jsonb, primaryKey, text, timestamp, uuid, type PgSchema } from "drizzle-orm/pg-core";
import { bytea } from "./bytea.ts";

/**
 * The outbox and inbox tables, created in the service's own schema. A
 * service spreads them into its drizzle schema module, so drizzle-kit puts
 * them in that service's migrations:
 *
 *   export const { outboxEvents, processedEvents } = outboxTables(auth);
 *
 * (Destructure them: drizzle-kit only finds tables exported at top level.)
 */
export function outboxTables(schema: PgSchema) {
  /** Events waiting for (or past) publication; written in the producer's transaction. */
  const outboxEvents = schema.table(
    "outbox_events",
    {
      id: uuid("id").primaryKey(),
      /** Insert order; the relay publishes in this order, so per-key order holds. */
      seq: bigint("seq", { mode: "number" }).generatedAlwaysAsIdentity().notNull(),
      topic: text("topic").notNull(),
      key: text("key").notNull(),
      /** The protobuf message name, e.g. aviary.events.v1.UserRegistered. */
      type: text("type").notNull(),
      payload: bytea("payload").notNull(),
      headers: jsonb("headers").$type<Record<string, string>>().notNull(),
      createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
      publishedAt: timestamp("published_at", { withTimezone: true }),
    },
    (t) => [
      // What the relay scans: only unpublished rows, in insert order.
      index("outbox_events_unpublished_idx").on(t.seq).where(sql`${t.publishedAt} is null`),
      // What retention pruning scans: only published rows, oldest first.
      index("outbox_events_published_idx").on(t.publishedAt).where(sql`${t.publishedAt} is not null`),
    ],
  );

  /** Events a consumer has applied; the primary key makes applying idempotent. */
  const processedEvents = schema.table(
    "processed_events",
    {
      consumer: text("consumer").notNull(),
      eventId: uuid("event_id").notNull(),
      processedAt: timestamp("processed_at", { withTimezone: true }).notNull().defaultNow(),
    },
    (t) => [primaryKey({ columns: [t.consumer, t.eventId] })],
  );

  return { outboxEvents, processedEvents };
}

export type OutboxTables = ReturnType<typeof outboxTables>;
export type OutboxEventsTable = OutboxTables["outboxEvents"];
export type ProcessedEventsTable = OutboxTables["processedEvents"];

/**
 * The NOTIFY channel that wakes the relay of one outbox: `<schema>_outbox`.
 * Derived from the table, so producers and the relay cannot disagree.
 */
export function outboxChannel(table: OutboxEventsTable): string {
  // Remembered: getTableConfig builds the table's whole config (indexes too), and every enqueue asks.
  let channel = channels.get(table);
  if (channel === undefined) channels.set(table, (channel = `${getTableConfig(table).schema ?? "public"}_outbox`));
  return channel;
}

const channels = new WeakMap<OutboxEventsTable, string>();
