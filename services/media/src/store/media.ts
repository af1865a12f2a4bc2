import { and, asc, eq, gt, inArray, lt, sql } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import { mediaItems } from "./schema.ts";

export type MediaRow = typeof mediaItems.$inferSelect;
export type NewMediaRow = typeof mediaItems.$inferInsert;

export async function insertPendingMedia(db: Queryable, row: NewMediaRow): Promise<void> {
  await db.insert(mediaItems).values({ ...row, status: "pending" });
}

export async function findMedia(db: Queryable, id: string): Promise<MediaRow | undefined> {
  const rows = await db.select().from(mediaItems).where(eq(mediaItems.id, id)).limit(1);
  return rows[0];
}

export async function findReadyMedia(db: Queryable, ids: readonly string[]): Promise<MediaRow[]> {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(mediaItems)
    .where(and(inArray(mediaItems.id, [...ids]), eq(mediaItems.status, "ready")));
}

/**
 * Makes a pending, unexpired item ready. The database clock decides expiry for
 * both this and the sweeper, so an item is either confirmed or swept, never
 * both; undefined when it was not pending or has expired.
 */
export async function markReady(
  db: Queryable,
  id: string,
  found: { contentType: string; sizeBytes: number },
): Promise<MediaRow | undefined> {
  const rows = await db
    .update(mediaItems)
    .set({ status: "ready", contentType: found.contentType, sizeBytes: found.sizeBytes, confirmedAt: sql`now()`, expiresAt: null })
    .where(and(eq(mediaItems.id, id), eq(mediaItems.status, "pending"), gt(mediaItems.expiresAt, sql`now()`)))
    .returning();
  return rows[0];
}

export function isExpired(row: MediaRow, at: Date): boolean {
  return row.status === "pending" && row.expiresAt !== null && row.expiresAt.getTime() <= at.getTime();
}

/** Up to `limit` pending items whose time is up, oldest first. */
export async function expiredPendingMedia(db: Queryable, limit: number): Promise<Array<{ id: string; objectKey: string }>> {
  return db
    .select({ id: mediaItems.id, objectKey: mediaItems.objectKey })
    .from(mediaItems)
    .where(and(eq(mediaItems.status, "pending"), lt(mediaItems.expiresAt, sql`now()`)))
    .orderBy(mediaItems.expiresAt)
    .limit(limit);
}

/** Deletes the given items if they are still pending and expired; returns how many went. */
export async function deleteExpiredPending(db: Queryable, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const rows = await db
    .delete(mediaItems)
    .where(and(inArray(mediaItems.id, [...ids]), eq(mediaItems.status, "pending"), lt(mediaItems.expiresAt, sql`now()`)))
    .returning({ id: mediaItems.id });
  return rows.length;
}

/** Every item of an owner (any status), for purging a deleted account. */
export async function mediaOfOwner(db: Queryable, ownerId: string): Promise<Array<{ id: string; objectKey: string }>> {
  return db.select({ id: mediaItems.id, objectKey: mediaItems.objectKey }).from(mediaItems).where(eq(mediaItems.ownerId, ownerId));
}

export async function deleteMediaRows(db: Queryable, ids: readonly string[]): Promise<void> {
  if (ids.length > 0) await db.delete(mediaItems).where(inArray(mediaItems.id, [...ids]));
}

/** One page of an owner's confirmed uploads by id, for ExportUserMedia (pending ones are not the user's data yet). */
export function readyMediaOfOwnerPage(db: Queryable, ownerId: string, after: MediaRow | undefined, limit: number): Promise<MediaRow[]> {
  return db
    .select()
    .from(mediaItems)
    .where(and(eq(mediaItems.ownerId, ownerId), eq(mediaItems.status, "ready"), after ? gt(mediaItems.id, after.id) : undefined))
    .orderBy(asc(mediaItems.id))
    .limit(limit);
}
