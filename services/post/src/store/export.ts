// One user's share of the post schema, page by page, for ExportUserPosts.
// Keyset order is the row's unique id (post and comment ids are UUIDv7, so
// this is also roughly creation order; likes go by post id).
import { and, asc, eq, gt, isNull } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import { comments, likes, postItems } from "./schema.ts";

export type PostRow = typeof postItems.$inferSelect;
export type CommentRow = typeof comments.$inferSelect;
export type LikeRow = typeof likes.$inferSelect;

/** The author's posts that are not deleted (a deleted post's text is no longer kept for anyone). */
export function authoredPostsPage(db: Queryable, userId: string, after: PostRow | undefined, limit: number): Promise<PostRow[]> {
  return db
    .select()
    .from(postItems)
    .where(and(eq(postItems.authorId, userId), isNull(postItems.deletedAt), after ? gt(postItems.id, after.id) : undefined))
    .orderBy(asc(postItems.id))
    .limit(limit);
}

export function authoredCommentsPage(db: Queryable, userId: string, after: CommentRow | undefined, limit: number): Promise<CommentRow[]> {
  return db
    .select()
    .from(comments)
    .where(and(eq(comments.authorId, userId), after ? gt(comments.id, after.id) : undefined))
    .orderBy(asc(comments.id))
    .limit(limit);
}

export function likesPage(db: Queryable, userId: string, after: LikeRow | undefined, limit: number): Promise<LikeRow[]> {
  return db
    .select()
    .from(likes)
    .where(and(eq(likes.userId, userId), after ? gt(likes.postId, after.postId) : undefined))
    .orderBy(asc(likes.postId))
    .limit(limit);
}
