// Queries on the feed's own projections (schema `feed`).
import { and, eq, gt, inArray, isNull, sql, type SQL } from "drizzle-orm";
import type { Queryable, Tx } from "@aviary/runtime/db/database";
import { newestFirst } from "@aviary/runtime/db/order";
import { rowsOf } from "@aviary/runtime/db/rows";
import { followerCounts, follows, posts } from "./schema.ts";
import { compareNewestFirst, type TimelineCursor, type TimelineEntry } from "./timelines.ts";

export interface FollowEdge {
  followerId: string;
  followeeId: string;
}

export type PostRow = typeof posts.$inferSelect;

/** Where the consumer tells readers' processes that merged followees may have grown (read/merged-authors.ts). */
export const MERGE_CHANNEL = "feed_merged_followees";
/** The payload that names every reader. */
export const EVERY_READER = "*";

/**
 * Tells every feed process, on commit, that what `readerId` (or EVERY_READER)
 * follows among authors merged at read time may have grown
 * (read/merged-authors.ts).
 */
export async function notifyMergedFollowees(tx: Tx, readerId: string): Promise<void> {
  await tx.execute(sql`select pg_notify(${MERGE_CHANNEL}, ${readerId})`);
}

/** Records the edge and counts it (notifying the follower's merged followees); true if it is new. */
export async function insertFollow(tx: Tx, edge: FollowEdge, at: Date): Promise<boolean> {
  const rows = await tx.insert(follows).values({ ...edge, createdAt: at }).onConflictDoNothing().returning({ followerId: follows.followerId });
  if (rows.length === 0) return false;
  await notifyMergedFollowees(tx, edge.followerId);
  await tx
    .insert(followerCounts)
    .values({ userId: edge.followeeId, followers: 1 })
    .onConflictDoUpdate({ target: followerCounts.userId, set: { followers: sql`${followerCounts.followers} + 1` } });
  return true;
}

/** Removes the edge and uncounts it; true if it existed. */
export async function deleteFollow(tx: Tx, edge: FollowEdge): Promise<boolean> {
  const rows = await tx
    .delete(follows)
    .where(and(eq(follows.followerId, edge.followerId), eq(follows.followeeId, edge.followeeId)))
    .returning({ followerId: follows.followerId });
  if (rows.length === 0) return false;
  await tx
    .update(followerCounts)
    .set({ followers: sql`greatest(${followerCounts.followers} - 1, 0)` })
    .where(eq(followerCounts.userId, edge.followeeId));
  return true;
}

/** Tombstones a post; inserts the tombstone when the post itself never arrived. */
export async function markPostDeleted(tx: Tx, post: { postId: string; authorId: string; deletedAt: Date }): Promise<void> {
  await tx
    .insert(posts)
    .values({ postId: post.postId, authorId: post.authorId, createdAt: post.deletedAt, deletedAt: post.deletedAt })
    .onConflictDoUpdate({ target: posts.postId, set: { deletedAt: sql`coalesce(${posts.deletedAt}, excluded.deleted_at)` } });
}

export async function findPost(db: Queryable, postId: string): Promise<PostRow | undefined> {
  const [row] = await db.select().from(posts).where(eq(posts.postId, postId));
  return row;
}

/** One keyset page of an author's followers, by follower id. */
export async function followersPage(db: Queryable, followeeId: string, limit: number, afterFollowerId?: string): Promise<string[]> {
  const rows = await db
    .select({ followerId: follows.followerId })
    .from(follows)
    .where(and(eq(follows.followeeId, followeeId), afterFollowerId ? gt(follows.followerId, afterFollowerId) : undefined))
    .orderBy(follows.followerId)
    .limit(limit);
  return rows.map((r) => r.followerId);
}

const entryColumns = { postId: posts.postId, createdAt: posts.createdAt };
const toEntry = (row: { postId: string; createdAt: Date }): TimelineEntry => ({ postId: row.postId, score: row.createdAt.getTime() });

function before(cursor: TimelineCursor | undefined): SQL | undefined {
  return cursor ? sql`(${posts.createdAt}, ${posts.postId}) < (${new Date(cursor.score).toISOString()}::timestamptz, ${cursor.postId}::uuid)` : undefined;
}

