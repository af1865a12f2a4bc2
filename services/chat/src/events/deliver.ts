// The delivery role: every chat event reaches every member's realtime
// stream as a durable item. At least once from Kafka, exactly once on the
// stream: the item id is derived from the event id and the member
// (domain/ids.ts deliveryId), and a stream ignores an id it already holds.
// A stream outage fails the handler, so the bus retries with backoff and
// finally parks the event on `<topic>.dlq`.
import type { DeliveredEvent, EventBus, Subscription } from "@aviary/runtime/bus/bus";
import { EventDecodeError, isEventOf } from "@aviary/runtime/outbox/enqueue";
import { decodedEvent, eventUuid } from "@aviary/runtime/outbox/fields";
import { publishEvent, type EventPayload } from "@aviary/runtime/realtime/events";
import type { UserStreamPublisher } from "@aviary/runtime/realtime/user-streams";
import { ChatConversationChangedSchema, ChatMessageSentSchema, ChatReceiptUpdatedSchema } from "@aviary/gen/aviary/events/v1/chat_events_pb";
import { deliveryId } from "../domain/ids.ts";

/** The default consumer group (CHAT_GROUP). */
export const chatGroup = "chat-delivery";

export interface DeliverOptions {
  bus: EventBus;
  topic: string;
  groupId: string;
  streams: UserStreamPublisher;
  partitionsConcurrently?: number;
}

export function consumeChatEvents(options: DeliverOptions): Promise<Subscription> {
  return options.bus.subscribe({
    groupId: options.groupId,
    topics: [options.topic],
    // A stream store outage is waited out (backoff capped at 30 s), never
    // dead-lettered: a parked event is a message some device never gets.
    // Undecodable events are still parked at once (the bus does that).
    maxAttempts: DELIVERY_MAX_ATTEMPTS,
    ...(options.partitionsConcurrently === undefined ? {} : { partitionsConcurrently: options.partitionsConcurrently }),
    handle: (event) => deliverChatEvent(options.streams, event),
  });
}

/** About a week of 30 s retries: in practice, until the realtime Redis is back. */
export const DELIVERY_MAX_ATTEMPTS = 20_000;

export async function deliverChatEvent(streams: UserStreamPublisher, event: DeliveredEvent): Promise<void> {
  const delivery = recipientsAndPayload(event);
  if (delivery === undefined) return;
  const { id, recipients, payload } = delivery;
  await Promise.all([...new Set(recipients)].map((userId) => publishEvent(streams, userId, deliveryId(id, userId), payload)));
}

function recipientsAndPayload(event: DeliveredEvent): { id: string; recipients: string[]; payload: EventPayload } | undefined {
  if (isEventOf(ChatMessageSentSchema, event)) {
    const { id, message } = decodedEvent(ChatMessageSentSchema, event);
    // The sender's own devices included: their other devices learn of the send.
    return { id, recipients: message.memberIds.map((m, i) => eventUuid(m, `member_ids[${i}]`, id)), payload: { case: "chatMessage", value: required(message.message, "message", id) } };
  }
  if (isEventOf(ChatConversationChangedSchema, event)) {
    const { id, message } = decodedEvent(ChatConversationChangedSchema, event);
    const conversation = required(message.conversation, "conversation", id);
    const current = conversation.members.map((m, i) => eventUuid(m.userId, `conversation.members[${i}].user_id`, id));
    // Removed members hear of their removal once, then nothing more.
    const removed = message.removedMemberIds.map((m, i) => eventUuid(m, `removed_member_ids[${i}]`, id));
    return { id, recipients: [...current, ...removed], payload: { case: "chatConversation", value: conversation } };
  }
  if (isEventOf(ChatReceiptUpdatedSchema, event)) {
    const { id, message } = decodedEvent(ChatReceiptUpdatedSchema, event);
    const { conversationId, userId, readSeq, deliveredSeq } = message;
    return { id, recipients: message.memberIds.map((m, i) => eventUuid(m, `member_ids[${i}]`, id)), payload: { case: "chatReceipt", value: { conversationId, userId, readSeq, deliveredSeq } } };
  }
  return undefined;
}

function required<T>(value: T | undefined, field: string, eventId: string): T {
  if (value === undefined) throw new EventDecodeError(`event ${eventId} has no ${field}`);
  return value;
}
