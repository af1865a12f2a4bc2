import { and, eq, inArray, sql } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import { accountSuspensions, userRoles, users } from "./schema.ts";

export type RoleGrantRow = typeof userRoles.$inferSelect;

export function rolesOf(db: Queryable, userId: string): Promise<RoleGrantRow[]> {
  return db.select().from(userRoles).where(eq(userRoles.userId, userId)).orderBy(userRoles.role);
}

/** Inserts a grant; resolves to it, or undefined when the user already held the role. */
export async function insertRole(db: Queryable, grant: RoleGrantRow): Promise<RoleGrantRow | undefined> {
  const rows = await db.insert(userRoles).values(grant).onConflictDoNothing().returning();
  return rows[0];
}

export async function findRole(db: Queryable, userId: string, role: string): Promise<RoleGrantRow | undefined> {
  const rows = await db.select().from(userRoles).where(and(eq(userRoles.userId, userId), eq(userRoles.role, role))).limit(1);
  return rows[0];
}

/** Deletes a grant; resolves to whether there was one. */
export async function deleteRole(db: Queryable, userId: string, role: string): Promise<boolean> {
  const rows = await db.delete(userRoles).where(and(eq(userRoles.userId, userId), eq(userRoles.role, role))).returning({ userId: userRoles.userId });
  return rows.length > 0;
}

/** The ids of the accounts with these (lower-cased) emails. */
export async function userIdsByEmail(db: Queryable, emails: readonly string[]): Promise<string[]> {
  if (emails.length === 0) return [];
  const rows = await db.select({ id: users.id }).from(users).where(inArray(users.email, [...emails]));
  return rows.map((row) => row.id);
}

/**
 * Locks the account row for this transaction. Opening a session and applying
 * a suspension both take it, so a sign-in racing a suspension either commits
 * its session before the suspension revokes it, or sees the suspension.
 */
export async function lockAccount(db: Queryable, userId: string, mode: "share" | "update"): Promise<boolean> {
  const rows = await db.select({ id: users.id }).from(users).where(eq(users.id, userId)).for(mode);
  return rows.length > 0;
}

export type SuspensionRow = typeof accountSuspensions.$inferSelect;

export async function findSuspension(db: Queryable, userId: string): Promise<SuspensionRow | undefined> {
  const rows = await db.select().from(accountSuspensions).where(eq(accountSuspensions.userId, userId)).limit(1);
  return rows[0];
}

/** Records a suspension change unless a newer one is stored; resolves to whether it was applied. */
export async function applySuspension(db: Queryable, row: SuspensionRow): Promise<boolean> {
  const rows = await db
    .insert(accountSuspensions)
    .values(row)
    .onConflictDoUpdate({
      target: accountSuspensions.userId,
      set: { suspended: row.suspended, reason: row.reason, changedAt: row.changedAt },
      setWhere: sql`${accountSuspensions.changedAt} <= ${row.changedAt}`,
    })
    .returning({ userId: accountSuspensions.userId });
  return rows.length > 0;
}
