// A conversation's sequence: messages and membership changes share it.
import { and, asc, desc, eq, gt, gte, inArray, isNotNull, isNull, lt, ne, sql } from "drizzle-orm";
import type { Queryable, Tx } from "@aviary/runtime/db/database";
import { rowsOf } from "@aviary/runtime/db/rows";
import type { ConversationRow } from "./conversations.ts";
import { conversations, entries, members, type AttachmentRecord } from "./schema.ts";

export type EntryRow = typeof entries.$inferSelect;

export interface MembershipRecord {
  added: string[];
  removed: string[];
  /** A rename: the new title. */
  title?: string;
  /** Roles from this entry on (role changes, an owner's hand-over). */
  roles?: Array<{ userId: string; role: "owner" | "admin" | "member" }>;
  /** A new avatar ("" when it was removed); absent when it did not change. */
  avatarMediaId?: string;
  /** A new history visibility; absent when it did not change. */
  historyVisibility?: "from_join" | "full";
}

/**
 * Takes the conversation's next sequence number: the update locks the row
 * until the transaction ends, so concurrent writers of one conversation
 * number their entries one after the other, and an aborted transaction gives
 * its number back (gapless).
 */
export async function nextSeq(tx: Tx, conversationId: string, at: Date): Promise<number> {
  const row = await takeSeq(tx, conversationId, at);
  if (!row) throw new Error(`conversation ${conversationId} vanished`);
  return row.lastSeq;
}

/** nextSeq answering the conversation as it is now (`last_seq` the number taken); undefined when there is none. */
export async function takeSeq(tx: Tx, conversationId: string, at: Date): Promise<ConversationRow | undefined> {
  const [row] = await tx
    .update(conversations)
    .set({ lastSeq: sql`${conversations.lastSeq} + 1`, lastActivityAt: at })
    .where(eq(conversations.id, conversationId))
    .returning();
  return row;
}

export interface NewMessage {
  conversationId: string;
  seq: number;
  id: string;
  senderId: string;
  clientMessageId: string;
  text: string;
  replyToSeq: number | null;
  /** Null without any (checked with the media service before the transaction). */
  attachments: AttachmentRecord[] | null;
  at: Date;
}

/**
 * Inserts a message and raises its sender's read and delivered watermarks to
 * it; undefined when (sender, client_message_id) already exists (a
 * concurrent retry committed first): nothing is written, the caller rolls
 * back and returns the original.
 */
export async function insertMessage(tx: Tx, message: NewMessage): Promise<EntryRow | undefined> {
  const { at, ...values } = message;
  const row: EntryRow = { ...values, createdAt: at, membership: null, editedAt: null, deletedAt: null };
  const inserted = tx
    .insert(entries)
    .values(row)
    .onConflictDoNothing({ target: [entries.senderId, entries.clientMessageId], where: sql`${entries.clientMessageId} is not null` })
    .returning({ seq: entries.seq });
  // Sending moves the sender's own watermarks to the message, in the same
  // statement (one round trip fewer under the conversation's lock), and
  // only when the message was written.
  const raised = tx
    .update(members)
    .set({ readSeq: sql`greatest(${members.readSeq}, ${message.seq})`, deliveredSeq: sql`greatest(${members.deliveredSeq}, ${message.seq})` })
    .where(and(eq(members.conversationId, message.conversationId), eq(members.userId, message.senderId), sql`exists (select 1 from inserted)`));
  const written = rowsOf(await tx.execute(sql`with inserted as ${inserted}, raised as ${raised} select 1 from inserted`));
  // Every column is given: the row as stored, without reading it back.
  return written.length === 1 ? row : undefined;
}

export async function insertMembershipChange(tx: Tx, change: { conversationId: string; seq: number; actorId: string; membership: MembershipRecord; at: Date }): Promise<EntryRow> {
  const [row] = await tx
    .insert(entries)
    .values({ conversationId: change.conversationId, seq: change.seq, id: crypto.randomUUID(), senderId: change.actorId, membership: JSON.stringify(change.membership), createdAt: change.at })
    .returning();
  return row!;
}

/**
 * What a send looks up before anything else, in one round trip: whether the
 * sender already sent this idempotency key (then messageByClientId answers
 * it), and the kind of the target conversation when the sender is a current
 * member of it (undefined otherwise, or without a conversation id).
 */
export async function sendLookup(db: Queryable, senderId: string, clientMessageId: string, conversationId: string | undefined): Promise<{ retried: boolean; kind: string | undefined }> {
  const kind = conversationId === undefined
    ? sql`null`
    : sql`(select ${conversations.kind} from ${members} join ${conversations} on ${conversations.id} = ${members.conversationId}
           where ${members.conversationId} = ${conversationId} and ${members.userId} = ${senderId} and ${members.leftAt} is null)`;
  const [row] = rowsOf(
    await db.execute(sql`select exists (select 1 from ${entries} where ${entries.senderId} = ${senderId} and ${entries.clientMessageId} = ${clientMessageId}) as retried, ${kind} as kind`),
  );
  return { retried: row?.["retried"] === true, kind: typeof row?.["kind"] === "string" ? row["kind"] : undefined };
}

