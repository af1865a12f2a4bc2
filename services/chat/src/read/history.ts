// ListMessages: a member's history from their joined_seq on, either way from
// an anchor, in reading order for the direction.
import { ListMessagesRequest_Direction, type ListMessagesRequest, type Message } from "@aviary/gen/aviary/chat/v1/chat_pb";
import type { Queryable } from "@aviary/runtime/db/database";
import { pageSize } from "@aviary/runtime/pagination";
import { presentEntry } from "../domain/present.ts";
import { conversationOfMember } from "../store/conversations.ts";
import { historyPage } from "../store/entries.ts";
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
    fromSeq: found.member.joinedSeq,
    size,
  });
  return { messages: page.rows.map(presentEntry), hasMore: page.hasMore };
}
