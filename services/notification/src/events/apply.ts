// What each event does to the notifications.
//
// Two steps per event, like the feed's projector:
// 1. The change runs once per event id (handleOnce): the notifications, their
//    groups, the projections and the push requests (outbox) commit together
//    with the processed-event row. A redelivered event changes nothing.
// 2. After the commit, and again on every redelivery, the live updates of
//    whatever the event touched are published to the recipients' streams
//    (live.ts). Publishing is idempotent by id, so repeating it sends nothing
//    twice, and a crash between the commit and the publish loses nothing.
import type { Database, Tx } from "@aviary/runtime/db/database";
import { handleOnce } from "@aviary/runtime/outbox/idempotent";
import type { Logger } from "@aviary/runtime/log";
import { groupKey } from "../domain/grouping.ts";
import { listedKinds, type KindName } from "../domain/kinds.ts";
import { effectiveChannels, resolvePreferences } from "../domain/preferences.ts";
import { stableUuid } from "../domain/ids.ts";
import { messagePreview } from "../domain/push-text.ts";
import {
  hideSuspendedActor,
  ingestFacts,
  markPostDeleted,
  notificationsWhere,
  recordNotification,
  removeNotifications,
  restoreSuspendedActor,
  unreadCount,
} from "../store/notifications.ts";
import { deleteBlock, deleteFollow, insertBlock, insertFollow, recordSuspension } from "../store/projection.ts";
import { processedEvents } from "../store/schema.ts";
import type { UserDirectory } from "../peers.ts";
import { notificationCreated } from "./publish.ts";
import type { LiveChange, LiveUpdates } from "./live.ts";

/** The consumer name in processed_events. */
export const notificationConsumer = "notification";

export interface ApplyDeps {
  database: Database;
  users: UserDirectory;
  /** Follows within this window share a group (NOTIFICATION_FOLLOW_GROUP_WINDOW). */
  followWindowMs: number;
  /** An unfollow this soon after the follow takes its notification back (NOTIFICATION_UNFOLLOW_WINDOW). */
  unfollowWindowMs: number;
  /** Where push requests go (NOTIFICATION_EVENTS_TOPIC): the push workers' topic. */
  pushTopic: string;
  /** Absent: no live updates (tests of the store alone). */
  live?: LiveUpdates;
  logger: Logger;
}

/** Something that may notify `recipientId` about `actorId`. */
export interface Candidate {
  recipientId: string;
  actorId: string;
  kind: KindName;
  /** NotificationGroup.post_id. */
  postId?: string;
  /** The comment or reply post. */
  sourceId?: string;
  /** Messages (push only): the conversation, the start of the text, the group's title ("" for a direct conversation). */
  message?: { conversationId: string; preview: string; title: string };
  /** When it happened (the event's time): the follow windows. */
  at: Date;
}

/** Most mentions one post notifies (the rest of a long list is ignored). */
export const MAX_MENTIONS = 20;

const once = (deps: ApplyDeps, eventId: string, apply: (tx: Tx) => Promise<void>) => handleOnce(deps.database, { processedEvents }, notificationConsumer, eventId, apply);

/**
 * Records the candidates that pass the rules (with `change`, a projection
 * update, in the same transaction), then publishes live updates: straight
 * from what the transaction wrote when it applied the event, re-read from
 * the store on a redelivery (the first delivery may have died before
 * publishing).
 */
export async function applyCandidates(deps: ApplyDeps, eventId: string, candidates: readonly Candidate[], change?: (tx: Tx) => Promise<void>): Promise<void> {
  // In user-id order: each recipient's row lock is taken as their notification is numbered.
  const eligible = candidates.filter((c) => c.recipientId !== c.actorId).sort((a, b) => (a.recipientId < b.recipientId ? -1 : a.recipientId > b.recipientId ? 1 : 0));
  const changes: LiveChange[] = [];
  const applied = await once(deps, eventId, async (tx) => {
    await change?.(tx);
    for (const candidate of eligible) {
      const recorded = await applyCandidate(deps, tx, eventId, candidate);
      if (recorded !== undefined) changes.push(recorded);
    }
  });
  if (applied) await deps.live?.announce(eventId, changes);
  else await deps.live?.afterEvent(eventId);
}

