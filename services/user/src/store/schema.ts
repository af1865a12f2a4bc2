import { sql } from "drizzle-orm";
import { bigint, check, index, pgSchema, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { outboxTables } from "@aviary/runtime/outbox/tables";

/** Everything the user service stores lives in its own schema. */
export const users = pgSchema("users");

/**
 * A user's profile, one per account (user_id is the auth service's user id).
 * `username` keeps the casing the user typed; `username_key` is its lower-cased
 * form and carries the case-insensitive uniqueness. Both stay NULL until the
 * user picks a name.
 */
export const profiles = users.table(
  "profiles",
  {
    userId: uuid("user_id").primaryKey(),
    username: text("username"),
    usernameKey: text("username_key"),
    displayName: text("display_name").notNull().default(""),
    bio: text("bio").notNull().default(""),
    avatarMediaId: text("avatar_media_id"),
    /** ISO 3166-1 alpha-2, from the registration phone; private to the owner. */
    region: text("region"),
    followerCount: bigint("follower_count", { mode: "number" }).notNull().default(0),
    followingCount: bigint("following_count", { mode: "number" }).notNull().default(0),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("profiles_username_key").on(t.usernameKey).where(sql`${t.usernameKey} is not null`),
    // Username prefix search (username_key LIKE 'q%'): the unique index above
    // uses the database collation, which LIKE can only use under "C".
    index("profiles_username_prefix_idx").on(sql`${t.usernameKey} text_pattern_ops`),
    // Display-name prefix search (lower(display_name) LIKE 'q%').
    index("profiles_display_name_idx").on(sql`lower(${t.displayName}) text_pattern_ops`),
    check("profiles_counts_non_negative", sql`${t.followerCount} >= 0 and ${t.followingCount} >= 0`),
  ],
);

/**
 * The tails of a display name after each of its spaces, lower-cased ("Ada
 * Byron King" → "byron king", "king"), so a search for a later word of the
 * name is an index prefix scan (tail LIKE 'q%') instead of reading every
 * profile for lower(display_name) LIKE '% q%' (no pg_trgm: PGlite lacks it).
 * Rewritten with the display name, in the same transaction.
 */
export const profileNameTails = users.table(
  "profile_name_tails",
  {
    userId: uuid("user_id").notNull(),
    tail: text("tail").notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.tail] }), index("profile_name_tails_prefix_idx").on(sql`${t.tail} text_pattern_ops`)],
);

/** follower_id follows followee_id. */
export const follows = users.table(
  "follows",
  {
    followerId: uuid("follower_id").notNull(),
    followeeId: uuid("followee_id").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.followerId, t.followeeId] }),
    // Keyset pages: a user's followers / followees, newest first.
    index("follows_followee_created_idx").on(t.followeeId, t.createdAt.desc(), t.followerId.desc()),
    index("follows_follower_created_idx").on(t.followerId, t.createdAt.desc(), t.followeeId.desc()),
    check("follows_not_self", sql`${t.followerId} <> ${t.followeeId}`),
  ],
);

/** blocker_id blocked blocked_id. */
export const blocks = users.table(
  "blocks",
  {
    blockerId: uuid("blocker_id").notNull(),
    blockedId: uuid("blocked_id").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.blockerId, t.blockedId] }), index("blocks_blocked_idx").on(t.blockedId)],
);

/**
 * A push token of one of a user's devices; one row per (user, token).
 * `updated_at` is the last (re-)registration: RetireDevice keeps a device
 * registered again after the provider said its token was gone. A quarantined
 * device (reason and time, set together) stays listed to its owner but gets
 * no push until it is registered again.
 */
export const devices = users.table(
  "devices",
  {
    id: uuid("id").primaryKey(),
    userId: uuid("user_id").notNull(),
    platform: text("platform").notNull(),
    token: text("token").notNull(),
    /**
     * The `sid` of the token that last registered it (NULL for devices from
     * before it was recorded). Text, not uuid: the auth service's session id
     * format is its own business.
     */
    sessionId: text("session_id"),
    quarantineReason: text("quarantine_reason"),
    quarantinedAt: timestamp("quarantined_at", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull(),
  },
  (t) => [
    uniqueIndex("devices_user_token_key").on(t.userId, t.token),
    index("devices_user_created_idx").on(t.userId, t.createdAt.desc(), t.id.desc()),
    check("devices_quarantine_complete", sql`(${t.quarantineReason} is null) = (${t.quarantinedAt} is null)`),
  ],
);

export const { outboxEvents, processedEvents } = outboxTables(users);
