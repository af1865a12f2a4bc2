// The moderators' actions in force: suspensions and removals, one row per
// subject. A change holds the subject's lock for its transaction, so two
// moderators acting at once apply one change and the other sees it (also
// when there is no row yet to lock).
import { and, eq, sql } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import type { ContentKindName, StoredTarget } from "../domain/targets.ts";
import { removals, suspensions } from "./schema.ts";

export type SuspensionRow = typeof suspensions.$inferSelect;
export type RemovalRow = typeof removals.$inferSelect;

/** Serialises changes of one subject ("user:<id>", "post:<id>") until the transaction ends. */
export async function lockSubject(tx: Queryable, subject: string): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`moderation:${subject}`}, 0))`);
}

export async function findSuspension(db: Queryable, userId: string): Promise<SuspensionRow | undefined> {
  return (await db.select().from(suspensions).where(eq(suspensions.userId, userId)).limit(1))[0];
}

export async function writeSuspension(db: Queryable, row: SuspensionRow): Promise<SuspensionRow> {
  const { userId, ...change } = row;
  const rows = await db.insert(suspensions).values(row).onConflictDoUpdate({ target: suspensions.userId, set: change }).returning();
  return rows[0] ?? { userId, ...change };
}

export async function findRemoval(db: Queryable, target: StoredTarget<ContentKindName>): Promise<RemovalRow | undefined> {
  return (
    await db
      .select()
      .from(removals)
      .where(and(eq(removals.targetKind, target.kind), eq(removals.targetId, target.id)))
      .limit(1)
  )[0];
}

export async function writeRemoval(db: Queryable, row: RemovalRow): Promise<RemovalRow> {
  const { targetKind, targetId, ...change } = row;
  const rows = await db.insert(removals).values(row).onConflictDoUpdate({ target: [removals.targetKind, removals.targetId], set: change }).returning();
  return rows[0] ?? row;
}
