import { and, asc, eq, isNull, lte } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import { accountDeletions, accountSuspensions, sessions, userRoles, users } from "./schema.ts";

export type AccountDeletionRow = typeof accountDeletions.$inferSelect;

/** The account's pending deletion (not a tombstone). */
export async function findPendingDeletion(db: Queryable, userId: string): Promise<AccountDeletionRow | undefined> {
  const rows = await db
    .select()
    .from(accountDeletions)
    .where(and(eq(accountDeletions.userId, userId), isNull(accountDeletions.purgedAt)))
    .limit(1);
  return rows[0];
}

/** Schedules a deletion; undefined when one is already pending (the primary key decides, not a prior read). */
export async function insertDeletion(db: Queryable, deletion: { userId: string; requestedAt: Date; purgeAt: Date }): Promise<AccountDeletionRow | undefined> {
  const rows = await db.insert(accountDeletions).values(deletion).onConflictDoNothing().returning();
  return rows[0];
}

/** Drops a pending deletion; true when there was one. */
export async function cancelDeletion(db: Queryable, userId: string): Promise<boolean> {
  const rows = await db
    .delete(accountDeletions)
    .where(and(eq(accountDeletions.userId, userId), isNull(accountDeletions.purgedAt)))
    .returning({ userId: accountDeletions.userId });
  return rows.length > 0;
}

/**
 * Locks up to `limit` deletions due at `now`, skipping rows another instance
 * holds: each due deletion is purged by one instance, once.
 */
export async function lockDueDeletions(db: Queryable, now: Date, limit: number): Promise<AccountDeletionRow[]> {
  return db
    .select()
    .from(accountDeletions)
    .where(and(isNull(accountDeletions.purgedAt), lte(accountDeletions.purgeAt, now)))
    .orderBy(asc(accountDeletions.purgeAt))
    .limit(limit)
    .for("update", { skipLocked: true });
}

/**
 * Removes the account's credentials (sessions, refresh tokens and second
 * factors go with it by cascade), its roles and suspension record, takes its
 * id off the roles it granted others (they keep the role: the grant stands,
 * its granter is gone), and turns the deletion into its tombstone. Data
 * exports are the exporter role's to remove (it consumes AccountDeleted and
 * owns their archives). Answers the ids of the sessions removed, for the denylist.
 */
export async function purgeAccount(db: Queryable, userId: string, at: Date): Promise<string[]> {
  const ended = await db.select({ id: sessions.id }).from(sessions).where(eq(sessions.userId, userId));
  await db.delete(userRoles).where(eq(userRoles.userId, userId));
  await db.update(userRoles).set({ grantedBy: null }).where(eq(userRoles.grantedBy, userId));
  await db.delete(accountSuspensions).where(eq(accountSuspensions.userId, userId));
  await db.delete(users).where(eq(users.id, userId));
  await db.update(accountDeletions).set({ purgedAt: at }).where(eq(accountDeletions.userId, userId));
  return ended.map((row) => row.id);
}
