// A conversation's sequence: messages and membership changes share it.
import { and, asc, desc, eq, getTableColumns, gt, gte, inArray, isNotNull, isNull, lt, ne, sql } from "drizzle-orm";
import type { Db, Queryable, Tx } from "@aviary/runtime/db/database";
import { perDatabase, preparedSql } from "@aviary/runtime/db/prepared";
import { outboxInsertWhere, relayWakeUp } from "@aviary/runtime/outbox/enqueue";
import { databaseErrorOf } from "@aviary/runtime/db/errors";
import { rowsOf } from "@aviary/runtime/db/rows";
import type { OutboxWrite } from "../events/publish.ts";
import { currentMembers, type ConversationRow, type MemberRow } from "./conversations.ts";
import { conversations, entries, members, outboxEvents, type AttachmentRecord } from "./schema.ts";

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

/**
 * takeSeq for a send, answering the current members too, most often in the
 * same statement: the members read there come from the statement's
 * snapshot, taken before the row lock was granted, so they only count when
 * nothing committed a change of the conversation in between. Every
 * membership change takes a number under this lock, so `last_seq` as seen
 * in the snapshot, one below the number taken, proves the members current;
 * otherwise (a concurrent write of this conversation committed while this one
 * waited) they are read again, under the lock.
 */
export async function takeSeqWithMembers(tx: Tx, conversationId: string, at: Date): Promise<{ conversation: ConversationRow; members: MemberRow[] } | undefined> {
  const [row] = await tx
    .update(conversations)
    .set({ lastSeq: sql`${conversations.lastSeq} + 1`, lastActivityAt: at })
    .where(eq(conversations.id, conversationId))
    .returning({
      ...getTableColumns(conversations),
      // Subqueries of one statement see its snapshot, never the row it updates.
      seenSeq: sql<number>`(select seen.last_seq from ${conversations} as seen where seen.id = ${conversationId})`.mapWith(Number),
      members: sql<SnapshotMember[] | null>`(select json_agg(json_build_object('userId', m.user_id, 'role', m.role, 'joinedSeq', m.joined_seq, 'readSeq', m.read_seq, 'deliveredSeq', m.delivered_seq) order by m.joined_seq, m.user_id)
        from ${members} as m where m.conversation_id = ${conversationId} and m.left_at is null)`,
    });
  if (!row) return undefined;
  const { seenSeq, members: seen, ...conversation } = row;
  if (seenSeq + 1 === conversation.lastSeq) {
    return { conversation, members: (seen ?? []).map((m) => ({ ...m, conversationId, leftAt: null })) };
  }
  return { conversation, members: (await currentMembers(tx, [conversationId])).get(conversationId) ?? [] };
}

type SnapshotMember = Omit<MemberRow, "conversationId" | "leftAt">;

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

/** The entry row of a new message, every column given (insertMessage writes it as it is, without reading it back). */
export function messageRow(message: NewMessage): EntryRow {
  const { at, ...values } = message;
  return { ...values, createdAt: at, membership: null, editedAt: null, deletedAt: null };
}

/**
 * Inserts a message, raises its sender's read and delivered watermarks to it
 * and writes its event to the outbox, in one statement (one round trip
 * under the conversation's lock instead of three); false when (sender,
 * client_message_id) already exists (a concurrent retry committed first):
 * the caller rolls back (the outbox row with it) and returns the original.
 */
export async function insertMessage(tx: Tx, row: EntryRow, event: OutboxWrite): Promise<boolean> {
  const inserted = tx
    .insert(entries)
    .values(row)
    .onConflictDoNothing({ target: [entries.senderId, entries.clientMessageId], where: sql`${entries.clientMessageId} is not null` })
    .returning({ seq: entries.seq });
  // Only when the message was written.
  const raised = tx
    .update(members)
    .set({ readSeq: sql`greatest(${members.readSeq}, ${row.seq})`, deliveredSeq: sql`greatest(${members.deliveredSeq}, ${row.seq})` })
    .where(and(eq(members.conversationId, row.conversationId), eq(members.userId, row.senderId), sql`exists (select 1 from inserted)`));
  const written = rowsOf(await tx.execute(sql`with inserted as ${inserted}, raised as ${raised}, queued as ${event.insert()} select ${event.wakeUp}, exists (select 1 from inserted) as written`));
  return written[0]?.["written"] === true;
}

