import { and, asc, eq, inArray, sql } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import { devices } from "./schema.ts";
import { newestFirst } from "@aviary/runtime/db/order";

export type DeviceRow = typeof devices.$inferSelect;
export type PlatformName = "ios" | "android" | "web";

/**
 * Registers a push token for a user: the same (user, token) again keeps its
 * row (and id), refreshing the platform and updated_at.
 */
export async function upsertDevice(db: Queryable, input: { userId: string; platform: PlatformName; token: string }, at: Date): Promise<DeviceRow> {
  const [row] = await db
    .insert(devices)
    .values({ id: crypto.randomUUID(), userId: input.userId, platform: input.platform, token: input.token, createdAt: at, updatedAt: at })
    .onConflictDoUpdate({ target: [devices.userId, devices.token], set: { platform: input.platform, updatedAt: at } })
    .returning();
  if (row === undefined) throw new Error("device upsert returned no row");
  return row;
}

export interface DeviceCursor {
  createdAt: string;
  id: string;
}

export function listDevices(db: Queryable, userId: string, limit: number, after?: DeviceCursor): Promise<DeviceRow[]> {
  return db
    .select()
    .from(devices)
    .where(
      and(
        eq(devices.userId, userId),
        after ? sql`(${devices.createdAt}, ${devices.id}) < (${new Date(after.createdAt).toISOString()}::timestamptz, ${after.id}::uuid)` : undefined,
      ),
    )
    .orderBy(newestFirst(devices.createdAt), newestFirst(devices.id))
    .limit(limit);
}

/** Deletes one of the user's devices; false when the user has no such device. */
export async function deleteDevice(db: Queryable, userId: string, deviceId: string): Promise<boolean> {
  const rows = await db.delete(devices).where(and(eq(devices.id, deviceId), eq(devices.userId, userId))).returning({ id: devices.id });
  return rows.length > 0;
}

/**
 * Every device of the given users in one query (an index scan of
 * devices_user_created_idx per user), grouped by user, newest first within one.
 */
export function listDevicesOfUsers(db: Queryable, userIds: readonly string[]): Promise<DeviceRow[]> {
  if (userIds.length === 0) return Promise.resolve([]);
  return db
    .select()
    .from(devices)
    .where(inArray(devices.userId, [...userIds]))
    .orderBy(asc(devices.userId), newestFirst(devices.createdAt), newestFirst(devices.id));
}
