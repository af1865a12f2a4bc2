import { sql } from "drizzle-orm";
import { boolean, index, integer, pgSchema, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { outboxTables } from "@aviary/runtime/outbox/tables";

/** The moderation service's tables: reports and the moderators' actions in force. */
export const moderation = pgSchema("moderation");

/**
 * A report. `target_kind` is "post" | "comment" | "user"; `status` is
 * "open" | "actioned" | "dismissed". `reason` and `resolution` are the
 * aviary.moderation.v1 enum numbers (ReportReason, ResolutionAction).
 */
export const reports = moderation.table(
  "reports",
  {
    id: uuid("id").primaryKey(),
    reporterId: uuid("reporter_id").notNull(),
    targetKind: text("target_kind").notNull(),
    targetId: uuid("target_id").notNull(),
    reason: integer("reason").notNull(),
    note: text("note").notNull(),
    status: text("status").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    resolution: integer("resolution"),
    resolvedBy: uuid("resolved_by"),
    resolutionNote: text("resolution_note"),
    resolvedAt: timestamp("resolved_at", { withTimezone: true }),
  },
  (t) => [
    // One open report per reporter and target (CreateReport answers the open one instead).
    uniqueIndex("reports_one_open_per_reporter").on(t.reporterId, t.targetKind, t.targetId).where(sql`${t.status} = 'open'`),
    // The queue, oldest first, by status (and kind).
    index("reports_queue_idx").on(t.status, t.createdAt, t.id),
    index("reports_queue_kind_idx").on(t.status, t.targetKind, t.createdAt, t.id),
    // Closing every open report on a target together (ResolveReport).
    index("reports_open_target_idx").on(t.targetKind, t.targetId).where(sql`${t.status} = 'open'`),
    // A reporter's own reports, open or closed: the data export's keyset pages and the account purge.
    index("reports_reporter_idx").on(t.reporterId, t.id),
  ],
);

/** A user's suspension as last changed (a row stays after unsuspending, with `suspended` false). */
export const suspensions = moderation.table("suspensions", {
  userId: uuid("user_id").primaryKey(),
  suspended: boolean("suspended").notNull(),
  reason: text("reason").notNull(),
  moderatorId: uuid("moderator_id").notNull(),
  reportId: uuid("report_id"),
  changedAt: timestamp("changed_at", { withTimezone: true }).notNull(),
});

/** A post's or comment's removal as last changed ("post" | "comment"; a restored one keeps its row, `removed` false). */
export const removals = moderation.table(
  "removals",
  {
    targetKind: text("target_kind").notNull(),
    targetId: uuid("target_id").notNull(),
    removed: boolean("removed").notNull(),
    reason: text("reason").notNull(),
    moderatorId: uuid("moderator_id").notNull(),
    reportId: uuid("report_id"),
    changedAt: timestamp("changed_at", { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.targetKind, t.targetId] })],
);

// The only event it consumes is AccountDeleted, whose purge is idempotent by
// construction (it looks for rows still naming the account), so it keeps no
// processed-events table.
export const { outboxEvents } = outboxTables(moderation);
