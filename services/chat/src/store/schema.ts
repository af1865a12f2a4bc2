import { sql } from "drizzle-orm";
import { bigint, index, jsonb, pgSchema, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { outboxTables } from "@aviary/runtime/outbox/tables";

/** The chat service's tables: the source of truth for conversations, members and messages. */
export const chat = pgSchema("chat");

/**
 * A conversation and its sequence. Every entry (message or membership
 * change) takes `last_seq + 1` under this row's lock, in the transaction
 * that writes it: the sequence is gapless and in commit order.
 */
export const conversations = chat.table(
  "conversations",
  {
    id: uuid("id").primaryKey(),
    /** "direct" | "group". */
    kind: text("kind").notNull(),
    /** Groups only. */
    title: text("title"),
    /** Direct only: the two user ids, sorted, joined by ":" (one conversation per pair). */
    directKey: text("direct_key"),
    /** Groups only: the picture (a media id the media service confirmed as the setter's avatar upload). */
    avatarMediaId: uuid("avatar_media_id"),
    /** "from_join" (members see history from their joined_seq) | "full" (members see all of it). */
    historyVisibility: text("history_visibility").notNull().default("from_join"),
    lastSeq: bigint("last_seq", { mode: "number" }).notNull().default(0),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    lastActivityAt: timestamp("last_activity_at", { withTimezone: true }).notNull(),
  },
  (t) => [uniqueIndex("conversations_direct_key").on(t.directKey).where(sql`${t.directKey} is not null`)],
);

/** Who is in a conversation, with their receipts. A member who left keeps the row (left_at set). */
export const members = chat.table(
  "members",
  {
    conversationId: uuid("conversation_id").notNull(),
    userId: uuid("user_id").notNull(),
    /** "owner" | "admin" | "member". */
    role: text("role").notNull(),
    /** The entry that added them (direct conversations: 1, their first message): history is visible from here on. */
    joinedSeq: bigint("joined_seq", { mode: "number" }).notNull(),
    readSeq: bigint("read_seq", { mode: "number" }).notNull().default(0),
    deliveredSeq: bigint("delivered_seq", { mode: "number" }).notNull().default(0),
    leftAt: timestamp("left_at", { withTimezone: true }),
  },
  (t) => [
    primaryKey({ columns: [t.conversationId, t.userId] }),
    // A user's current conversations (ListConversations).
    index("members_user_idx").on(t.userId).where(sql`${t.leftAt} is null`),
  ],
);

/** Every entry of a conversation's sequence: messages, and membership changes (membership set, no text). */
export const entries = chat.table(
  "entries",
  {
    conversationId: uuid("conversation_id").notNull(),
    seq: bigint("seq", { mode: "number" }).notNull(),
    id: uuid("id").notNull(),
    /** Who wrote it: the sender of a message, the actor of a membership change. */
    senderId: uuid("sender_id").notNull(),
    /** The sender's idempotency key; null for membership changes. */
    clientMessageId: uuid("client_message_id"),
    text: text("text"),
    replyToSeq: bigint("reply_to_seq", { mode: "number" }),
    /** Membership changes: JSON { added: [...], removed: [...] }; null for messages. */
    membership: text("membership"),
    /**
     * Messages with media: what the media service said of each item when it
     * was sent (id, type, size), in the sender's order; null without any.
     * Kept here rather than asked again on every read: a confirmed item does
     * not change.
     */
    attachments: jsonb("attachments").$type<AttachmentRecord[]>(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    /** The last EditMessage. */
    editedAt: timestamp("edited_at", { withTimezone: true }),
    /** A tombstone: text and attachments cleared, reactions deleted, the row (and its seq) kept. */
    deletedAt: timestamp("deleted_at", { withTimezone: true }),
  },
  (t) => [
    primaryKey({ columns: [t.conversationId, t.seq] }),
    uniqueIndex("entries_id_key").on(t.id),
    // A retried send finds the original (durably, not in a cache).
    uniqueIndex("entries_sender_client_key").on(t.senderId, t.clientMessageId).where(sql`${t.clientMessageId} is not null`),
  ],
);

/** A media item sent with a message, as stored in entries.attachments. */
export interface AttachmentRecord {
  mediaId: string;
  contentType: string;
  sizeBytes: number;
}

/** One member's reaction to one message (a message takes a few per member, from a fixed set). */
export const reactions = chat.table(
  "reactions",
  {
    conversationId: uuid("conversation_id").notNull(),
    seq: bigint("seq", { mode: "number" }).notNull(),
    userId: uuid("user_id").notNull(),
    reaction: text("reaction").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  },
  // Leads with the message: a history page's counts are one range scan per message.
  (t) => [primaryKey({ columns: [t.conversationId, t.seq, t.userId, t.reaction] })],
);

export const { outboxEvents, processedEvents } = outboxTables(chat);