/** An author's newest live posts (for back-fill: only those fan-out would have written). */
export async function recentPosts(db: Queryable, authorId: string, limit: number, options: { fannedOutOnly: boolean }): Promise<TimelineEntry[]> {
  const rows = await db
    .select(entryColumns)
    .from(posts)
    .where(and(eq(posts.authorId, authorId), isNull(posts.deletedAt), options.fannedOutOnly ? eq(posts.fannedOut, true) : undefined))
    .orderBy(newestFirst(posts.createdAt), newestFirst(posts.postId))
    .limit(limit);
  return rows.map(toEntry);
}

/** Which of `postIds` are by `authorId` (to pick an author's posts out of a timeline). */
export async function postsByAuthorAmong(db: Queryable, authorId: string, postIds: readonly string[]): Promise<string[]> {
  if (postIds.length === 0) return [];
  const rows = await db
    .select({ postId: posts.postId })
    .from(posts)
    .where(and(eq(posts.authorId, authorId), inArray(posts.postId, [...postIds])));
  return rows.map((r) => r.postId);
}

/**
 * The newest `limit` live posts of a reader's home feed straight from the
 * projection, strictly before `cursor`: own posts plus followees' posts.
 * `followees: "fanned-out"` gives what the timeline would hold (the rebuild:
 * read-time-merged posts stay out of it); "all" gives the whole feed (the
 * answer when Redis cannot). Two index walks merged here, rather than one OR
 * the planner cannot walk in order.
 */
export async function feedFromProjection(
  db: Queryable,
  readerId: string,
  limit: number,
  options: { followees: "fanned-out" | "all"; before?: TimelineCursor },
): Promise<TimelineEntry[]> {
  const followees = db.select({ id: follows.followeeId }).from(follows).where(eq(follows.followerId, readerId));
  const [own, followed] = await Promise.all([
    db
      .select(entryColumns)
      .from(posts)
      .where(and(eq(posts.authorId, readerId), isNull(posts.deletedAt), before(options.before)))
      .orderBy(newestFirst(posts.createdAt), newestFirst(posts.postId))
      .limit(limit),
    db
      .select(entryColumns)
      .from(posts)
      .where(
        and(
          inArray(posts.authorId, followees),
          isNull(posts.deletedAt),
          options.followees === "fanned-out" ? eq(posts.fannedOut, true) : undefined,
          before(options.before),
        ),
      )
      .orderBy(newestFirst(posts.createdAt), newestFirst(posts.postId))
      .limit(limit),
  ]);
  return [...own, ...followed].map(toEntry).sort(compareNewestFirst).slice(0, limit);
}

export async function followExists(db: Queryable, edge: FollowEdge): Promise<boolean> {
  const rows = await db
    .select({ followerId: follows.followerId })
    .from(follows)
    .where(and(eq(follows.followerId, edge.followerId), eq(follows.followeeId, edge.followeeId)))
    .limit(1);
  return rows.length > 0;
}

/** The ids of an author's posts in the projection (deleted ones too). */
export async function postIdsByAuthor(db: Queryable, authorId: string): Promise<string[]> {
  const rows = await db.select({ postId: posts.postId }).from(posts).where(eq(posts.authorId, authorId));
  return rows.map((row) => row.postId);
}

/**
 * Removes a deleted account from the projections: its follows both ways
 * (the follower counts of the accounts it followed go down), its own count,
 * its posts. Deleting what is gone changes nothing.
 */
export async function purgeUserProjection(tx: Tx, userId: string): Promise<void> {
  const followed = await tx.delete(follows).where(eq(follows.followerId, userId)).returning({ followeeId: follows.followeeId });
  if (followed.length > 0) {
    await tx
      .update(followerCounts)
      .set({ followers: sql`greatest(${followerCounts.followers} - 1, 0)` })
      .where(inArray(followerCounts.userId, followed.map((row) => row.followeeId)));
  }
  await tx.delete(follows).where(eq(follows.followeeId, userId));
  await tx.delete(followerCounts).where(eq(followerCounts.userId, userId));
  await tx.delete(posts).where(eq(posts.authorId, userId));
}
