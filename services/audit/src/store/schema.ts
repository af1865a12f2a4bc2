import { bigint, index, jsonb, pgSchema, text, timestamp, uuid } from "drizzle-orm/pg-core";

/** The audit service's one table: the chain of entries. */
export const audit = pgSchema("audit");

/**
 * One security event, in append order. `seq` is gapless from 1 (assigned by
 * the one writer under the chain's lock, never by a sequence, which would
 * leave gaps on rollback). `hash` is hex SHA-256 over the canonical encoding
 * of the entry with `prev_hash` (domain/chain.ts). UPDATE, DELETE and
 * TRUNCATE are refused by a trigger (migration 0001). `actor_id` null is the
 * system or an anonymous caller; `details` holds strings only, so its
 * canonical encoding does not depend on how jsonb prints numbers.
 */
export const entries = audit.table(
  "entries",
  {
    seq: bigint("seq", { mode: "number" }).primaryKey(),
    occurredAt: timestamp("occurred_at", { withTimezone: true }).notNull(),
    kind: text("kind").notNull(),
    actorId: uuid("actor_id"),
    subject: text("subject").notNull(),
    details: jsonb("details").$type<Record<string, string>>().notNull(),
    sourceEventId: uuid("source_event_id").notNull().unique("entries_source_event_unique"),
    prevHash: text("prev_hash").notNull(),
    hash: text("hash").notNull(),
  },
  (t) => [
    // ListAuditEntries: newest first within each filter.
    index("entries_actor_idx").on(t.actorId, t.seq),
    index("entries_subject_idx").on(t.subject, t.seq),
    index("entries_kind_idx").on(t.kind, t.seq),
    index("entries_occurred_idx").on(t.occurredAt),
  ],
);
