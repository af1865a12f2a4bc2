import { sql } from "drizzle-orm";
import { bigint, boolean, check, index, pgSchema, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { outboxTables } from "@aviary/runtime/outbox/tables";

/** Everything the post service stores lives in its own schema. */
export const posts = pgSchema("posts");

/**
 * A post. Deleting sets `deleted_at` (a tombstone): the row keeps its id, so a
 * reply's `reply_to_post_id` and events already published stay meaningful,
 * while every read treats it as absent. Counts are kept exact by updating
 * them in the transaction that writes the like or comment row.
 */
export const postItems = posts.table(
  "posts",
  {
    id: uuid("id").primaryKey(),
    authorId: uuid("author_id").notNull(),
    text: text("text").notNull(),
    /** Media ids in the order the author gave them. */
    mediaIds: text("media_ids").array().notNull().default(sql`'{}'::text[]`),
    replyToPostId: uuid("reply_to_post_id"),
    mentions: text("mentions").array().notNull().default(sql`'{}'::text[]`),
    hashtags: text("hashtags").array().notNull().default(sql`'{}'::text[]`),
    likeCount: bigint("like_count", { mode: "number" }).notNull().default(0),
    commentCount: bigint("comment_count", { mode: "number" }).notNull().default(0),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    deletedAt: timestamp("deleted_at", { withTimezone: true }),
  },
  (t) => [
    // Keyset pages of an author's live posts, newest first (ListPostsByAuthor).
    index("posts_author_created_idx").on(t.authorId, t.createdAt.desc(), t.id.desc()).where(sql`${t.deletedAt} is null`),
    // SearchPosts (store/search.ts): words through the `simple` text search configuration, hashtags by containment, and
    // every live post newest first, which the planner walks for a common word instead of sorting all its matches.
    index("posts_text_search_idx").using("gin", sql`to_tsvector('simple', ${t.text})`).where(sql`${t.deletedAt} is null`),
    index("posts_hashtags_idx").using("gin", t.hashtags).where(sql`${t.deletedAt} is null`),
    index("posts_created_idx").on(t.createdAt.desc(), t.id.desc()).where(sql`${t.deletedAt} is null`),
    check("posts_counts_non_negative", sql`${t.likeCount} >= 0 and ${t.commentCount} >= 0`),
  ],
);

/**
 * A comment. Deleting one removes the row (no tombstone): no event refers to
 * a deleted comment, nothing replies to comments, and the post's
 * comment_count goes down in the same transaction.
 */
export const comments = posts.table(
  "comments",
  {
    id: uuid("id").primaryKey(),
    postId: uuid("post_id").notNull(),
    authorId: uuid("author_id").notNull(),
    text: text("text").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  },
  // Keyset pages of a post's comments, oldest first (ListComments).
  (t) => [index("comments_post_created_idx").on(t.postId, t.createdAt, t.id)],
);

/** user_id likes post_id; the primary key makes liking twice one like. */
export const likes = posts.table(
  "likes",
  {
    postId: uuid("post_id").notNull(),
    userId: uuid("user_id").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.postId, t.userId] })],
);

// The service consumes no events, so it needs no processed-events table.
export const { outboxEvents } = outboxTables(posts);

/**
 * What the moderation service decided, as its events said
 * (aviary.moderation.events): users whose content is hidden while
 * suspended, and removed posts and comments with the reason. One row per
 * subject, last change wins by the event's time (`changed_at`), so
 * redeliveries and replays of older events change nothing.
 */
export const moderatedUsers = posts.table("moderated_users", {
  userId: uuid("user_id").primaryKey(),
  suspended: boolean("suspended").notNull(),
  changedAt: timestamp("changed_at", { withTimezone: true }).notNull(),
});

/** `target_kind`: "post" | "comment". */
export const moderatedContent = posts.table(
  "moderated_content",
  {
    targetKind: text("target_kind").notNull(),
    targetId: uuid("target_id").notNull(),
    removed: boolean("removed").notNull(),
    reason: text("reason").notNull(),
    changedAt: timestamp("changed_at", { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.targetKind, t.targetId] })],
);
