// One user's notifications, page by page, for ExportUserNotifications. Keyset
// order is the recipient's own sequence (unique per recipient, and indexed
// with it), so each page is one index range. Removed notifications stay out.
import { and, asc, eq, gt, isNull } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import { notifications } from "./schema.ts";

export type NotificationRow = typeof notifications.$inferSelect;

export function receivedNotificationsPage(db: Queryable, userId: string, after: NotificationRow | undefined, limit: number): Promise<NotificationRow[]> {
  return db
    .select()
    .from(notifications)
    .where(and(eq(notifications.recipientId, userId), isNull(notifications.removedAt), after ? gt(notifications.seq, after.seq) : undefined))
    .orderBy(asc(notifications.seq))
    .limit(limit);
}
