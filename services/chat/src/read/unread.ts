// GetUnreadCount: the caller's unread summary (a chat tab's badge), from one
// statement over their current memberships. It counts exactly what
// ListConversations shows per conversation (the store's one definition of
// unread), so the totals always equal the sum over the caller's list.
import type { GetUnreadCountResponse } from "@aviary/gen/aviary/chat/v1/chat_pb";
import type { Queryable } from "@aviary/runtime/db/database";
import { unreadTotals } from "../store/entries.ts";

export async function getUnreadCount(db: Queryable, readerId: string): Promise<Pick<GetUnreadCountResponse, "unreadConversations" | "unreadMessages">> {
  const totals = await unreadTotals(db, readerId);
  return { unreadConversations: BigInt(totals.conversations), unreadMessages: BigInt(totals.messages) };
}
