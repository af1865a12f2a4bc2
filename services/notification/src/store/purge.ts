import { eq, inArray, or, sql } from "drizzle-orm";
import type { Tx } from "@aviary/runtime/db/database";
import { blocks, deliveries, follows, groups, notifications, preferences, recipients, suspendedUsers } from "./schema.ts";

/**
 * Removes everything the notification service holds of a deleted account:
 * notifications to it (with their groups and push ledger rows), its
 * sequence and preferences, the block, follow and suspension projections,
 * and the notifications about what it did to others (its likes, comments,
 * follows, mentions) — whose groups are recounted from the notifications
 * left, so the other users' lists and unread counts stay right. Deleting
 * what is gone changes nothing, so applying it again is harmless.
 */
export async function purgeUserNotifications(tx: Tx, userId: string): Promise<void> {
  await tx.delete(deliveries).where(eq(deliveries.recipientId, userId));
  await tx.delete(notifications).where(eq(notifications.recipientId, userId));
  await tx.delete(groups).where(eq(groups.recipientId, userId));
  await tx.delete(recipients).where(eq(recipients.userId, userId));
  await tx.delete(preferences).where(eq(preferences.userId, userId));
  await tx.delete(blocks).where(or(eq(blocks.blockerId, userId), eq(blocks.blockedId, userId)));
  await tx.delete(follows).where(or(eq(follows.followerId, userId), eq(follows.followeeId, userId)));
  await tx.delete(suspendedUsers).where(eq(suspendedUsers.userId, userId));

  const acted = await tx.delete(notifications).where(eq(notifications.actorId, userId)).returning({ id: notifications.id, groupId: notifications.groupId });
  if (acted.length === 0) return;
  await tx.delete(deliveries).where(inArray(deliveries.notificationId, acted.map((row) => row.id)));
  const touched = [...new Set(acted.map((row) => row.groupId))];
  // A group whose notifications are all gone keeps its row with count 0 and is not listed (as after any removal).
  for (const groupId of touched) {
    const live = sql`from ${notifications} n where n.group_id = ${groupId} and n.removed_at is null`;
    await tx
      .update(groups)
      .set({
        notificationCount: sql`(select count(*) ${live})`,
        actorCount: sql`(select count(distinct n.actor_id) ${live})`,
        sampleActorIds: sql`array_remove(${groups.sampleActorIds}, ${userId}::uuid)`,
        latestSeq: sql`coalesce((select max(n.seq) ${live}), ${groups.latestSeq})`,
      })
      .where(eq(groups.id, groupId));
  }
}
