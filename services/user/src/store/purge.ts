import { eq, inArray, or, sql } from "drizzle-orm";
import type { Tx } from "@aviary/runtime/db/database";
import { blocks, devices, follows, profileNameTails, profiles } from "./schema.ts";

/**
 * Removes everything the user service holds of a deleted account: the
 * profile (and its name tails), follows both ways — with the counts of the
 * accounts on the other side taken down in the same transaction —, blocks
 * both ways and the push tokens. Deleting what is gone changes nothing, so
 * applying it again is harmless.
 */
export async function purgeUser(tx: Tx, userId: string): Promise<void> {
  const removed = await tx
    .delete(follows)
    .where(or(eq(follows.followerId, userId), eq(follows.followeeId, userId)))
    .returning({ followerId: follows.followerId, followeeId: follows.followeeId });
  const lostFollower = removed.filter((edge) => edge.followerId === userId).map((edge) => edge.followeeId);
  const stoppedFollowing = removed.filter((edge) => edge.followeeId === userId).map((edge) => edge.followerId);
  if (lostFollower.length > 0) {
    await tx.update(profiles).set({ followerCount: sql`greatest(${profiles.followerCount} - 1, 0)` }).where(inArray(profiles.userId, lostFollower));
  }
  if (stoppedFollowing.length > 0) {
    await tx.update(profiles).set({ followingCount: sql`greatest(${profiles.followingCount} - 1, 0)` }).where(inArray(profiles.userId, stoppedFollowing));
  }
  await tx.delete(blocks).where(or(eq(blocks.blockerId, userId), eq(blocks.blockedId, userId)));
  await tx.delete(devices).where(eq(devices.userId, userId));
  await tx.delete(profileNameTails).where(eq(profileNameTails.userId, userId));
  await tx.delete(profiles).where(eq(profiles.userId, userId));
}