/** The sender's earlier message with this idempotency key, if any. */
export async function messageByClientId(db: Queryable, senderId: string, clientMessageId: string): Promise<EntryRow | undefined> {
  const [row] = await db
    .select()
    .from(entries)
    .where(and(eq(entries.senderId, senderId), eq(entries.clientMessageId, clientMessageId)))
    .limit(1);
  return row;
}

/** A message (not a membership change) of the conversation at `seq`, visible from `fromSeq` on. */
export async function visibleMessageAt(db: Queryable, conversationId: string, seq: number, fromSeq: number): Promise<boolean> {
  if (seq < fromSeq) return false;
  const [row] = await db
    .select({ seq: entries.seq })
    .from(entries)
    .where(and(eq(entries.conversationId, conversationId), eq(entries.seq, seq), isNotNull(entries.clientMessageId)))
    .limit(1);
  return row !== undefined;
}

/** One page of history plus whether more lies beyond it. */
export async function historyPage(
  db: Queryable,
  conversationId: string,
  options: { direction: "before" | "after"; anchorSeq: number; fromSeq: number; size: number },
): Promise<{ rows: EntryRow[]; hasMore: boolean }> {
  const visible = and(eq(entries.conversationId, conversationId), gte(entries.seq, options.fromSeq));
  const rows =
    options.direction === "before"
      ? await db
          .select()
          .from(entries)
          .where(options.anchorSeq === 0 ? visible : and(visible, lt(entries.seq, options.anchorSeq)))
          .orderBy(desc(entries.seq))
          .limit(options.size + 1)
      : await db
          .select()
          .from(entries)
          .where(and(visible, gt(entries.seq, options.anchorSeq)))
          .orderBy(asc(entries.seq))
          .limit(options.size + 1);
  return { rows: rows.slice(0, options.size), hasMore: rows.length > options.size };
}

/** Per conversation, the newest entry visible to the user (from their joined_seq on). */
export async function lastEntries(db: Queryable, userId: string, conversationIds: readonly string[]): Promise<Map<string, EntryRow>> {
  if (conversationIds.length === 0) return new Map();
  const rows = await db
    .selectDistinctOn([entries.conversationId])
    .from(entries)
    .innerJoin(members, and(eq(members.conversationId, entries.conversationId), eq(members.userId, userId)))
    .where(and(inArray(entries.conversationId, [...conversationIds]), gte(entries.seq, members.joinedSeq)))
    .orderBy(entries.conversationId, desc(entries.seq));
  return new Map(rows.map((row) => [row.entries.conversationId, row.entries]));
}

/** Joins an entry to the user's member row of its conversation. */
const readerRow = (userId: string) => and(eq(members.conversationId, entries.conversationId), eq(members.userId, userId));

/**
 * What is unread for the user (joined to their member row): messages by
 * others after their read watermark, visible to them (from joined_seq on);
 * membership changes never count, nor do deleted messages (a tombstone has
 * nothing to read). The one definition behind both ListConversations'
 * per-conversation counts and GetUnreadCount's totals, so a change to what
 * counts lands in both. Unread starts at joined_seq also in a FULL group:
 * history from before the join is there to read, not news.
 */
const unreadFor = (userId: string) =>
  and(gt(entries.seq, members.readSeq), gte(entries.seq, members.joinedSeq), ne(entries.senderId, userId), isNull(entries.membership), isNull(entries.deletedAt));

/** Per conversation, the user's unread count: messages by others after their read watermark (and visible to them). */
export async function unreadCounts(db: Queryable, userId: string, conversationIds: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>(conversationIds.map((id) => [id, 0]));
  if (conversationIds.length === 0) return out;
  const rows = await db
    .select({ conversationId: entries.conversationId, count: sql<number>`count(*)::int` })
    .from(entries)
    .innerJoin(members, readerRow(userId))
    .where(and(inArray(entries.conversationId, [...conversationIds]), unreadFor(userId)))
    .groupBy(entries.conversationId);
  for (const row of rows) out.set(row.conversationId, Number(row.count));
  return out;
}

/**
 * The user's unread totals over their current memberships, in one statement:
 * conversations with anything unread and unread messages in all (the sum of
 * what unreadCounts gives per conversation). A conversation they left counts
 * nothing.
 */
export async function unreadTotals(db: Queryable, userId: string): Promise<{ conversations: number; messages: number }> {
  const [row] = await db
    .select({ conversations: sql<number>`count(distinct ${entries.conversationId})::int`, messages: sql<number>`count(*)::int` })
    .from(entries)
    .innerJoin(members, readerRow(userId))
    .where(and(isNull(members.leftAt), unreadFor(userId)));
  return { conversations: Number(row?.conversations ?? 0), messages: Number(row?.messages ?? 0) };
}
