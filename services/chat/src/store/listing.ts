// The skeleton of ListConversations: the user's current memberships, most
// recent activity first, keyset-paged on (last_activity_at, id).
import { and, desc, eq, isNull, lt, or } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import type { ConversationCursor } from "../domain/page-token.ts";
import type { ConversationRow } from "./conversations.ts";
import { conversations, members } from "./schema.ts";

export async function conversationPage(db: Queryable, userId: string, size: number, after: ConversationCursor | undefined): Promise<{ rows: ConversationRow[]; next: ConversationCursor | undefined }> {
  const mine = and(eq(members.userId, userId), isNull(members.leftAt));
  const afterCursor =
    after === undefined
      ? undefined
      : or(lt(conversations.lastActivityAt, new Date(after.atMs)), and(eq(conversations.lastActivityAt, new Date(after.atMs)), lt(conversations.id, after.id)));
  const rows = await db
    .select({ conversation: conversations })
    .from(members)
    .innerJoin(conversations, eq(conversations.id, members.conversationId))
    .where(afterCursor === undefined ? mine : and(mine, afterCursor))
    .orderBy(desc(conversations.lastActivityAt), desc(conversations.id))
    .limit(size + 1);
  const page = rows.slice(0, size).map((row) => row.conversation);
  const last = page.at(-1);
  return { rows: page, next: rows.length > size && last ? { atMs: last.lastActivityAt.getTime(), id: last.id } : undefined };
}
