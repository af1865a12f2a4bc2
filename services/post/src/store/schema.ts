import { sql } from "drizzle-orm";
import { bigint, check, index, pgSchema, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";
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
