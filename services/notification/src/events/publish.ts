import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Tx } from "@aviary/runtime/db/database";
import { enqueueEvent } from "@aviary/runtime/outbox/enqueue";
import { NotificationCreatedSchema } from "@aviary/gen/aviary/events/v1/notification_events_pb";
import { kindOf, type KindName } from "../domain/kinds.ts";
import { outboxEvents } from "../store/schema.ts";

/** The push workers' topic (NOTIFICATION_EVENTS_TOPIC), keyed by recipient: one user's pushes stay in order. */
export const notificationEventsTopic = "aviary.notification.events";

export interface PushRequest {
  notificationId: string;
  recipientId: string;
  groupId: string;
  kind: KindName;
  actorId: string;
  postId: string;
  groupNotificationCount: number;
  groupActorCount: number;
  unreadCount: number;
  createdAt: Date;
  /** Messages: the start of the text, the conversation, the group's title. */
  preview?: string;
  conversationId?: string;
  conversationTitle?: string;
}

/** A push request to `topic`, in the transaction that recorded the notification (outbox). */
export function notificationCreated(tx: Tx, topic: string, push: PushRequest): Promise<void> {
  return enqueueEvent(
    tx,
    { outboxEvents },
    {
      topic,
      key: push.recipientId,
      schema: NotificationCreatedSchema,
      message: create(NotificationCreatedSchema, {
        notificationId: push.notificationId,
        recipientId: push.recipientId,
        groupId: push.groupId,
        kind: kindOf(push.kind),
        actorId: push.actorId,
        postId: push.postId,
        groupNotificationCount: push.groupNotificationCount,
        groupActorCount: push.groupActorCount,
        unreadCount: BigInt(push.unreadCount),
        createdAt: timestampFromDate(push.createdAt),
        preview: push.preview ?? "",
        conversationId: push.conversationId ?? "",
        conversationTitle: push.conversationTitle ?? "",
      }),
    },
  );
}
