// The notification consumer: one subscription on the post and user topics,
// and one on the chat topic (message pushes; see consumeChatMessages).
// Events are applied one at a time per partition (several partitions at
// once), at least once: handleOnce absorbs redeliveries (apply.ts). Event
// types it does not use (profile updates) are skipped. An event that keeps
// failing is retried with backoff by the bus and then parked on
// `<topic>.dlq` with the reason; one that cannot be decoded is parked at once.
import type { DeliveredEvent, EventBus, Subscription } from "@aviary/runtime/bus/bus";
import type { EventTelemetry } from "@aviary/runtime/bus/tracing";
import { EventDecodeError, isEventOf } from "@aviary/runtime/outbox/enqueue";
import { decodedEvent, eventTime, eventUuid, optionalEventUuid } from "@aviary/runtime/outbox/fields";
import { CommentCreatedSchema, CommentDeletedSchema, LikeCreatedSchema, LikeDeletedSchema, PostCreatedSchema, PostDeletedSchema } from "@aviary/gen/aviary/events/v1/post_events_pb";
import { ChatMessageSentSchema } from "@aviary/gen/aviary/events/v1/chat_events_pb";
import { ConversationKind } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { FollowCreatedSchema, FollowDeletedReason, FollowDeletedSchema, UserBlockedSchema, UserUnblockedSchema } from "@aviary/gen/aviary/events/v1/user_events_pb";
import { UserSuspendedSchema, UserUnsuspendedSchema } from "@aviary/gen/aviary/events/v1/moderation_events_pb";
import {
  applyChatMessageSent,
  applyCommentCreated,
  applyCommentDeleted,
  applyFollowCreated,
  applyFollowDeleted,
  applyLikeCreated,
  applyLikeDeleted,
  applyPostCreated,
  applyPostDeleted,
  applyUserBlocked,
  applyUserSuspension,
  applyUserUnblocked,
  MAX_MENTIONS,
  type ApplyDeps,
} from "./apply.ts";
import { attachmentsPreview } from "../domain/push-text.ts";

/** The post service's topic, keyed by post id. */
export const postEventsTopic = "aviary.post.events";
/** The user service's topic, keyed by the acting user's id. */
export const userEventsTopic = "aviary.user.events";

/** The chat service's topic, keyed by conversation id: the default of CHAT_EVENTS_TOPIC (the chat service's default too). */
export const chatEventsTopic = "aviary.chat.events";

/** The moderation service's topic, keyed by the suspended user's id (services/moderation/src/events/publish.ts). */
export const moderationEventsTopic = "aviary.moderation.events";

/** The default consumer group (NOTIFICATION_GROUP). */
export const notificationGroup = "notification";

/** The chat subscription's consumer group: NOTIFICATION_GROUP's, suffixed (a group per topic set). */
export function chatGroupOf(groupId: string): string {
  return `${groupId}-chat`;
}

export interface ConsumeOptions extends ApplyDeps {
  bus: EventBus;
  groupId: string;
  /** The moderation topic (suspensions), read beside the post and user topics. */
  moderationTopic: string;
  partitionsConcurrently?: number;
  /** Delivery policy overrides (tests); the bus' defaults otherwise. */
  maxAttempts?: number;
  initialBackoffMs?: number;
  /** The notification service's tracer: each event is a CONSUMER span in its producer's trace. */
  telemetry?: EventTelemetry;
}

export function consumeNotificationEvents(options: ConsumeOptions): Promise<Subscription> {
  return options.bus.subscribe({
    groupId: options.groupId,
    topics: [postEventsTopic, userEventsTopic, options.moderationTopic],
    ...(options.partitionsConcurrently === undefined ? {} : { partitionsConcurrently: options.partitionsConcurrently }),
    ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
    ...(options.initialBackoffMs === undefined ? {} : { initialBackoffMs: options.initialBackoffMs }),
    ...(options.telemetry === undefined ? {} : { telemetry: options.telemetry }),
    handle: (event) => handleNotificationEvent(options, event),
  });
}

