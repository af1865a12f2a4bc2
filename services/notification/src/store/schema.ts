import { sql } from "drizzle-orm";
import { bigint, boolean, index, integer, jsonb, pgSchema, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { outboxTables } from "@aviary/runtime/outbox/tables";

/**
 * The notification service's own tables, built from events (it never reads
 * another service's tables) and from its own RPCs (preferences, watermarks).
 */
export const notification = pgSchema("notification");

/**
 * One row per recipient: the sequence their notifications are numbered in,
 * and the read watermark. Ingest takes this row's lock before it numbers a
 * notification, so a user's sequence is gapless and in commit order: a
 * watermark at `seenSeq` can never be overtaken by a notification that
 * commits later with a smaller number.
 */
export const recipients = notification.table("recipients", {
  userId: uuid("user_id").primaryKey(),
  lastSeq: bigint("last_seq", { mode: "number" }).notNull().default(0),
  /** Everything numbered at or below it is read; only ever moves forward. */
  seenSeq: bigint("seen_seq", { mode: "number" }).notNull().default(0),
});

/** Every notification, also the removed ones (kept so a group can be recomputed and a redelivery recognised). */
export const notifications = notification.table(
  "notifications",
  {
    id: uuid("id").primaryKey(),
    recipientId: uuid("recipient_id").notNull(),
    kind: text("kind").notNull(),
    groupId: uuid("group_id").notNull(),
    actorId: uuid("actor_id").notNull(),
    /** The post the notification is about (see NotificationGroup.post_id); null for follows. */
    postId: uuid("post_id"),
    /** The comment (comment) or post (reply) that caused it; null otherwise. */
    sourceId: uuid("source_id"),
    /** The recipient's sequence number (recipients.last_seq when it was recorded). */
    seq: bigint("seq", { mode: "number" }).notNull(),
    /** When it was recorded (clock_timestamp() under the recipient's lock: in seq order). */
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    removedAt: timestamp("removed_at", { withTimezone: true }),
    /**
     * The event that recorded it, and the last one that removed it (or, for a
     * live row, brought it back from a suspension): what a redelivery
     * re-announces on the live stream.
     */
    eventId: uuid("event_id").notNull(),
    removedByEventId: uuid("removed_by_event_id"),
    /**
     * Removed only because its actor is suspended (UserSuspended): it comes
     * back when they are unsuspended, unless a removal of its own (a block,
     * a deletion) took it meanwhile, which clears this.
     */
    hiddenBySuspension: boolean("hidden_by_suspension").notNull().default(false),
  },
  (t) => [
    uniqueIndex("notifications_recipient_seq_key").on(t.recipientId, t.seq),
    // Recomputing a group: its live notifications, newest first.
    index("notifications_group_seq_idx").on(t.groupId, t.seq.desc()).where(sql`${t.removedAt} is null`),
    // Removal when a source goes away: a post (likes, comments, replies, mentions), a comment or reply, an actor (blocks).
    index("notifications_post_idx").on(t.postId).where(sql`${t.removedAt} is null`),
    index("notifications_source_idx").on(t.sourceId).where(sql`${t.removedAt} is null`),
    index("notifications_recipient_actor_idx").on(t.recipientId, t.actorId).where(sql`${t.removedAt} is null`),
    index("notifications_event_idx").on(t.eventId),
    index("notifications_removed_by_event_idx").on(t.removedByEventId).where(sql`${t.removedByEventId} is not null`),
    // What an unsuspension brings back, and what a removal must also find among the hidden rows.
    index("notifications_hidden_actor_idx").on(t.actorId).where(sql`${t.hiddenBySuspension}`),
  ],
);

/**
 * A group: what the list shows. Written in the same transaction as each of
 * its notifications (under the recipient's lock), so its counts, sample and
 * newest activity always agree with its rows. A group whose notifications
 * were all removed keeps its row with notification_count 0 and is not listed.
 */
export const groups = notification.table(
  "groups",
  {
    id: uuid("id").primaryKey(),
    recipientId: uuid("recipient_id").notNull(),
    kind: text("kind").notNull(),
    /** What groups notifications (domain/grouping.ts): unique per recipient. */
    groupKey: text("group_key").notNull(),
    postId: uuid("post_id"),
    latestSourceId: uuid("latest_source_id"),
    notificationCount: integer("notification_count").notNull(),
    actorCount: integer("actor_count").notNull(),
    /** The newest few distinct actors, newest first. */
    sampleActorIds: uuid("sample_actor_ids").array().notNull(),
    /** The seq of the group's newest live notification: the list's order, and unread when above the watermark. */
    latestSeq: bigint("latest_seq", { mode: "number" }).notNull(),
    latestAt: timestamp("latest_at", { withTimezone: true }).notNull(),
  },
  (t) => [
    uniqueIndex("groups_recipient_key_key").on(t.recipientId, t.groupKey),
    // The list and the unread count: a recipient's live groups, newest activity first.
    index("groups_recipient_latest_idx").on(t.recipientId, t.latestSeq.desc()).where(sql`${t.notificationCount} > 0`),
  ],
);

/** A recipient's settings; no row means the defaults (domain/preferences.ts). */
export const preferences = notification.table("preferences", {
  userId: uuid("user_id").primaryKey(),
  /** Kind name → channels, only for kinds the user changed. */
  channels: jsonb("channels").$type<Record<string, { inApp: boolean; push: boolean }>>().notNull(),
  onlyFromFollowing: boolean("only_from_following").notNull().default(false),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull(),
});

/** blocker_id blocks blocked_id (UserBlocked / UserUnblocked): nothing flows either way between them. */
export const blocks = notification.table(
  "blocks",
  {
    blockerId: uuid("blocker_id").notNull(),
    blockedId: uuid("blocked_id").notNull(),
  },
  (t) => [primaryKey({ columns: [t.blockerId, t.blockedId] })],
);

/** follower_id follows followee_id (FollowCreated / FollowDeleted): the "only from accounts I follow" filter. */
export const follows = notification.table(
  "follows",
  {
    followerId: uuid("follower_id").notNull(),
    followeeId: uuid("followee_id").notNull(),
  },
  (t) => [primaryKey({ columns: [t.followerId, t.followeeId] })],
);

/**
 * Users suspended by a moderator (UserSuspended / UserUnsuspended on the
 * moderation topic), the last change by its time: nothing new is recorded
 * from a suspended actor, and what they caused is hidden until they are
 * unsuspended.
 */
export const suspendedUsers = notification.table("suspended_users", {
  userId: uuid("user_id").primaryKey(),
  suspended: boolean("suspended").notNull(),
  changedAt: timestamp("changed_at", { withTimezone: true }).notNull(),
});

/**
 * Posts deleted (PostDeleted). A reply travels on its own post's partition,
 * so it can arrive after the post it replies to was deleted: ingest checks
 * this list and records nothing about a deleted post.
 */
export const deletedPosts = notification.table("deleted_posts", {
  postId: uuid("post_id").primaryKey(),
  deletedAt: timestamp("deleted_at", { withTimezone: true }).notNull(),
});

/**
 * The push ledger: one row per (notification, device), claimed before the
 * provider is called. A redelivered event or a restarted worker finds the row
 * and does not push again.
 */
export const deliveries = notification.table(
  "deliveries",
  {
    notificationId: uuid("notification_id").notNull(),
    deviceId: uuid("device_id").notNull(),
    recipientId: uuid("recipient_id").notNull(),
    platform: text("platform").notNull(),
    /** sending → delivered | gone | quarantined | dead-lettered | skipped (foreground, provider not configured). */
    status: text("status").notNull(),
    attempts: integer("attempts").notNull().default(0),
    reason: text("reason"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.notificationId, t.deviceId] })],
);

export const { outboxEvents, processedEvents } = outboxTables(notification);
