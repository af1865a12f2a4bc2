// GetConversation and ListConversations: conversation rows, then their
// members, the reader's unread counts and last entries, one query each for
// the whole page (never one per conversation).
import { is } from "drizzle-orm";
import { PgTransaction } from "drizzle-orm/pg-core";
import type { Conversation } from "@aviary/gen/aviary/chat/v1/chat_pb";
import type { Queryable } from "@aviary/runtime/db/database";
import type { ConversationCursor } from "../domain/page-token.ts";
import { presentConversation } from "../domain/present.ts";
import { conversationOfMember, currentMembers, type ConversationRow } from "../store/conversations.ts";
import { lastEntries, unreadCounts } from "../store/entries.ts";
import { conversationPage } from "../store/listing.ts";
import { messageKey, reactionTallies } from "../store/reactions.ts";
import { noSuchConversation } from "../domain/not-found.ts";

async function presentAll(db: Queryable, readerId: string, rows: readonly ConversationRow[]): Promise<Conversation[]> {
  const ids = rows.map((row) => row.id);
  const reads = [() => currentMembers(db, ids), () => unreadCounts(db, readerId, ids), () => lastEntries(db, readerId, ids)] as const;
  // At once on the pool's connections; one after the other in a transaction
  // (a membership change answers from inside its own), whose one connection
  // would otherwise queue them in the driver (deprecated by node-postgres).
  const [members, unread, last] = is(db, PgTransaction)
    ? [await reads[0](), await reads[1](), await reads[2]()]
    : await Promise.all([reads[0](), reads[1](), reads[2]()]);
  // The last messages' reactions: one more query for the whole page.
  const tallies = await reactionTallies(db, readerId, [...last.values()].filter((e) => e.membership === null && e.deletedAt === null));
  return rows.map((row) => {
    const lastEntry = last.get(row.id);
    return presentConversation(row, members.get(row.id) ?? [], { unread: unread.get(row.id) ?? 0, last: lastEntry, ...(lastEntry ? { lastReactions: tallies.get(messageKey(lastEntry)) ?? [] } : {}) });
  });
}

export async function getConversation(db: Queryable, readerId: string, conversationId: string): Promise<Conversation> {
  const found = await conversationOfMember(db, conversationId, readerId);
  if (!found) throw noSuchConversation(conversationId);
  const [conversation] = await presentAll(db, readerId, [found.conversation]);
  return conversation!;
}

export async function listConversations(db: Queryable, readerId: string, size: number, after: ConversationCursor | undefined): Promise<{ conversations: Conversation[]; next: ConversationCursor | undefined }> {
  const page = await conversationPage(db, readerId, size, after);
  return { conversations: await presentAll(db, readerId, page.rows), next: page.next };
}
