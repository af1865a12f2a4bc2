import { and, eq, or, sql } from "drizzle-orm";
import type { Queryable, Tx } from "@aviary/runtime/db/database";
import { blocks, follows, profiles } from "./schema.ts";
import { blockedEitherWayIds, type ProfileRow } from "./profiles.ts";
import { newestFirst } from "@aviary/runtime/db/order";

export interface FollowEdge {
  followerId: string;
  followeeId: string;
}

/** Inserts the edge; true if it is new (following twice is one edge). */
export async function insertFollow(tx: Tx, edge: FollowEdge, at: Date): Promise<boolean> {
  const rows = await tx.insert(follows).values({ ...edge, createdAt: at }).onConflictDoNothing().returning({ followerId: follows.followerId });
  return rows.length > 0;
}

export async function deleteFollow(tx: Tx, edge: FollowEdge): Promise<boolean> {
  const rows = await tx
    .delete(follows)
    .where(and(eq(follows.followerId, edge.followerId), eq(follows.followeeId, edge.followeeId)))
    .returning({ followerId: follows.followerId });
  return rows.length > 0;
}

/** Removes the follows between two users, both directions; returns the removed edges. */
export function deleteFollowsBetween(tx: Tx, a: string, b: string): Promise<FollowEdge[]> {
  return tx
    .delete(follows)
    .where(or(and(eq(follows.followerId, a), eq(follows.followeeId, b)), and(eq(follows.followerId, b), eq(follows.followeeId, a))))
    .returning({ followerId: follows.followerId, followeeId: follows.followeeId });
}

/** Applies `delta` (+1 / -1) to both counters of an edge. */
export async function adjustCounts(tx: Tx, edge: FollowEdge, delta: 1 | -1): Promise<void> {
  await tx
    .update(profiles)
    .set({ followingCount: sql`${profiles.followingCount} + ${delta}` })
    .where(eq(profiles.userId, edge.followerId));
  await tx
    .update(profiles)
    .set({ followerCount: sql`${profiles.followerCount} + ${delta}` })
    .where(eq(profiles.userId, edge.followeeId));
}

/** The blocks between two users: whether a blocked b, and whether b blocked a. */
export async function blocksBetween(db: Queryable, a: string, b: string): Promise<{ aBlockedB: boolean; bBlockedA: boolean }> {
  const rows = await db
    .select({ blockerId: blocks.blockerId })
    .from(blocks)
    .where(or(and(eq(blocks.blockerId, a), eq(blocks.blockedId, b)), and(eq(blocks.blockerId, b), eq(blocks.blockedId, a))));
  return { aBlockedB: rows.some((r) => r.blockerId === a), bBlockedA: rows.some((r) => r.blockerId === b) };
}

export async function insertBlock(tx: Tx, blockerId: string, blockedId: string, at: Date): Promise<boolean> {
  const rows = await tx.insert(blocks).values({ blockerId, blockedId, createdAt: at }).onConflictDoNothing().returning({ blockerId: blocks.blockerId });
  return rows.length > 0;
}

export async function deleteBlock(tx: Tx, blockerId: string, blockedId: string): Promise<boolean> {
  const rows = await tx
    .delete(blocks)
    .where(and(eq(blocks.blockerId, blockerId), eq(blocks.blockedId, blockedId)))
    .returning({ blockerId: blocks.blockerId });
  return rows.length > 0;
}

export interface EdgeCursor {
  createdAt: string;
  id: string;
}

/**
 * One page of a user's followers (direction "followers") or followees
 * ("following"), newest edge first, with the other side's profile; profiles
 * separated from the viewer by a block are left out.
 */
export async function listEdges(
  db: Queryable,
  direction: "followers" | "following",
  userId: string,
  viewerId: string,
  limit: number,
  after?: EdgeCursor,
): Promise<Array<{ profile: ProfileRow; followedAt: Date }>> {
  const self = direction === "followers" ? follows.followeeId : follows.followerId;
  const other = direction === "followers" ? follows.followerId : follows.followeeId;
  // The viewer's blocks either way, as one small array: a plain filter on the
  // index walk, where an anti-join would make the planner read every edge.
  const hidden = blockedEitherWayIds(viewerId);
  // The page of edges first (an index walk on (self, created_at, other) that
  // stops after `limit` rows), then the profiles of just those rows.
  const page = db
    .select({ other, followedAt: follows.createdAt })
    .from(follows)
    .where(
      and(
        eq(self, userId),
        sql`${other} <> all (${hidden})`,
        after ? sql`(${follows.createdAt}, ${other}) < (${new Date(after.createdAt).toISOString()}::timestamptz, ${after.id}::uuid)` : undefined,
      ),
    )
    .orderBy(newestFirst(follows.createdAt), newestFirst(other))
    .limit(limit)
    .as("page");
  return db
    .select({ profile: profiles, followedAt: page.followedAt })
    .from(page)
    .innerJoin(profiles, eq(profiles.userId, page.other))
    .orderBy(newestFirst(page.followedAt), newestFirst(page.other));
}

/** Which of `pairs` are follow edges. */
export async function existingFollows(db: Queryable, pairs: FollowEdge[]): Promise<Set<string>> {
  if (pairs.length === 0) return new Set();
  // The pairs as two parallel arrays (two parameters, one plan whatever the
  // count), joined to the table: one primary-key probe per pair.
  const asked = sql`unnest(${sql.param(pairs.map((p) => p.followerId))}::uuid[], ${sql.param(pairs.map((p) => p.followeeId))}::uuid[]) as asked(follower_id, followee_id)`;
  const rows = await db
    .select({ followerId: follows.followerId, followeeId: follows.followeeId })
    .from(follows)
    .innerJoin(asked, sql`${follows.followerId} = asked.follower_id and ${follows.followeeId} = asked.followee_id`);
  return new Set(rows.map(edgeKey));
}

export function edgeKey(edge: FollowEdge): string {
  return `${edge.followerId}>${edge.followeeId}`;
}
