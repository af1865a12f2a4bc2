// The blocks and follows the notification service keeps from user events
// (read at ingest by notifications.ts ingestFacts).
import { and, eq } from "drizzle-orm";
import type { Tx } from "@aviary/runtime/db/database";
import { blocks, follows } from "./schema.ts";

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

