// The moderation decisions the post service applies in its reads (see
// schema.ts moderatedUsers / moderatedContent and events/moderation.ts).
import { sql } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import { moderatedContent, moderatedUsers } from "./schema.ts";

export type ContentKind = "post" | "comment";

export interface RemovalFact {
  reason: string;
  removedAt: Date;
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
