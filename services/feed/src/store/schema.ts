import { sql } from "drizzle-orm";
import { bigint, boolean, index, pgSchema, primaryKey, timestamp, uuid } from "drizzle-orm/pg-core";
import { outboxTables } from "@aviary/runtime/outbox/tables";

/**
 * The feed service's own projections, built only from events: it never reads
 * another service's tables. Ids and times only; content is hydrated at read
 * time from the post and user services.
 */
export const feed = pgSchema("feed");

/** follower_id follows followee_id (from FollowCreated / FollowDeleted / UserBlocked). */
export const follows = feed.table(
  "follows",
  {
    followerId: uuid("follower_id").notNull(),
    followeeId: uuid("followee_id").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.followerId, t.followeeId] }),
    // Fan-out walks an author's followers in keyset pages of follower ids.
    index("follows_followee_follower_idx").on(t.followeeId, t.followerId),
  ],
);

/** How many followers each user has in the projection: decides fan-out vs. read-time merge. */
export const followerCounts = feed.table("follower_counts", {
  userId: uuid("user_id").primaryKey(),
  followers: bigint("followers", { mode: "number" }).notNull().default(0),
});

/**
 * Posts (from PostCreated / PostDeleted). `createdAt` is kept at millisecond
 * precision, the precision of timeline scores, so Postgres and Redis order
 * ties identically (then by post id). `fannedOut` records the decision made
 * when the post arrived: false for authors above the fan-out threshold, whose
 * posts are merged into readers' feeds at read time instead.
 */
export const posts = feed.table(
  "posts",
  {
    postId: uuid("post_id").primaryKey(),
    authorId: uuid("author_id").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true, precision: 3 }).notNull(),
    deletedAt: timestamp("deleted_at", { withTimezone: true }),
    fannedOut: boolean("fanned_out").notNull().default(true),
  },
  (t) => [
    // An author's posts newest first: back-fill, rebuild and read-time merge.
    index("posts_author_created_idx").on(t.authorId, t.createdAt.desc(), t.postId.desc()),
    // The few posts merged at read time (large authors), newest first per author.
    index("posts_not_fanned_out_idx")
      .on(t.authorId, t.createdAt.desc(), t.postId.desc())
      .where(sql`${t.fannedOut} = false and ${t.deletedAt} is null`),
  ],
);

// Only processed_events: the feed consumes events but publishes none.
export const { processedEvents } = outboxTables(feed);
