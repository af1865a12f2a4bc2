import { and, eq, isNull, sql } from "drizzle-orm";
import type { Queryable, Tx } from "@aviary/runtime/db/database";
import { newestFirst } from "@aviary/runtime/db/order";
import { postItems } from "./schema.ts";

export type PostRow = typeof postItems.$inferSelect;

/**
 * A new post's row as the database will hold it (the columns' defaults
 * filled in), so CreatePost can answer without reading it back.
 */
export function newPostRow(row: Omit<PostRow, "likeCount" | "commentCount" | "deletedAt">): PostRow {
  return { ...row, likeCount: 0, commentCount: 0, deletedAt: null };
}

/** The post, tombstoned or not; undefined when it never existed. */
export async function findPost(db: Queryable, id: string): Promise<PostRow | undefined> {
  const rows = await db.select().from(postItems).where(eq(postItems.id, id)).limit(1);
  return rows[0];
}

/**
 * Locks a live post for a change that touches its counters or state; undefined
 * when it does not exist or is tombstoned (the lock makes a concurrent
 * delete wait, so no like or comment lands on a post deleted meanwhile).
 */
export async function lockLivePost(tx: Tx, id: string): Promise<PostRow | undefined> {
  const rows = await tx
    .select()
    .from(postItems)
    .where(and(eq(postItems.id, id), isNull(postItems.deletedAt)))
    .for("update");
  return rows[0];
}

/** Locks a post, tombstoned or not. */
export async function lockPost(tx: Tx, id: string): Promise<PostRow | undefined> {
  const rows = await tx.select().from(postItems).where(eq(postItems.id, id)).for("update");
  return rows[0];
}

export async function tombstonePost(tx: Tx, id: string, at: Date): Promise<void> {
  await tx.update(postItems).set({ deletedAt: at }).where(and(eq(postItems.id, id), isNull(postItems.deletedAt)));
}

/** Applies `delta` to a counter and returns its new value. */
export async function adjustCount(tx: Tx, id: string, counter: "likeCount" | "commentCount", delta: 1 | -1): Promise<number> {
  const column = postItems[counter];
  const [row] = await tx
    .update(postItems)
    .set({ [counter]: sql`${column} + ${delta}` })
    .where(eq(postItems.id, id))
    .returning({ value: column });
  if (row === undefined) throw new Error("counter update matched no post");
  return row.value;
}

export interface PostCursor {
  createdAt: string;
  id: string;
}

/** One page of an author's live posts, newest first (an index walk on posts_author_created_idx). */
export function listPostsByAuthor(db: Queryable, authorId: string, limit: number, after?: PostCursor): Promise<PostRow[]> {
  return db
    .select()
    .from(postItems)
    .where(
      and(
        eq(postItems.authorId, authorId),
        isNull(postItems.deletedAt),
        after ? sql`(${postItems.createdAt}, ${postItems.id}) < (${new Date(after.createdAt).toISOString()}::timestamptz, ${after.id}::uuid)` : undefined,
      ),
    )
    .orderBy(newestFirst(postItems.createdAt), newestFirst(postItems.id))
    .limit(limit);
}