export async function insertMembershipChange(tx: Tx, change: { conversationId: string; seq: number; actorId: string; membership: MembershipRecord; at: Date }): Promise<EntryRow> {
  const [row] = await tx
    .insert(entries)
    .values({ conversationId: change.conversationId, seq: change.seq, id: crypto.randomUUID(), senderId: change.actorId, membership: JSON.stringify(change.membership), createdAt: change.at })
    .returning();
  return row!;
}

/** What sendLookup answers of a conversation the sender is a current member of, all from one snapshot. */
export interface SendSnapshot {
  kind: string;
  title: string | null;
  lastSeq: number;
  /** The current members, in joined order. */
  memberIds: string[];
}

/**
 * What a send looks up before anything else, in one round trip: whether the
 * sender already sent this idempotency key (then messageByClientId answers
 * it), and the target conversation as it is now when the sender is a
 * current member of it (undefined otherwise, or without a conversation id).
 */
export async function sendLookup(db: Db, senderId: string, clientMessageId: string, conversationId: string | undefined): Promise<{ retried: boolean; current: SendSnapshot | undefined }> {
  // Without a conversation id the joins match nothing: only `retried` is answered.
  const [row] = await sendLookupStatement(db).execute({ sender: senderId, client: clientMessageId, conversation: conversationId ?? null });
  return { retried: row?.retried === true, current: snapshotOf(row) };
}

/** The current members of conversation `c` (the alias both send statements give it), in joined order. */
const currentMemberIds = sql`(select array_agg(o.user_id::text order by o.joined_seq, o.user_id) from ${members} as o where o.conversation_id = c.id and o.left_at is null)`;

/** A snapshot from the conversation columns both send statements answer; undefined when they found none. */
function snapshotOf(row: { kind?: unknown; title?: unknown; lastSeq?: unknown; memberIds?: unknown } | undefined): SendSnapshot | undefined {
  if (typeof row?.kind !== "string" || !Array.isArray(row.memberIds)) return undefined;
  return {
    kind: row.kind,
    title: typeof row.title === "string" ? row.title : null,
    lastSeq: Number(row.lastSeq),
    memberIds: row.memberIds.filter((id): id is string => typeof id === "string"),
  };
}

/**
 * sendLookup's statement, prepared (runtime db/prepared.ts): every send runs
 * it, so drizzle builds it once and PostgreSQL parses it once per connection
 * instead of on every send.
 */
const sendLookupStatement = perDatabase((db: Db) => {
  const sender = sql.placeholder("sender");
  return db
    .select({
      retried: sql<boolean>`exists (select 1 from ${entries} where ${entries.senderId} = ${sender}::uuid and ${entries.clientMessageId} = ${sql.placeholder("client")}::uuid)`,
      kind: sql<string | null>`c.kind`,
      title: sql<string | null>`c.title`,
      lastSeq: sql<string | null>`c.last_seq::text`,
      memberIds: sql<unknown[] | null>`${currentMemberIds}`,
    })
    .from(
      sql`(select 1) as one
        left join ${members} as m on m.conversation_id = ${sql.placeholder("conversation")}::uuid and m.user_id = ${sender}::uuid and m.left_at is null
        left join ${conversations} as c on c.id = m.conversation_id`,
    )
    .prepare("chat_send_lookup");
});

/** What sendInOneStatement did: sent; or not, because the conversation moved on (then as it is now, undefined when gone); or the key exists. */
export type OneStatementSend = { outcome: "sent" } | { outcome: "moved on"; current: SendSnapshot | undefined } | { outcome: "duplicate" };

