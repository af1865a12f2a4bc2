// MarkRead: watermarks only move forward and never past the newest entry;
// read implies delivered. A move is announced (ChatReceiptUpdated) in the
// transaction that makes it; a mark that moves nothing writes nothing.
import type { Member, MarkReadRequest } from "@aviary/gen/aviary/chat/v1/chat_pb";
import type { Database } from "@aviary/runtime/db/database";
import { presentMember } from "../domain/present.ts";
import type { ChatEvents } from "../events/publish.ts";
import { currentMembers, lockMember, raiseWatermarks } from "../store/conversations.ts";
import { unreadCounts } from "../store/entries.ts";
import { noSuchConversation } from "../domain/not-found.ts";

export interface ReceiptDeps {
  database: Database;
  events: ChatEvents;
}

export async function markRead(deps: ReceiptDeps, userId: string, request: MarkReadRequest): Promise<{ member: Member; unreadCount: bigint }> {
  const conversationId = request.conversationId.toLowerCase();
  const member = await deps.database.db.transaction(async (tx) => {
    const found = await lockMember(tx, conversationId, userId);
    if (!found) throw noSuchConversation(conversationId);
    const { conversation, member: before } = found;
    const read = Math.max(before.readSeq, capped(request.readSeq, conversation.lastSeq));
    const delivered = Math.max(before.deliveredSeq, capped(request.deliveredSeq, conversation.lastSeq), read);
    if (read === before.readSeq && delivered === before.deliveredSeq) return before;
    const after = await raiseWatermarks(tx, conversationId, userId, read, delivered);
    const members = (await currentMembers(tx, [conversationId])).get(conversationId) ?? [];
    await deps.events.receiptUpdated(tx, { conversationId, userId, readSeq: after.readSeq, deliveredSeq: after.deliveredSeq, memberIds: members.map((m) => m.userId) });
    return after;
  });
  const unread = (await unreadCounts(deps.database.db, userId, [conversationId])).get(conversationId) ?? 0;
  return { member: presentMember(member), unreadCount: BigInt(unread) };
}

/** A requested watermark, at most the newest sequence number (uint64 may exceed a JS number). */
function capped(requested: bigint, lastSeq: number): number {
  return requested > BigInt(lastSeq) ? lastSeq : Number(requested);
}
