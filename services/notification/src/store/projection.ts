// The blocks and follows the notification service keeps from user events.
import { and, eq, or } from "drizzle-orm";
import type { Queryable, Tx } from "@aviary/runtime/db/database";
import { blocks, follows } from "./schema.ts";

export async function insertBlock(tx: Tx, blockerId: string, blockedId: string): Promise<void> {
  await tx.insert(blocks).values({ blockerId, blockedId }).onConflictDoNothing();
}

export async function deleteBlock(tx: Tx, blockerId: string, blockedId: string): Promise<void> {
  await tx.delete(blocks).where(and(eq(blocks.blockerId, blockerId), eq(blocks.blockedId, blockedId)));
}

/** Either blocks the other. */
export async function blockedBetween(db: Queryable, a: string, b: string): Promise<boolean> {
  const rows = await db
    .select({ blockerId: blocks.blockerId })
    .from(blocks)
    .where(or(and(eq(blocks.blockerId, a), eq(blocks.blockedId, b)), and(eq(blocks.blockerId, b), eq(blocks.blockedId, a))))
    .limit(1);
  return rows.length > 0;
}

export async function insertFollow(tx: Tx, followerId: string, followeeId: string): Promise<void> {
  await tx.insert(follows).values({ followerId, followeeId }).onConflictDoNothing();
}

export async function deleteFollow(tx: Tx, followerId: string, followeeId: string): Promise<void> {
  await tx.delete(follows).where(and(eq(follows.followerId, followerId), eq(follows.followeeId, followeeId)));
}

export async function isFollowing(db: Queryable, followerId: string, followeeId: string): Promise<boolean> {
  const rows = await db
    .select({ followerId: follows.followerId })
    .from(follows)
    .where(and(eq(follows.followerId, followerId), eq(follows.followeeId, followeeId)))
    .limit(1);
  return rows.length > 0;
}