/** Applies the rules to one candidate; returns what the live update needs when a notification was listed. */
async function applyCandidate(deps: ApplyDeps, tx: Tx, eventId: string, c: Candidate): Promise<LiveChange | undefined> {
  const facts = await ingestFacts(tx, { recipientId: c.recipientId, actorId: c.actorId, postIds: [c.postId, c.sourceId].filter((id): id is string => id !== undefined) });
  // A suspended actor cannot act; what reaches here was in flight when they were suspended, and is dropped like a blocked one's.
  if (facts.blocked || facts.postDeleted || facts.actorSuspended) return undefined;
  const preferences = resolvePreferences(facts.preferences);
  const channels = effectiveChannels(preferences, c.kind);
  if (!channels.inApp && !channels.push) return undefined;
  // Every kind but messages: a conversation the recipient is in is theirs to hear from.
  if (preferences.onlyFromFollowing && c.kind !== "message" && !facts.following) return undefined;

  const key = groupKey(
    { kind: c.kind, ...(c.postId === undefined ? {} : { postId: c.postId }), ...(c.message === undefined ? {} : { conversationId: c.message.conversationId }), at: c.at },
    deps.followWindowMs,
  );
  const notificationId = crypto.randomUUID();
  // Messages are never listed (effectiveChannels: in-app false): only their push request is written.
  const recorded =
    channels.inApp && c.kind !== "message"
      ? await recordNotification(tx, { id: notificationId, eventId, recipientId: c.recipientId, kind: c.kind, groupKey: key, actorId: c.actorId, postId: c.postId, sourceId: c.sourceId })
      : undefined;
  // The badge: what the list would count now (this transaction's notification included).
  const unread = await unreadCount(
    tx,
    c.recipientId,
    listedKinds.filter((kind) => effectiveChannels(preferences, kind).inApp),
  );
  if (channels.push) {
    await notificationCreated(tx, deps.pushTopic, {
      notificationId,
      recipientId: c.recipientId,
      // Push-only (not listed): a stable stand-in for the group, so pushes still collapse.
      groupId: recorded?.group.id ?? stableUuid(c.recipientId, key),
      kind: c.kind,
      actorId: c.actorId,
      postId: c.postId ?? "",
      groupNotificationCount: recorded?.group.notificationCount ?? 1,
      groupActorCount: recorded?.group.actorCount ?? 1,
      unreadCount: unread,
      // A message's push is as old as the message (PUSH_MAX_AGE drops a banner about one long gone).
      createdAt: c.kind === "message" ? c.at : new Date(),
      ...(c.message === undefined ? {} : { preview: c.message.preview, conversationId: c.message.conversationId, conversationTitle: c.message.title }),
    });
  }
  return recorded === undefined ? undefined : { recipientId: c.recipientId, group: recorded.group, seenSeq: recorded.seenSeq, unreadCount: unread };
}

/** Removes what matches, then publishes live updates. */
export async function applyRemoval(deps: ApplyDeps, eventId: string, change: (tx: Tx) => Promise<void>, where: Parameters<typeof removeNotifications>[2] | undefined): Promise<void> {
  await once(deps, eventId, async (tx) => {
    await change(tx);
    if (where !== undefined) await removeNotifications(tx, eventId, where);
  });
  await deps.live?.afterEvent(eventId);
}

// --- per event ---------------------------------------------------------------

export function applyPostCreated(
  deps: ApplyDeps,
  eventId: string,
  post: { postId: string; authorId: string; replyToPostId: string | undefined; replyToAuthorId: string | undefined; mentionedIds: readonly string[]; at: Date },
): Promise<void> {
  const candidates: Candidate[] = [];
  if (post.replyToPostId !== undefined && post.replyToAuthorId !== undefined) {
    candidates.push({ recipientId: post.replyToAuthorId, actorId: post.authorId, kind: "reply", postId: post.replyToPostId, sourceId: post.postId, at: post.at });
  }
  for (const userId of post.mentionedIds) {
    // The reply's recipient already hears about this post.
    if (userId === post.replyToAuthorId) continue;
    candidates.push({ recipientId: userId, actorId: post.authorId, kind: "mention", postId: post.postId, at: post.at });
  }
  return applyCandidates(deps, eventId, candidates);
}

