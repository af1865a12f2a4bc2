import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Tx } from "@aviary/runtime/db/database";
import { enqueueEvent } from "@aviary/runtime/outbox/enqueue";
import {
  FollowCreatedSchema,
  FollowDeletedReason,
  FollowDeletedSchema,
  ProfileUpdatedSchema,
  UserBlockedSchema,
  UserUnblockedSchema,
} from "@aviary/gen/aviary/events/v1/user_events_pb";
import { outboxEvents, type profiles } from "../store/schema.ts";

/** The topic of every user event, keyed by the acting user's id. */
export const userEventsTopic = "aviary.user.events";

const tables = { outboxEvents };

/**
 * Event producers. Each writes to the outbox inside the caller's transaction,
 * so an event exists exactly when the state change it describes committed.
 */
export function followCreated(tx: Tx, followerId: string, followeeId: string, at: Date): Promise<void> {
  return enqueueEvent(tx, tables, {
    topic: userEventsTopic,
    key: followerId,
    schema: FollowCreatedSchema,
    message: create(FollowCreatedSchema, { followerId, followeeId, createdAt: timestampFromDate(at) }),
  });
}

export type FollowEndReason = "unfollow" | "block";

/** `actorId` (the key) is the follower for an unfollow, the blocker for a block. */
export function followDeleted(
  tx: Tx,
  actorId: string,
  edge: { followerId: string; followeeId: string },
  reason: FollowEndReason,
  at: Date,
): Promise<void> {
  return enqueueEvent(tx, tables, {
    topic: userEventsTopic,
    key: actorId,
    schema: FollowDeletedSchema,
    message: create(FollowDeletedSchema, {
      followerId: edge.followerId,
      followeeId: edge.followeeId,
      reason: reason === "unfollow" ? FollowDeletedReason.UNFOLLOW : FollowDeletedReason.BLOCK,
      deletedAt: timestampFromDate(at),
    }),
  });
}

export function userBlocked(tx: Tx, blockerId: string, blockedId: string, at: Date): Promise<void> {
  return enqueueEvent(tx, tables, {
    topic: userEventsTopic,
    key: blockerId,
    schema: UserBlockedSchema,
    message: create(UserBlockedSchema, { blockerId, blockedId, blockedAt: timestampFromDate(at) }),
  });
}

export function userUnblocked(tx: Tx, blockerId: string, blockedId: string, at: Date): Promise<void> {
  return enqueueEvent(tx, tables, {
    topic: userEventsTopic,
    key: blockerId,
    schema: UserUnblockedSchema,
    message: create(UserUnblockedSchema, { blockerId, blockedId, unblockedAt: timestampFromDate(at) }),
  });
}

export function profileUpdated(tx: Tx, profile: typeof profiles.$inferSelect, changedFields: string[]): Promise<void> {
  return enqueueEvent(tx, tables, {
    topic: userEventsTopic,
    key: profile.userId,
    schema: ProfileUpdatedSchema,
    message: create(ProfileUpdatedSchema, {
      userId: profile.userId,
      username: profile.username ?? "",
      displayName: profile.displayName,
      bio: profile.bio,
      avatarMediaId: profile.avatarMediaId ?? "",
      changedFields,
      updatedAt: timestampFromDate(profile.updatedAt),
    }),
  });
}
