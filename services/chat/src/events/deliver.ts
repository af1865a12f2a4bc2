// The delivery role: every chat event reaches every member's realtime
// stream as a durable item. At least once from Kafka, exactly once on the
// stream: the item id is derived from the event id and the member
// (domain/ids.ts deliveryId), and a stream ignores an id it already holds.
// A stream outage fails the handler, so the bus retries with backoff and
// finally parks the event on `<topic>.dlq`. Messages and membership changes
// carry their conversation seq (the stream's mark, ItemSequence), which lets
// the post-commit fast path (fast-path.ts) publish ahead of this path
// without overtaking it; what this instance's fast path already published
// is not published again.
import type { DeliveredEvent, EventBus, Subscription } from "@aviary/runtime/bus/bus";
import type { EventTelemetry } from "@aviary/runtime/bus/tracing";
import { EventDecodeError, isEventOf } from "@aviary/runtime/outbox/enqueue";
import { decodedEvent, eventUuid } from "@aviary/runtime/outbox/fields";
import type { EventPayload } from "@aviary/runtime/realtime/events";
import type { ItemSequence, UserItem, UserStreamPublisher } from "@aviary/runtime/realtime/user-streams";
import {
  ChatConversationChangedSchema,
  ChatMessageDeletedSchema,
  ChatMessageEditedSchema,
  ChatMessageSentSchema,
  ChatReactionChangedSchema,
  ChatReceiptUpdatedSchema,
} from "@aviary/gen/aviary/events/v1/chat_events_pb";
import { ConversationKind } from "@aviary/gen/aviary/chat/v1/chat_pb";
import type { FastDelivery } from "./fast-path.ts";
import { memberItems } from "./member-items.ts";

/** The default consumer group (CHAT_GROUP). */
export const chatGroup = "chat-delivery";

export interface DeliverOptions {
  bus: EventBus;
  topic: string;
  groupId: string;
  streams: UserStreamPublisher;
  partitionsConcurrently?: number;
  /** The chat service's tracer: each delivery is a CONSUMER span in the event's trace. */
  telemetry?: EventTelemetry;
  /** This process's fast path, whose publishes need not be repeated. */
  fast?: FastDelivery;
}

export function consumeChatEvents(options: DeliverOptions): Promise<Subscription> {
  return options.bus.subscribe({
    groupId: options.groupId,
    topics: [options.topic],
    // A stream store outage is an infrastructure failure, which the bus
    // waits out for as long as it lasts and never dead-letters (a parked
    // event would be a message some device never gets); undecodable events
    // are parked at once (bus/failures.ts).
    ...(options.partitionsConcurrently === undefined ? {} : { partitionsConcurrently: options.partitionsConcurrently }),
    ...(options.telemetry === undefined ? {} : { telemetry: options.telemetry }),
    handle: (event) => deliverChatEvents(options.streams, [event], options.fast),
    // A batch's items in one round trip: every member's items of every event, in order per member.
    handleBatch: (events) => deliverChatEvents(options.streams, events, options.fast),
  });
}

/**
 * Every recipient's item of each event, in the events' order, published at
 * once: a member's items keep that order (the port publishes a prefix of
 * them if it fails), so a conversation's events reach each device in seq
 * order. An undecodable event throws before anything is published.
 */
export async function deliverChatEvents(streams: UserStreamPublisher, events: readonly DeliveredEvent[], fast?: FastDelivery): Promise<void> {
  const items: UserItem[] = [];
  for (const event of events) {
    const delivery = recipientsAndPayload(event);
    if (delivery === undefined) continue;
    const { id, recipients, payload, sequence } = delivery;
    const published = fast?.takePublished(id);
    const userIds = [...new Set(recipients)].filter((userId) => published?.has(userId) !== true);
    if (userIds.length === 0) continue;
    items.push(...memberItems(id, userIds, payload, sequence));
  }
  await streams.publishMany(items);
}

type Delivery = { id: string; recipients: string[]; payload: EventPayload; sequence?: ItemSequence };

/** An event's place in its conversation's sequence, for the streams' marks (none for a seq of 0, which no entry has). */
function inSequence(conversationId: string, seq: bigint): { sequence?: ItemSequence } {
  return seq > 0n ? { sequence: { key: conversationId, seq: Number(seq) } } : {};
}

function recipientsAndPayload(event: DeliveredEvent): Delivery | undefined {
  if (isEventOf(ChatMessageSentSchema, event)) {
    const { id, message } = decodedEvent(ChatMessageSentSchema, event);
    const sent = required(message.message, "message", id);
    // The sender's own devices included: their other devices learn of the send.
    return { id, recipients: recipientsOf(message.memberIds, id), payload: { case: "chatMessage", value: sent }, ...inSequence(sent.conversationId, sent.seq) };
  }
  if (isEventOf(ChatConversationChangedSchema, event)) {
    const { id, message } = decodedEvent(ChatConversationChangedSchema, event);
    const conversation = required(message.conversation, "conversation", id);
    const current = conversation.members.map((m, i) => eventUuid(m.userId, `conversation.members[${i}].user_id`, id));
    // Removed members hear of their removal once, then nothing more.
    const removed = message.removedMemberIds.map((m, i) => eventUuid(m, `removed_member_ids[${i}]`, id));
    // A group's changes are entries of its sequence. A direct conversation's
    // only change is its creation, which shares seq 1 with its first message:
    // marking it would let the fast path publish seq 2 before that message.
    const ordered = conversation.kind === ConversationKind.GROUP ? inSequence(conversation.conversationId, message.seq) : {};
    return { id, recipients: [...current, ...removed], payload: { case: "chatConversation", value: conversation }, ...ordered };
  }
  if (isEventOf(ChatReceiptUpdatedSchema, event)) {
    const { id, message } = decodedEvent(ChatReceiptUpdatedSchema, event);
    const { conversationId, userId, readSeq, deliveredSeq } = message;
    return { id, recipients: recipientsOf(message.memberIds, id), payload: { case: "chatReceipt", value: { conversationId, userId, readSeq, deliveredSeq } } };
  }
  // Changes to a sent message go to the members who can see it (the event lists them).
  if (isEventOf(ChatMessageEditedSchema, event)) {
    const { id, message } = decodedEvent(ChatMessageEditedSchema, event);
    return { id, recipients: recipientsOf(message.memberIds, id), payload: { case: "chatMessageEdited", value: required(message.message, "message", id) } };
  }
  if (isEventOf(ChatMessageDeletedSchema, event)) {
    const { id, message } = decodedEvent(ChatMessageDeletedSchema, event);
    return { id, recipients: recipientsOf(message.memberIds, id), payload: { case: "chatMessageDeleted", value: required(message.message, "message", id) } };
  }
  if (isEventOf(ChatReactionChangedSchema, event)) {
    const { id, message } = decodedEvent(ChatReactionChangedSchema, event);
    return { id, recipients: recipientsOf(message.memberIds, id), payload: { case: "chatReaction", value: required(message.change, "change", id) } };
  }
  return undefined;
}

function recipientsOf(memberIds: readonly string[], eventId: string): string[] {
  return memberIds.map((m, i) => eventUuid(m, `member_ids[${i}]`, eventId));
}

function required<T>(value: T | undefined, field: string, eventId: string): T {
  if (value === undefined) throw new EventDecodeError(`event ${eventId} has no ${field}`);
  return value;
}