export async function handleNotificationEvent(deps: ApplyDeps, event: DeliveredEvent): Promise<void> {
  if (isEventOf(PostCreatedSchema, event)) {
    const { id, message } = decodedEvent(PostCreatedSchema, event);
    const authorId = eventUuid(message.authorId, "author_id", id);
    const mentions = message.mentions.slice(0, MAX_MENTIONS);
    // Resolved when the event is applied: a name taken over later does not
    // move the mention, a name never taken is ignored.
    const mentioned = mentions.length === 0 ? new Map<string, string>() : await deps.users.idsByUsername(mentions);
    await applyPostCreated(deps, id, {
      postId: eventUuid(message.postId, "post_id", id),
      authorId,
      replyToPostId: optionalEventUuid(message.replyToPostId, "reply_to_post_id", id),
      replyToAuthorId: optionalEventUuid(message.replyToAuthorId, "reply_to_author_id", id),
      mentionedIds: [...new Set(mentioned.values())],
      at: eventTime(message.createdAt, "created_at", id),
    });
  } else if (isEventOf(PostDeletedSchema, event)) {
    const { id, message } = decodedEvent(PostDeletedSchema, event);
    await applyPostDeleted(deps, id, eventUuid(message.postId, "post_id", id), message.deletedAt ? eventTime(message.deletedAt, "deleted_at", id) : new Date());
  } else if (isEventOf(CommentCreatedSchema, event)) {
    const { id, message } = decodedEvent(CommentCreatedSchema, event);
    await applyCommentCreated(deps, id, {
      commentId: eventUuid(message.commentId, "comment_id", id),
      postId: eventUuid(message.postId, "post_id", id),
      authorId: eventUuid(message.authorId, "author_id", id),
      postAuthorId: eventUuid(message.postAuthorId, "post_author_id", id),
      at: eventTime(message.createdAt, "created_at", id),
    });
  } else if (isEventOf(CommentDeletedSchema, event)) {
    const { id, message } = decodedEvent(CommentDeletedSchema, event);
    await applyCommentDeleted(deps, id, eventUuid(message.commentId, "comment_id", id));
  } else if (isEventOf(LikeCreatedSchema, event)) {
    const { id, message } = decodedEvent(LikeCreatedSchema, event);
    await applyLikeCreated(deps, id, {
      postId: eventUuid(message.postId, "post_id", id),
      likerId: eventUuid(message.likerId, "liker_id", id),
      postAuthorId: eventUuid(message.postAuthorId, "post_author_id", id),
      at: eventTime(message.createdAt, "created_at", id),
    });
  } else if (isEventOf(LikeDeletedSchema, event)) {
    const { id, message } = decodedEvent(LikeDeletedSchema, event);
    await applyLikeDeleted(deps, id, eventUuid(message.postId, "post_id", id), eventUuid(message.likerId, "liker_id", id));
  } else if (isEventOf(FollowCreatedSchema, event)) {
    const { id, message } = decodedEvent(FollowCreatedSchema, event);
    const edge = { followerId: eventUuid(message.followerId, "follower_id", id), followeeId: eventUuid(message.followeeId, "followee_id", id) };
    await applyFollowCreated(deps, id, edge, message.createdAt ? eventTime(message.createdAt, "created_at", id) : new Date());
  } else if (isEventOf(FollowDeletedSchema, event)) {
    const { id, message } = decodedEvent(FollowDeletedSchema, event);
    const edge = { followerId: eventUuid(message.followerId, "follower_id", id), followeeId: eventUuid(message.followeeId, "followee_id", id) };
    const at = message.deletedAt ? eventTime(message.deletedAt, "deleted_at", id) : new Date();
    await applyFollowDeleted(deps, id, edge, message.reason === FollowDeletedReason.UNFOLLOW, at);
  } else if (isEventOf(UserBlockedSchema, event)) {
    const { id, message } = decodedEvent(UserBlockedSchema, event);
    await applyUserBlocked(deps, id, eventUuid(message.blockerId, "blocker_id", id), eventUuid(message.blockedId, "blocked_id", id));
  } else if (isEventOf(UserUnblockedSchema, event)) {
    const { id, message } = decodedEvent(UserUnblockedSchema, event);
    await applyUserUnblocked(deps, id, eventUuid(message.blockerId, "blocker_id", id), eventUuid(message.blockedId, "blocked_id", id));
  } else if (isEventOf(UserSuspendedSchema, event)) {
    const { id, message } = decodedEvent(UserSuspendedSchema, event);
    await applyUserSuspension(deps, id, { userId: eventUuid(message.userId, "user_id", id), suspended: true, at: eventTime(message.suspendedAt, "suspended_at", id) });
  } else if (isEventOf(UserUnsuspendedSchema, event)) {
    const { id, message } = decodedEvent(UserUnsuspendedSchema, event);
    await applyUserSuspension(deps, id, { userId: eventUuid(message.userId, "user_id", id), suspended: false, at: eventTime(message.unsuspendedAt, "unsuspended_at", id) });
  }
}

/**
 * Message pushes, on a subscription of their own (group chatGroupOf(groupId)):
 * chat traffic does not queue behind (or ahead of) post and user events, and
 * a new group starts at the end of the topic, not the beginning. Messages are
 * never listed, so there is nothing to back-fill; replaying the history would
 * only write push requests the push worker then drops as too old.
 */
export function consumeChatMessages(options: ConsumeOptions & { chatTopic: string }): Promise<Subscription> {
  return options.bus.subscribe({
    groupId: chatGroupOf(options.groupId),
    topics: [options.chatTopic],
    fromBeginning: false,
    ...(options.partitionsConcurrently === undefined ? {} : { partitionsConcurrently: options.partitionsConcurrently }),
    ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
    ...(options.initialBackoffMs === undefined ? {} : { initialBackoffMs: options.initialBackoffMs }),
    ...(options.telemetry === undefined ? {} : { telemetry: options.telemetry }),
    handle: (event) => handleChatEvent(options, event),
  });
}

/**
 * ChatMessageSent → a push to every other member; the chat topic's other
 * events (conversations, receipts, edits, deletions, reactions) are skipped:
 * a push is for news, and a banner already shown cannot be taken back.
 */
export async function handleChatEvent(deps: ApplyDeps, event: DeliveredEvent): Promise<void> {
  if (!isEventOf(ChatMessageSentSchema, event)) return;
  const { id, message: sent } = decodedEvent(ChatMessageSentSchema, event);
  const message = sent.message;
  if (message === undefined) throw new EventDecodeError(`event ${id} has no message`);
  // Membership entries have no text (and come as ChatConversationChanged anyway): nothing to push.
  // A message of media only says what it carries.
  const text = message.text !== "" ? message.text : attachmentsPreview(message.attachments.map((a) => a.contentType));
  if (message.membership !== undefined || text === "") return;
  await applyChatMessageSent(deps, id, {
    conversationId: eventUuid(message.conversationId, "message.conversation_id", id),
    senderId: eventUuid(message.senderId, "message.sender_id", id),
    memberIds: sent.memberIds.map((memberId) => eventUuid(memberId, "member_ids", id)),
    text,
    title: sent.kind === ConversationKind.GROUP ? sent.title : "",
    at: message.createdAt ? eventTime(message.createdAt, "message.created_at", id) : new Date(),
  });
}
