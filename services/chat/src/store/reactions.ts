// Members' reactions to messages, and their counts as a reader sees them
// (one query for a whole page of messages, never one per message).
import { and, eq, sql } from "drizzle-orm";
import type { Queryable, Tx } from "@aviary/runtime/db/database";
import { reactions } from "./schema.ts";

/** A message's place, the key of its reactions. */
export interface MessageKey {
  conversationId: string;
  seq: number;
}

export interface ReactionTally {
  reaction: string;
  count: number;
  /** Whether the reader is among them. */
  reacted: boolean;
}

export const messageKey = (key: MessageKey): string => `${key.conversationId}:${key.seq}`;

/** Per message (by messageKey), its reactions with counts and whether `readerId` reacted so (unordered). */
export async function reactionTallies(db: Queryable, readerId: string, keys: readonly MessageKey[]): Promise<Map<string, ReactionTally[]>> {
  const out = new Map<string, ReactionTally[]>();
  if (keys.length === 0) return out;
  const places = sql.join(
    keys.map((k) => sql`(${k.conversationId}::uuid, ${k.seq}::bigint)`),
    sql`, `,
  );
  const rows = await db
    .select({
      conversationId: reactions.conversationId,
      seq: reactions.seq,
      reaction: reactions.reaction,
      count: sql<number>`count(*)::int`,
      reacted: sql<boolean>`bool_or(${reactions.userId} = ${readerId}::uuid)`,
    })
    .from(reactions)
    .where(sql`(${reactions.conversationId}, ${reactions.seq}) in (${places})`)
    .groupBy(reactions.conversationId, reactions.seq, reactions.reaction);
  for (const row of rows) {
    const key = messageKey(row);
    const tallies = out.get(key) ?? [];
    tallies.push({ reaction: row.reaction, count: Number(row.count), reacted: row.reacted });
    out.set(key, tallies);
  }
  return out;
}

/** The reactions `userId` has on the message. */
export async function reactionsBy(tx: Tx, key: MessageKey, userId: string): Promise<string[]> {
  const rows = await tx
    .select({ reaction: reactions.reaction })
    .from(reactions)
    .where(and(eq(reactions.conversationId, key.conversationId), eq(reactions.seq, key.seq), eq(reactions.userId, userId)));
  return rows.map((r) => r.reaction);
}

export async function insertReaction(tx: Tx, key: MessageKey, userId: string, reaction: string, at: Date): Promise<void> {
  await tx.insert(reactions).values({ conversationId: key.conversationId, seq: key.seq, userId, reaction, createdAt: at });
}

/** True when there was one to take back. */
export async function deleteReaction(tx: Tx, key: MessageKey, userId: string, reaction: string): Promise<boolean> {
  const removed = await tx
    .delete(reactions)
    .where(and(eq(reactions.conversationId, key.conversationId), eq(reactions.seq, key.seq), eq(reactions.userId, userId), eq(reactions.reaction, reaction)))
    .returning({ reaction: reactions.reaction });
  return removed.length > 0;
}
