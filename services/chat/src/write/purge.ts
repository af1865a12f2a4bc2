// A deleted account in chat (AccountDeleted): its messages become tombstones
// that keep their place in the sequence, with no content and no sender; it
// leaves every conversation it was in (a group it owned passes to its heir,
// as when an owner leaves); its reactions go.
import { and, eq, inArray, isNotNull, like, sql } from "drizzle-orm";
import type { Tx } from "@aviary/runtime/db/database";
import { DELETED_ACCOUNT_ID } from "@aviary/runtime/bus/account-deletions";
import { conversations, entries, members, reactions } from "../store/schema.ts";
import { currentMembers, setRoles } from "../store/conversations.ts";
import { heirOf } from "./members.ts";

/** Who a deleted account's entries say wrote them (clients show a deleted account). */
export const DELETED_USER_ID = DELETED_ACCOUNT_ID;

/**
 * Purges the user from chat, in one transaction. Each step looks for rows
 * still naming the user, so applying it again finds none and changes nothing.
 * The id is also scrubbed from the text the rows carry it in: direct keys
 * ("a:b") and membership changes ({ added: [...], removed: [...] }).
 */
export async function purgeUserChat(tx: Tx, userId: string, at: Date): Promise<void> {
  await tx.delete(reactions).where(eq(reactions.userId, userId));
  await tx
    .update(entries)
    .set({ text: null, attachments: null, clientMessageId: null, deletedAt: sql`coalesce(${entries.deletedAt}, ${at.toISOString()}::timestamptz)` })
    .where(and(eq(entries.senderId, userId), isNotNull(entries.clientMessageId)));
  await tx.update(entries).set({ senderId: DELETED_USER_ID }).where(eq(entries.senderId, userId));
  await tx
    .update(entries)
    .set({ membership: sql`replace(${entries.membership}, ${userId}, ${DELETED_USER_ID})` })
    .where(like(entries.membership, `%${userId}%`));

  const left = await tx.delete(members).where(eq(members.userId, userId)).returning({ conversationId: members.conversationId, role: members.role });
  // A group that lost its owner gets the heir an owner's leaving would name.
  const owned = left.filter((row) => row.role === "owner").map((row) => row.conversationId);
  for (const [conversationId, remaining] of await currentMembers(tx, owned)) {
    const heir = heirOf(remaining);
    if (heir !== undefined) await setRoles(tx, conversationId, [{ userId: heir.userId, role: "owner" }]);
  }
  // The direct conversations stay for the other member (the tombstones in them), but no longer name the pair.
  const ids = left.map((row) => row.conversationId);
  if (ids.length > 0) {
    await tx
      .update(conversations)
      .set({ directKey: null })
      .where(and(inArray(conversations.id, ids), like(conversations.directKey, `%${userId}%`)));
  }
}
