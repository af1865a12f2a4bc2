// Queries of data_exports (see the table's comment in schema.ts for the states).
import { and, asc, eq, gt, inArray, lt, lte, ne, or, sql } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import { newestFirst } from "@aviary/runtime/db/order";
import { dataExports, sessions } from "./schema.ts";
import type { SessionRow } from "./sessions.ts";

export type DataExportRow = typeof dataExports.$inferSelect;
export type DataExportStateName = "pending" | "building" | "ready" | "failed" | "expired";

/** Inserts a pending export; false when the user already has one in progress (the partial unique index, race-free). */
export async function insertDataExport(db: Queryable, row: { id: string; userId: string; requestedAt: Date }): Promise<boolean> {
  const rows = await db.insert(dataExports).values({ ...row, state: "pending" }).onConflictDoNothing().returning({ id: dataExports.id });
  return rows.length > 0;
}

/** The user's export still being made (at most one: a partial unique index). */
export async function inProgressExport(db: Queryable, userId: string): Promise<DataExportRow | undefined> {
  const rows = await db
    .select()
    .from(dataExports)
    .where(and(eq(dataExports.userId, userId), inArray(dataExports.state, ["pending", "building"])))
    .limit(1);
  return rows[0];
}

/** When the user last asked for an export that did not fail (the cooldown counts from it). */
export async function lastCountedRequest(db: Queryable, userId: string): Promise<Date | undefined> {
  const rows = await db
    .select({ requestedAt: dataExports.requestedAt })
    .from(dataExports)
    .where(and(eq(dataExports.userId, userId), ne(dataExports.state, "failed")))
    .orderBy(newestFirst(dataExports.requestedAt))
    .limit(1);
  return rows[0]?.requestedAt;
}

export async function findDataExport(db: Queryable, id: string): Promise<DataExportRow | undefined> {
  const rows = await db.select().from(dataExports).where(eq(dataExports.id, id)).limit(1);
  return rows[0];
}

export interface DataExportCursor {
  requestedAt: string;
  id: string;
}

/** One page of the user's exports, newest first (requested_at is written from a JS date, so the cursor is exact). */
export function listDataExports(db: Queryable, userId: string, limit: number, after?: DataExportCursor): Promise<DataExportRow[]> {
  const afterCursor =
    after === undefined
      ? undefined
      : or(
          lt(dataExports.requestedAt, new Date(after.requestedAt)),
          and(eq(dataExports.requestedAt, new Date(after.requestedAt)), lt(dataExports.id, after.id)),
        );
  return db
    .select()
    .from(dataExports)
    .where(and(eq(dataExports.userId, userId), afterCursor))
    .orderBy(newestFirst(dataExports.requestedAt), newestFirst(dataExports.id))
    .limit(limit);
}

/**
 * Takes a pending (or, after a crashed build, building) export for a build;
 * undefined when it is already finished, so a redelivered event builds nothing.
 */
export async function startBuilding(db: Queryable, id: string, at: Date): Promise<DataExportRow | undefined> {
  const rows = await db
    .update(dataExports)
    .set({ state: "building", startedAt: at })
    .where(and(eq(dataExports.id, id), inArray(dataExports.state, ["pending", "building"])))
    .returning();
  return rows[0];
}

export async function markReady(db: Queryable, id: string, archive: { objectKey: string; sizeBytes: number; readyAt: Date; expiresAt: Date }): Promise<boolean> {
  const rows = await db
    .update(dataExports)
    .set({ state: "ready", ...archive })
    .where(and(eq(dataExports.id, id), eq(dataExports.state, "building")))
    .returning({ id: dataExports.id });
  return rows.length > 0;
}

export async function markFailed(db: Queryable, id: string, reason: string): Promise<void> {
  await db
    .update(dataExports)
    .set({ state: "failed", failureReason: reason })
    .where(and(eq(dataExports.id, id), inArray(dataExports.state, ["pending", "building"])));
}

/** Ready exports past their expiry, for the sweeper (the database clock decides, as for every instance alike). */
export function expiredArchives(db: Queryable, limit: number): Promise<Array<{ id: string; objectKey: string }>> {
  return db
    .select({ id: dataExports.id, objectKey: sql<string>`${dataExports.objectKey}` })
    .from(dataExports)
    .where(and(eq(dataExports.state, "ready"), lte(dataExports.expiresAt, sql`now()`)))
    .orderBy(dataExports.expiresAt)
    .limit(limit);
}

export async function markExpired(db: Queryable, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const rows = await db
    .update(dataExports)
    .set({ state: "expired" })
    .where(and(inArray(dataExports.id, [...ids]), eq(dataExports.state, "ready")))
    .returning({ id: dataExports.id });
  return rows.length;
}

/** Every export of the user, for an account's purge (a handful per user: one a cooldown). */
export function exportsOfUser(db: Queryable, userId: string): Promise<DataExportRow[]> {
  return db.select().from(dataExports).where(eq(dataExports.userId, userId));
}

export async function deleteExports(db: Queryable, ids: readonly string[]): Promise<void> {
  if (ids.length > 0) await db.delete(dataExports).where(inArray(dataExports.id, [...ids]));
}

/** One page of every session the user has had (open, ended or expired), by id, for the export's account document. */
export function sessionsPage(db: Queryable, userId: string, after: SessionRow | undefined, limit: number): Promise<SessionRow[]> {
  return db
    .select()
    .from(sessions)
    .where(and(eq(sessions.userId, userId), after ? gt(sessions.id, after.id) : undefined))
    .orderBy(asc(sessions.id))
    .limit(limit);
}
