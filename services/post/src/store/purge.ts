import { eq, inArray, sql } from "drizzle-orm";
import type { Tx } from "@aviary/runtime/db/database";
import { comments, likes, postItems } from "./schema.ts";

/** How many of `ids` each id is: one removed like or comment per entry. */
function tally(ids: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

/**
 * Removes everything the post service holds of a deleted account: its likes
 * and comments on other posts (those posts' counts go down in the same
 * transaction), then its posts — tombstoned ones too — with the likes and
 * comments on them. Rows, not tombstones: a tombstone would keep the author
 * id. Replies by others keep their reply_to_post_id, which now names nothing,
 * as for any deleted post. No PostDeleted events: the feed and notification
 * services purge on the same AccountDeleted, and a PostDeleted reaching them
 * after that purge would record the author again. Deleting what is gone
 * changes nothing, so applying it again is harmless.
 */
export async function purgeUserPosts(tx: Tx, userId: string): Promise<void> {
  const unliked = await tx.delete(likes).where(eq(likes.userId, userId)).returning({ postId: likes.postId });
  for (const [postId, n] of tally(unliked.map((row) => row.postId))) {
    await tx.update(postItems).set({ likeCount: sql`greatest(${postItems.likeCount} - ${n}, 0)` }).where(eq(postItems.id, postId));
  }
  const uncommented = await tx.delete(comments).where(eq(comments.authorId, userId)).returning({ postId: comments.postId });
  for (const [postId, n] of tally(uncommented.map((row) => row.postId))) {
    await tx.update(postItems).set({ commentCount: sql`greatest(${postItems.commentCount} - ${n}, 0)` }).where(eq(postItems.id, postId));
  }
  const own = await tx.delete(postItems).where(eq(postItems.authorId, userId)).returning({ id: postItems.id });
  const ids = own.map((row) => row.id);
  if (ids.length === 0) return;
  await tx.delete(likes).where(inArray(likes.postId, ids));
  await tx.delete(comments).where(inArray(comments.postId, ids));
}
