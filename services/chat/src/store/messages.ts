// Changes to a message after it was sent (edit, delete). They never take a
// sequence number: the entry keeps its place, and the lock they take is the
// entry row's, so they queue behind each other and behind reactions to the
// same message, never behind the rest of the conversation.
import { and, eq } from "drizzle-orm";
import type { Tx } from "@aviary/runtime/db/database";
import { entries, reactions } from "./schema.ts";
import type { EntryRow } from "./entries.ts";

/** The entry at (conversation, seq), locked until the transaction ends. */
export async function lockEntry(tx: Tx, conversationId: string, seq: number): Promise<EntryRow | undefined> {
  const [row] = await tx
    .select()
    .from(entries)
    .where(and(eq(entries.conversationId, conversationId), eq(entries.seq, seq)))
    .for("update");
  return row;
}

export async function setText(tx: Tx, conversationId: string, seq: number, text: string, at: Date): Promise<EntryRow> {
  const [row] = await tx
    .update(entries)
    .set({ text, editedAt: at })
    .where(and(eq(entries.conversationId, conversationId), eq(entries.seq, seq)))
    .returning();
  return row!;
}

/** The tombstone: content and reactions go, the row and its seq stay (history stays gapless). */
export async function tombstone(tx: Tx, conversationId: string, seq: number, at: Date): Promise<EntryRow> {
  await tx.delete(reactions).where(and(eq(reactions.conversationId, conversationId), eq(reactions.seq, seq)));
  const [row] = await tx
    .update(entries)
    .set({ text: null, attachments: null, deletedAt: at })
    .where(and(eq(entries.conversationId, conversationId), eq(entries.seq, seq)))
    .returning();
  return row!;
}
