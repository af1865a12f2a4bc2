import { bigint, index, jsonb, pgSchema, smallint, text, timestamp, uuid } from "drizzle-orm/pg-core";

/** The audit service's one table: the chain of entries. */
export const audit = pgSchema("audit");

/**
 * One security event, in append order. `seq` is gapless from 1 (assigned by
 * the one writer under the chain's lock, never by a sequence, which would
 * leave gaps on rollback). `hash` is hex SHA-256 over the canonical encoding
 * of the entry with `prev_hash` under its `chain_version`'s rule
 * (domain/chain.ts): version 1 over the cleartext, version 2 over a salted
 * digest of each personal field (actor, subject, each detail value, salts
 * hex, digests hex HMAC-SHA256). DELETE and TRUNCATE are refused by a
 * trigger, and so is every UPDATE but an erasure: cleartext and salt of
 * personal fields set to null together, `erased_at` set, nothing else
 * changed (migration 0002). `actor_id` null with no digest is the system or
 * an anonymous caller; `details` holds strings only, so its canonical
 * encoding does not depend on how jsonb prints numbers.
 */
export const entries = audit.table(
  "entries",
  {
    seq: bigint("seq", { mode: "number" }).primaryKey(),
    occurredAt: timestamp("occurred_at", { withTimezone: true }).notNull(),
    kind: text("kind").notNull(),
    chainVersion: smallint("chain_version").notNull(),
    actorId: uuid("actor_id"),
    actorSalt: text("actor_salt"),
    actorDigest: text("actor_digest"),
    /** Null once erased. */
    subject: text("subject"),
    subjectSalt: text("subject_salt"),
    subjectDigest: text("subject_digest"),
    /** Erased keys leave `details` and `details_salts`, and stay in `details_digests`. */
    details: jsonb("details").$type<Record<string, string>>().notNull(),
    detailsSalts: jsonb("details_salts").$type<Record<string, string>>(),
    detailsDigests: jsonb("details_digests").$type<Record<string, string>>(),
    sourceEventId: uuid("source_event_id").notNull().unique("entries_source_event_unique"),
    erasedAt: timestamp("erased_at", { withTimezone: true }),
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
