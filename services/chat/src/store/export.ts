// One user's messages, page by page, for ExportUserMessages. Messages (not
// membership changes) are the entries with a client message id; deleted
// ones are tombstones without text. Keyset order is the entry's unique id.
import { and, asc, eq, gt, isNotNull, isNull } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import { entries } from "./schema.ts";

export type EntryRow = typeof entries.$inferSelect;

export function sentMessagesPage(db: Queryable, userId: string, after: EntryRow | undefined, limit: number): Promise<EntryRow[]> {
  return db
    .select()
    .from(entries)
    .where(and(eq(entries.senderId, userId), isNotNull(entries.clientMessageId), isNull(entries.deletedAt), after ? gt(entries.id, after.id) : undefined))
    .orderBy(asc(entries.id))
    .limit(limit);
}
