// The push ledger (schema.ts, deliveries): a device is pushed a notification
// only by whoever inserts its row first.
import { and, eq } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import { deliveries } from "./schema.ts";

export type DeliveryStatus = "sending" | "delivered" | "gone" | "quarantined" | "dead-lettered" | "skipped";
export type DeliveryRow = typeof deliveries.$inferSelect;

/**
 * Claims (notification, device) for one push, or records a skip. False when
 * a row already exists: pushed, being pushed, or decided before a restart.
 */
export async function claimDelivery(
  db: Queryable,
  row: { notificationId: string; deviceId: string; recipientId: string; platform: string; status: Extract<DeliveryStatus, "sending" | "skipped">; reason?: string },
  at: Date,
): Promise<boolean> {
  const claimed = await db
    .insert(deliveries)
    .values({ ...row, reason: row.reason ?? null, attempts: 0, createdAt: at, updatedAt: at })
    .onConflictDoNothing()
    .returning({ deviceId: deliveries.deviceId });
  return claimed.length > 0;
}

export async function finishDelivery(db: Queryable, key: { notificationId: string; deviceId: string }, outcome: { status: DeliveryStatus; attempts: number; reason?: string }, at: Date): Promise<void> {
  await db
    .update(deliveries)
    .set({ status: outcome.status, attempts: outcome.attempts, reason: outcome.reason ?? null, updatedAt: at })
    .where(and(eq(deliveries.notificationId, key.notificationId), eq(deliveries.deviceId, key.deviceId)));
}
