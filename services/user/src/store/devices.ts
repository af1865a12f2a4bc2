import { and, asc, eq, inArray, isNull, lte, sql } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import { devices } from "./schema.ts";
import { newestFirst } from "@aviary/runtime/db/order";

export type DeviceRow = typeof devices.$inferSelect;
export type PlatformName = "ios" | "android" | "web";

/**
 * Registers a push token for a user: the same (user, token) again keeps its
 * row (and id), refreshing the platform, the session and updated_at, and
 * lifts a quarantine (the app registering again is the fix for a token push
 * delivery gave up on, e.g. after a switch of APNs environment).
 */
export async function upsertDevice(db: Queryable, input: { userId: string; platform: PlatformName; token: string; sessionId: string }, at: Date): Promise<DeviceRow> {
  const [row] = await db
    .insert(devices)
    .values({ id: crypto.randomUUID(), userId: input.userId, platform: input.platform, token: input.token, sessionId: input.sessionId, createdAt: at, updatedAt: at })
    .onConflictDoUpdate({
      target: [devices.userId, devices.token],
      set: { platform: input.platform, sessionId: input.sessionId, quarantineReason: null, quarantinedAt: null, updatedAt: at },
    })
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
 * Every device of the given users that push may use (not quarantined), in one
 * query (an index scan of devices_user_created_idx per user), grouped by user,
 * newest first within one.
 */
export function listDeliverableDevicesOfUsers(db: Queryable, userIds: readonly string[]): Promise<DeviceRow[]> {
  if (userIds.length === 0) return Promise.resolve([]);
  return db
    .select()
    .from(devices)
    .where(and(inArray(devices.userId, [...userIds]), isNull(devices.quarantinedAt)))
    .orderBy(asc(devices.userId), newestFirst(devices.createdAt), newestFirst(devices.id));
}

/**
 * Deletes a device whose token the push provider said was gone at
 * `goneSince`, unless it was registered again after that (updated_at is the
 * last registration): the new registration may carry a token that works
 * again, and the provider's answer was about the older one. False when
 * nothing was deleted.
 */
export async function retireDevice(db: Queryable, deviceId: string, goneSince: Date): Promise<boolean> {
  const rows = await db
    .delete(devices)
    .where(and(eq(devices.id, deviceId), lte(devices.updatedAt, goneSince)))
    .returning({ id: devices.id });
  return rows.length > 0;
}

/**
 * Takes a device out of push delivery with the provider's reason. A second
 * quarantine replaces the reason but keeps the first time (how long the
 * device has been out). updated_at stays the last registration, so
 * quarantining never saves a device from RetireDevice. False when there is no
 * such device.
 */
export async function quarantineDevice(db: Queryable, deviceId: string, reason: string, at: Date): Promise<boolean> {
  const rows = await db
    .update(devices)
    .set({ quarantineReason: reason, quarantinedAt: sql`coalesce(${devices.quarantinedAt}, ${at.toISOString()}::timestamptz)` })
    .where(eq(devices.id, deviceId))
    .returning({ id: devices.id });
  return rows.length > 0;
}
