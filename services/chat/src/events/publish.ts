// The chat service's events, written to the outbox in the transaction (or the
// one statement) of the change they describe (the relay publishes them; nothing is dual-written).
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import type { Queryable, Tx } from "@aviary/runtime/db/database";
import type { SQL, SQLWrapper } from "drizzle-orm";
import { enqueueEvent, outboxInsert, outboxPlaceholderValues, relayWakeUp } from "@aviary/runtime/outbox/enqueue";
import type { ConversationKind, Conversation, Message, ReactionChange } from "@aviary/gen/aviary/chat/v1/chat_pb";
import {
  ChatConversationChangedSchema,
  ChatMessageDeletedSchema,
  ChatMessageEditedSchema,
  ChatMessageSentSchema,
  ChatReactionChangedSchema,
  ChatReceiptUpdatedSchema,
} from "@aviary/gen/aviary/events/v1/chat_events_pb";
import { outboxEvents } from "../store/schema.ts";

/** The default topic (CHAT_EVENTS_TOPIC), keyed by conversation id: a conversation's events stay in order. */
export const chatEventsTopic = "aviary.chat.events";

/** An event's outbox row, for a statement of the caller's: as an insert with the relay's wake-up, or as the values of a prepared one. */
export interface OutboxWrite {
  /** The event's id, fixed when the write is made (the fast path derives its item ids from it, as the consumer does). */
  eventId: string;
  /** The row's insert (outboxInsert). */
  insert(): SQLWrapper;
  wakeUp: SQL;
  /** The row as the placeholder values of the runtime's outboxInsertWhere. */
  placeholderValues(): Record<string, unknown>;
}

export type MessageSent = { message: Message; memberIds: string[]; kind: ConversationKind; title: string };

export interface ChatEvents {
  /** Not run: folded into the statement that inserts the message (store/entries.ts sendInOneStatement, insertMessage), which picks one of its inserts. */
  messageSent(db: Queryable, event: MessageSent): OutboxWrite;
  conversationChanged(tx: Tx, event: { conversation: Conversation; seq: number; removedMemberIds?: string[] }): Promise<void>;
  receiptUpdated(tx: Tx, event: { conversationId: string; userId: string; readSeq: number; deliveredSeq: number; memberIds: string[] }): Promise<void>;
  /** `memberIds`: the members who can see the message (for these three). */
  messageEdited(tx: Tx, event: { message: Message; memberIds: string[] }): Promise<void>;
  messageDeleted(tx: Tx, event: { message: Message; memberIds: string[] }): Promise<void>;
  reactionChanged(tx: Tx, event: { change: ReactionChange; memberIds: string[] }): Promise<void>;
}

export function chatEvents(topic: string): ChatEvents {
  const tables = { outboxEvents };
  return {
    messageSent: (db, event) => {
      const id = randomUUID();
      const input = () => ({ id, topic, key: event.message.conversationId, schema: ChatMessageSentSchema, message: create(ChatMessageSentSchema, event) });
      return { eventId: id, insert: () => outboxInsert(db, tables, input()), wakeUp: relayWakeUp(tables), placeholderValues: () => outboxPlaceholderValues(input()) };
    },
    conversationChanged: (tx, event) =>
      enqueueEvent(tx, tables, {
        topic,
        key: event.conversation.conversationId,
        schema: ChatConversationChangedSchema,
        message: create(ChatConversationChangedSchema, { conversation: event.conversation, seq: BigInt(event.seq), removedMemberIds: event.removedMemberIds ?? [] }),
      }),
    receiptUpdated: (tx, event) =>
      enqueueEvent(tx, tables, {
        topic,
        key: event.conversationId,
        schema: ChatReceiptUpdatedSchema,
        message: create(ChatReceiptUpdatedSchema, { ...event, readSeq: BigInt(event.readSeq), deliveredSeq: BigInt(event.deliveredSeq) }),
      }),
    messageEdited: (tx, event) =>
      enqueueEvent(tx, tables, { topic, key: event.message.conversationId, schema: ChatMessageEditedSchema, message: create(ChatMessageEditedSchema, event) }),
    messageDeleted: (tx, event) =>
      enqueueEvent(tx, tables, { topic, key: event.message.conversationId, schema: ChatMessageDeletedSchema, message: create(ChatMessageDeletedSchema, event) }),
    reactionChanged: (tx, event) =>
      enqueueEvent(tx, tables, { topic, key: event.change.conversationId, schema: ChatReactionChangedSchema, message: create(ChatReactionChangedSchema, event) }),
  };
}
