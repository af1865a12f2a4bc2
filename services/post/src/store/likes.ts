import { and, eq } from "drizzle-orm";
import type { Tx } from "@aviary/runtime/db/database";
import { likes } from "./schema.ts";

/** Records the like; true if it is new (liking twice is one like). */
export async function insertLike(tx: Tx, postId: string, userId: string, at: Date): Promise<boolean> {
  const rows = await tx.insert(likes).values({ postId, userId, createdAt: at }).onConflictDoNothing().returning({ postId: likes.postId });
  return rows.length > 0;
}

/** Removes the like; true if there was one. */
export async function deleteLike(tx: Tx, postId: string, userId: string): Promise<boolean> {
  const rows = await tx
    .delete(likes)
    .where(and(eq(likes.postId, postId), eq(likes.userId, userId)))
    .returning({ postId: likes.postId });
  return rows.length > 0;
}
