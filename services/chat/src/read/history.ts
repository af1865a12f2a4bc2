// ListMessages: a member's visible history (from their joined_seq on, or all
// of it in a FULL group), either way from an anchor, in reading order for
// the direction, with each message's reaction counts as the reader sees them.
import { ListMessagesRequest_Direction, type ListMessagesRequest, type Message } from "@aviary/gen/aviary/chat/v1/chat_pb";
import type { Queryable } from "@aviary/runtime/db/database";
import { pageSize } from "@aviary/runtime/pagination";
import { presentEntry } from "../domain/present.ts";
import { visibleFrom } from "../domain/visibility.ts";
import { conversationOfMember } from "../store/conversations.ts";
import { historyPage, type EntryRow } from "../store/entries.ts";
import { messageKey, reactionTallies } from "../store/reactions.ts";
import { noSuchConversation } from "../domain/not-found.ts";

export async function listMessages(db: Queryable, readerId: string, request: ListMessagesRequest): Promise<{ messages: Message[]; hasMore: boolean }> {
  const conversationId = request.conversationId.toLowerCase();
  const size = pageSize(request.pageSize, { default: 50, max: 100 });
  const found = await conversationOfMember(db, conversationId, readerId);
  if (!found) throw noSuchConversation(conversationId);
  // An anchor beyond any JS-safe number is past every entry.
  const anchorSeq = request.anchorSeq > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(request.anchorSeq);
  const page = await historyPage(db, conversationId, {
    direction: request.direction === ListMessagesRequest_Direction.AFTER ? "after" : "before",
    anchorSeq,
    fromSeq: visibleFrom(found.conversation, found.member),
    size,
  });
  return { messages: await presentWithReactions(db, readerId, page.rows), hasMore: page.hasMore };
}

/** Entries as messages, their reactions read in one query for all of them. */
export async function presentWithReactions(db: Queryable, readerId: string, rows: readonly EntryRow[]): Promise<Message[]> {
  const tallies = await reactionTallies(db, readerId, rows.filter((r) => r.membership === null && r.deletedAt === null));
  return rows.map((row) => presentEntry(row, tallies.get(messageKey(row))));
}
