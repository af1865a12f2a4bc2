// The moderation decisions the post service applies in its reads (see
// schema.ts moderatedUsers / moderatedContent and events/moderation.ts).
import { and, eq, inArray, sql } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import { moderatedContent, moderatedUsers } from "./schema.ts";

export type ContentKind = "post" | "comment";

export interface RemovalFact {
  reason: string;
  removedAt: Date;
}

/** The suspended users among `userIds`. */
export async function suspendedAmong(db: Queryable, userIds: readonly string[]): Promise<Set<string>> {
  if (userIds.length === 0) return new Set();
  const rows = await db
    .select({ userId: moderatedUsers.userId })
    .from(moderatedUsers)
    .where(and(inArray(moderatedUsers.userId, [...userIds]), eq(moderatedUsers.suspended, true)));
  return new Set(rows.map((row) => row.userId));
}

/** Records a suspension change unless a newer one is stored. */
export async function applyUserModeration(db: Queryable, row: typeof moderatedUsers.$inferSelect): Promise<void> {
  await db
    .insert(moderatedUsers)
    .values(row)
    .onConflictDoUpdate({ target: moderatedUsers.userId, set: { suspended: row.suspended, changedAt: row.changedAt }, setWhere: sql`${moderatedUsers.changedAt} <= ${row.changedAt}` });
}

/** Records a removal change unless a newer one is stored. */
export async function applyContentModeration(db: Queryable, row: typeof moderatedContent.$inferSelect): Promise<void> {
  await db
    .insert(moderatedContent)
    .values(row)
    .onConflictDoUpdate({
      target: [moderatedContent.targetKind, moderatedContent.targetId],
      set: { removed: row.removed, reason: row.reason, changedAt: row.changedAt },
      setWhere: sql`${moderatedContent.changedAt} <= ${row.changedAt}`,
    });
}
