// A conversation's sequence: messages and membership changes share it.
import { and, asc, desc, eq, gt, gte, inArray, isNotNull, isNull, lt, ne, sql } from "drizzle-orm";
import type { Queryable, Tx } from "@aviary/runtime/db/database";
import { conversations, entries, members } from "./schema.ts";

export type EntryRow = typeof entries.$inferSelect;

export interface MembershipRecord {
  added: string[];
  removed: string[];
  /** A rename: the new title. */
  title?: string;
  /** Roles from this entry on (role changes, an owner's hand-over). */
  roles?: Array<{ userId: string; role: "owner" | "admin" | "member" }>;
}

/**
 * Takes the conversation's next sequence number: the update locks the row
 * until the transaction ends, so concurrent writers of one conversation
 * number their entries one after the other, and an aborted transaction gives
 * its number back (gapless).
 */
export async function nextSeq(tx: Tx, conversationId: string, at: Date): Promise<number> {
  const [row] = await tx
    .update(conversations)
    .set({ lastSeq: sql`${conversations.lastSeq} + 1`, lastActivityAt: at })
    .where(eq(conversations.id, conversationId))
    .returning({ lastSeq: conversations.lastSeq });
  if (!row) throw new Error(`conversation ${conversationId} vanished`);
  return row.lastSeq;
}

export interface NewMessage {
  conversationId: string;
  seq: number;
  id: string;
  senderId: string;
  clientMessageId: string;
  text: string;
  replyToSeq: number | null;
  at: Date;
}

/**
 * Inserts a message; undefined when (sender, client_message_id) already
 * exists (a concurrent retry committed first): the caller rolls back and
 * returns the original.
 */
export async function insertMessage(tx: Tx, message: NewMessage): Promise<EntryRow | undefined> {
  const { at, ...values } = message;
  const [row] = await tx
    .insert(entries)
    .values({ ...values, createdAt: at })
    .onConflictDoNothing({ target: [entries.senderId, entries.clientMessageId], where: sql`${entries.clientMessageId} is not null` })
    .returning();
  return row;
}

export async function insertMembershipChange(tx: Tx, change: { conversationId: string; seq: number; actorId: string; membership: MembershipRecord; at: Date }): Promise<EntryRow> {
  const [row] = await tx
    .insert(entries)
    .values({ conversationId: change.conversationId, seq: change.seq, id: crypto.randomUUID(), senderId: change.actorId, membership: JSON.stringify(change.membership), createdAt: change.at })
    .returning();
  return row!;
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

/** Per conversation, the user's unread count: messages by others after their read watermark (and visible to them). */
export async function unreadCounts(db: Queryable, userId: string, conversationIds: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>(conversationIds.map((id) => [id, 0]));
  if (conversationIds.length === 0) return out;
  const rows = await db
    .select({ conversationId: entries.conversationId, count: sql<number>`count(*)::int` })
    .from(entries)
    .innerJoin(members, and(eq(members.conversationId, entries.conversationId), eq(members.userId, userId)))
    .where(
      and(
        inArray(entries.conversationId, [...conversationIds]),
        gt(entries.seq, members.readSeq),
        gte(entries.seq, members.joinedSeq),
        ne(entries.senderId, userId),
        isNull(entries.membership),
      ),
    )
    .groupBy(entries.conversationId);
  for (const row of rows) out.set(row.conversationId, Number(row.count));
  return out;
}
