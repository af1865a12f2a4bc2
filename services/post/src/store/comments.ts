import { and, asc, eq, sql } from "drizzle-orm";
import type { Queryable, Tx } from "@aviary/runtime/db/database";
import { comments } from "./schema.ts";

export type CommentRow = typeof comments.$inferSelect;

export async function insertComment(tx: Tx, row: CommentRow): Promise<CommentRow> {
  const [inserted] = await tx.insert(comments).values(row).returning();
  if (inserted === undefined) throw new Error("comment insert returned no row");
  return inserted;
}

/** The comment `id` on post `postId` (a comment id under another post is no such comment). */
export async function findComment(db: Queryable, postId: string, id: string): Promise<CommentRow | undefined> {
  const rows = await db
    .select()
    .from(comments)
    .where(and(eq(comments.id, id), eq(comments.postId, postId)))
    .limit(1);
  return rows[0];
}

/** Deletes the comment; false when it was already gone (a concurrent delete). */
export async function deleteComment(tx: Tx, id: string): Promise<boolean> {
  const rows = await tx.delete(comments).where(eq(comments.id, id)).returning({ id: comments.id });
  return rows.length > 0;
}

export interface CommentCursor {
  createdAt: string;
  id: string;
}

/** One page of a post's comments, oldest first (an index walk on comments_post_created_idx). */
export function listComments(db: Queryable, postId: string, limit: number, after?: CommentCursor): Promise<CommentRow[]> {
  return db
    .select()
    .from(comments)
    .where(
      and(
        eq(comments.postId, postId),
        after ? sql`(${comments.createdAt}, ${comments.id}) > (${new Date(after.createdAt).toISOString()}::timestamptz, ${after.id}::uuid)` : undefined,
      ),
    )
    .orderBy(asc(comments.createdAt), asc(comments.id))
    .limit(limit);
}