export function applyCommentCreated(deps: ApplyDeps, eventId: string, comment: { commentId: string; postId: string; authorId: string; postAuthorId: string; at: Date }): Promise<void> {
  return applyCandidates(deps, eventId, [{ recipientId: comment.postAuthorId, actorId: comment.authorId, kind: "comment", postId: comment.postId, sourceId: comment.commentId, at: comment.at }]);
}

export function applyLikeCreated(deps: ApplyDeps, eventId: string, like: { postId: string; likerId: string; postAuthorId: string; at: Date }): Promise<void> {
  return applyCandidates(deps, eventId, [{ recipientId: like.postAuthorId, actorId: like.likerId, kind: "like", postId: like.postId, at: like.at }]);
}

export function applyCommentDeleted(deps: ApplyDeps, eventId: string, commentId: string): Promise<void> {
  return applyRemoval(deps, eventId, async () => undefined, notificationsWhere.source(commentId));
}

export function applyLikeDeleted(deps: ApplyDeps, eventId: string, postId: string, likerId: string): Promise<void> {
  return applyRemoval(deps, eventId, async () => undefined, notificationsWhere.like(postId, likerId));
}

export function applyPostDeleted(deps: ApplyDeps, eventId: string, postId: string, at: Date): Promise<void> {
  return applyRemoval(deps, eventId, (tx) => markPostDeleted(tx, postId, at), notificationsWhere.post(postId));
}

export function applyFollowCreated(deps: ApplyDeps, eventId: string, edge: { followerId: string; followeeId: string }, at: Date): Promise<void> {
  return applyCandidates(deps, eventId, [{ recipientId: edge.followeeId, actorId: edge.followerId, kind: "follow", at }], (tx) => insertFollow(tx, edge.followerId, edge.followeeId));
}

export function applyFollowDeleted(deps: ApplyDeps, eventId: string, edge: { followerId: string; followeeId: string }, unfollowed: boolean, at: Date): Promise<void> {
  const since = new Date(at.getTime() - deps.unfollowWindowMs);
  return applyRemoval(
    deps,
    eventId,
    (tx) => deleteFollow(tx, edge.followerId, edge.followeeId),
    // Blocks take everything between the two away (applyUserBlocked).
    unfollowed ? notificationsWhere.followSince(edge.followeeId, edge.followerId, since) : undefined,
  );
}

export function applyUserBlocked(deps: ApplyDeps, eventId: string, blockerId: string, blockedId: string): Promise<void> {
  return applyRemoval(deps, eventId, (tx) => insertBlock(tx, blockerId, blockedId), notificationsWhere.between(blockerId, blockedId));
}

export function applyUserUnblocked(deps: ApplyDeps, eventId: string, blockerId: string, blockedId: string): Promise<void> {
  // What the block removed stays removed.
  return applyRemoval(deps, eventId, (tx) => deleteBlock(tx, blockerId, blockedId), undefined);
}

/**
 * A moderator suspended a user, or lifted it (the moderation topic): what
 * they caused leaves every list (and unread count) while suspended and comes
 * back when lifted, but for what was removed meanwhile for a reason of its
 * own. The last change by its time wins.
 */
export async function applyUserSuspension(deps: ApplyDeps, eventId: string, change: { userId: string; suspended: boolean; at: Date }): Promise<void> {
  await once(deps, eventId, async (tx) => {
    if (!(await recordSuspension(tx, change))) return;
    if (change.suspended) await hideSuspendedActor(tx, eventId, change.userId);
    else await restoreSuspendedActor(tx, eventId, change.userId);
  });
  await deps.live?.afterEvent(eventId);
}

/**
 * A chat message: a push to every member but the sender (blocks and push
 * preferences honoured, never listed). The push requests commit with the
 * processed-event row, so a redelivered message pushes nothing twice.
 */
export function applyChatMessageSent(
  deps: ApplyDeps,
  eventId: string,
  sent: { conversationId: string; senderId: string; memberIds: readonly string[]; text: string; title: string; at: Date },
): Promise<void> {
  const preview = messagePreview(sent.text);
  const message = { conversationId: sent.conversationId, preview, title: sent.title };
  const candidates: Candidate[] = [...new Set(sent.memberIds)].map((recipientId) => ({ recipientId, actorId: sent.senderId, kind: "message", message, at: sent.at }));
  return applyCandidates(deps, eventId, candidates);
}
