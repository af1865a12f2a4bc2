// Conversations and their members. The conversation row is the lock every
// write of its sequence takes (appendEntry in entries.ts).
import { and, asc, eq, inArray, isNull, sql } from "drizzle-orm";
import type { Queryable, Tx } from "@aviary/runtime/db/database";
import type { Visibility } from "../domain/visibility.ts";
import { conversations, members } from "./schema.ts";

export type ConversationRow = typeof conversations.$inferSelect;
export type MemberRow = typeof members.$inferSelect;
export type Role = "owner" | "admin" | "member";

/** The conversation, if `userId` is a current member of it (anything else is "not found" for them). */
export async function conversationOfMember(db: Queryable, conversationId: string, userId: string): Promise<{ conversation: ConversationRow; member: MemberRow } | undefined> {
  const [row] = await db
    .select({ conversation: conversations, member: members })
    .from(members)
    .innerJoin(conversations, eq(conversations.id, members.conversationId))
    .where(and(eq(members.conversationId, conversationId), eq(members.userId, userId), isNull(members.leftAt)))
    .limit(1);
  return row;
}

/** The same, locking the member row first (MarkRead: concurrent marks of one member apply one after the other). */
export async function lockMember(tx: Tx, conversationId: string, userId: string): Promise<{ conversation: ConversationRow; member: MemberRow } | undefined> {
  const [member] = await tx
    .select()
    .from(members)
    .where(and(eq(members.conversationId, conversationId), eq(members.userId, userId), isNull(members.leftAt)))
    .for("update");
  if (!member) return undefined;
  // Read after the lock, so last_seq is at least what any send of this member committed.
  const [conversation] = await tx.select().from(conversations).where(eq(conversations.id, conversationId));
  return conversation ? { conversation, member } : undefined;
}

/** Current members of each conversation, by conversation id. */
export async function currentMembers(db: Queryable, conversationIds: readonly string[]): Promise<Map<string, MemberRow[]>> {
  const out = new Map<string, MemberRow[]>(conversationIds.map((id) => [id, []]));
  if (conversationIds.length === 0) return out;
  const rows = await db
    .select()
    .from(members)
    .where(and(inArray(members.conversationId, [...conversationIds]), isNull(members.leftAt)))
    .orderBy(asc(members.joinedSeq), asc(members.userId));
  for (const row of rows) out.get(row.conversationId)?.push(row);
  return out;
}

export interface NewConversation {
  id: string;
  kind: "direct" | "group";
  title: string | null;
  directKey: string | null;
  /** Groups: the picture and who sees which history (the column defaults otherwise). */
  avatarMediaId?: string | null;
  historyVisibility?: Visibility;
  at: Date;
}

/** Inserts a group (no conflict possible: its id is new). */
export async function insertGroup(tx: Tx, conversation: NewConversation): Promise<ConversationRow> {
  const [row] = await tx.insert(conversations).values({ ...conversation, createdAt: conversation.at, lastActivityAt: conversation.at }).returning();
  return row!;
}

/**
 * The pair's direct conversation, created when missing. Two first messages
 * of the pair at once: the unique direct_key makes the second insert wait
 * for the first and do nothing, and the select after it sees the winner.
 */
export async function ensureDirect(tx: Tx, conversation: NewConversation & { directKey: string }): Promise<{ conversation: ConversationRow; created: boolean }> {
  const [inserted] = await tx
    .insert(conversations)
    .values({ ...conversation, createdAt: conversation.at, lastActivityAt: conversation.at })
    .onConflictDoNothing({ target: conversations.directKey, where: sql`${conversations.directKey} is not null` })
    .returning();
  if (inserted) return { conversation: inserted, created: true };
  const [existing] = await tx.select().from(conversations).where(eq(conversations.directKey, conversation.directKey));
  if (!existing) throw new Error(`direct conversation ${conversation.directKey} vanished`);
  return { conversation: existing, created: false };
}

export async function insertMembers(tx: Tx, conversationId: string, rows: ReadonlyArray<{ userId: string; role: Role; joinedSeq: number; readSeq?: number }>): Promise<void> {
  if (rows.length === 0) return;
  await tx.insert(members).values(
    rows.map((row) => ({ conversationId, userId: row.userId, role: row.role, joinedSeq: row.joinedSeq, readSeq: row.readSeq ?? 0, deliveredSeq: row.readSeq ?? 0 })),
  );
}

/** Moves a member's watermarks forward to at least the given values (never back). */
export async function raiseWatermarks(tx: Tx, conversationId: string, userId: string, readSeq: number, deliveredSeq: number): Promise<MemberRow> {
  const [row] = await tx
    .update(members)
    .set({ readSeq: sql`greatest(${members.readSeq}, ${readSeq})`, deliveredSeq: sql`greatest(${members.deliveredSeq}, ${deliveredSeq}, ${readSeq})` })
    .where(and(eq(members.conversationId, conversationId), eq(members.userId, userId)))
    .returning();
  if (!row) throw new Error(`member ${userId} of ${conversationId} vanished`);
  return row;
}

/**
 * Locks the conversation row (the lock every write of its sequence takes)
 * and returns it with the caller's current membership, or undefined when
 * the caller is not a current member. Membership changes check their rules
 * after this, so they see what every concurrent writer committed.
 */
export async function lockConversationOfMember(tx: Tx, conversationId: string, userId: string): Promise<{ conversation: ConversationRow; members: MemberRow[]; member: MemberRow } | undefined> {
  const [conversation] = await tx.select().from(conversations).where(eq(conversations.id, conversationId)).for("update");
  if (!conversation) return undefined;
  const current = (await currentMembers(tx, [conversationId])).get(conversationId) ?? [];
  const member = current.find((m) => m.userId === userId);
  return member ? { conversation, members: current, member } : undefined;
}

/** Adds members at `joinedSeq`; a user who left before rejoins as a member (their row is reused). */
export async function joinMembers(tx: Tx, conversationId: string, userIds: readonly string[], joinedSeq: number): Promise<void> {
  if (userIds.length === 0) return;
  await tx
    .insert(members)
    .values(userIds.map((userId) => ({ conversationId, userId, role: "member", joinedSeq })))
    .onConflictDoUpdate({ target: [members.conversationId, members.userId], set: { role: "member", joinedSeq, leftAt: null } });
}

/** Members stop being members (the row stays, with left_at). */
export async function markLeft(tx: Tx, conversationId: string, userIds: readonly string[], at: Date): Promise<void> {
  if (userIds.length === 0) return;
  await tx.update(members).set({ leftAt: at }).where(and(eq(members.conversationId, conversationId), inArray(members.userId, [...userIds]), isNull(members.leftAt)));
}

export async function setRoles(tx: Tx, conversationId: string, roles: ReadonlyArray<{ userId: string; role: Role }>): Promise<void> {
  for (const { userId, role } of roles) {
    await tx.update(members).set({ role }).where(and(eq(members.conversationId, conversationId), eq(members.userId, userId)));
  }
}

/** A group's settings (UpdateConversation): only the ones given change. */
export async function setGroupSettings(tx: Tx, conversationId: string, settings: { title?: string; avatarMediaId?: string | null; historyVisibility?: Visibility }): Promise<void> {
  if (Object.keys(settings).length === 0) return;
  await tx.update(conversations).set(settings).where(eq(conversations.id, conversationId));
}