/**
 * A send in ONE autocommitted statement, no transaction: it takes the
 * number after `seen.lastSeq` (the conversation as sendLookup saw it, or as
 * this instance's last send into it left it: write/send-snapshots.ts),
 * inserts the message, raises the sender's watermarks and writes the outbox
 * row. The sequence update only matches while `last_seq` is still what was
 * seen and the current members are exactly `seen.memberIds`, so nothing (no
 * message, no membership change: each takes a number; no purge of an
 * account, which takes none) changed the conversation in between and the
 * event names its current members.
 *
 * When it does not match, nothing is written (the message's insert reads
 * its number from the update, the outbox row is written only where a
 * number was taken), and the statement answers the conversation as its
 * snapshot shows it, for another try. That snapshot can predate a write
 * that committed while this statement waited for the row lock (then it is
 * the one just tried); the next statement's snapshot is newer. "duplicate"
 * when the idempotency key exists (the unique index fails the statement).
 *
 * The message's insert runs after the row lock is granted (never holding
 * an entry's key while waiting for the lock).
 */
export async function sendInOneStatement(db: Db, row: EntryRow, seen: Pick<SendSnapshot, "lastSeq" | "memberIds">, event: OutboxWrite): Promise<OneStatementSend> {
  try {
    const [answer] = await sendStatement(db).execute({
      conversation: row.conversationId,
      expectedSeq: seen.lastSeq,
      // uuid order is the order of their lowercase text, so both sides sort alike.
      members: [...seen.memberIds].sort().join(","),
      id: row.id,
      sender: row.senderId,
      client: row.clientMessageId,
      text: row.text,
      replyTo: row.replyToSeq,
      attachments: row.attachments === null ? null : JSON.stringify(row.attachments),
      at: row.createdAt.toISOString(),
      ...event.placeholderValues(),
    });
    if (answer?.["took"] === true) return { outcome: "sent" };
    return { outcome: "moved on", current: snapshotOf(answer) };
  } catch (error) {
    const failure = databaseErrorOf(error);
    if (failure?.code === "23505" && failure.constraint === "entries_sender_client_key") return { outcome: "duplicate" };
    throw error;
  }
}

/**
 * sendInOneStatement's statement, prepared (runtime db/prepared.ts
 * preparedSql): every send runs it, so it is built once and PostgreSQL
 * parses and plans it once per connection.
 */
const sendStatement = perDatabase((db: Db) => {
  const value = (name: string) => sql.placeholder(name);
  const conversation = sql`${value("conversation")}::uuid`;
  const at = sql`${value("at")}::timestamptz`;
  const tables = { outboxEvents };
  const took = sql`exists (select 1 from taken)`;
  return preparedSql(
    db,
    "chat_send",
    sql`with taken as (
        update ${conversations} set last_seq = last_seq + 1, last_activity_at = ${at}
        where id = ${conversation} and last_seq = ${value("expectedSeq")}::bigint
          and (select string_agg(o.user_id::text, ',' order by o.user_id) from ${members} as o where o.conversation_id = ${conversation} and o.left_at is null) = ${value("members")}::text
        returning last_seq),
      inserted as (
        insert into ${entries} (conversation_id, seq, id, sender_id, client_message_id, text, reply_to_seq, attachments, created_at)
        select ${conversation}, taken.last_seq, ${value("id")}::uuid, ${value("sender")}::uuid, ${value("client")}::uuid, ${value("text")}::text, ${value("replyTo")}::bigint, ${value("attachments")}::jsonb, ${at}
        from taken returning seq),
      raised as (
        update ${members} set read_seq = greatest(read_seq, inserted.seq), delivered_seq = greatest(delivered_seq, inserted.seq)
        from inserted where conversation_id = ${conversation} and user_id = ${value("sender")}::uuid),
      queued as ${outboxInsertWhere(tables, took)}
      select ${took} as took, (select ${relayWakeUp(tables)} from taken),
        c.kind, c.title, c.last_seq::text as "lastSeq", case when not ${took} then ${currentMemberIds} end as "memberIds"
      from (select 1) as one left join ${conversations} as c on c.id = ${conversation}`,
  );
});

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
