// The blocks and follows the notification service keeps from user events,
// and the suspensions from moderation events (read at ingest by
// notifications.ts ingestFacts).
import { and, eq, sql } from "drizzle-orm";
import type { Tx } from "@aviary/runtime/db/database";
import { blocks, follows, suspendedUsers } from "./schema.ts";

export async function insertBlock(tx: Tx, blockerId: string, blockedId: string): Promise<void> {
  await tx.insert(blocks).values({ blockerId, blockedId }).onConflictDoNothing();
}

export async function deleteBlock(tx: Tx, blockerId: string, blockedId: string): Promise<void> {
  await tx.delete(blocks).where(and(eq(blocks.blockerId, blockerId), eq(blocks.blockedId, blockedId)));
}

export async function insertFollow(tx: Tx, followerId: string, followeeId: string): Promise<void> {
  await tx.insert(follows).values({ followerId, followeeId }).onConflictDoNothing();
}

export async function deleteFollow(tx: Tx, followerId: string, followeeId: string): Promise<void> {
  await tx.delete(follows).where(and(eq(follows.followerId, followerId), eq(follows.followeeId, followeeId)));
}


/**
 * Records a suspension or its lifting if it is newer than the one recorded
 * (last change by its time wins: a replay or a late redelivery changes
 * nothing); true when it was.
 */
export async function recordSuspension(tx: Tx, change: { userId: string; suspended: boolean; at: Date }): Promise<boolean> {
  const won = await tx
    .insert(suspendedUsers)
    .values({ userId: change.userId, suspended: change.suspended, changedAt: change.at })
    .onConflictDoUpdate({
      target: suspendedUsers.userId,
      set: { suspended: change.suspended, changedAt: change.at },
      setWhere: sql`${suspendedUsers.changedAt} < excluded.changed_at`,
    })
    .returning({ userId: suspendedUsers.userId });
  return won.length > 0;
}
