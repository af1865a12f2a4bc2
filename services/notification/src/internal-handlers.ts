// NotificationInternalService: reads for other services, authorised by
// service tokens (scopes), never by a user's token. Only procedures listed in
// internalProcedures accept service tokens (see server.ts).
import type { ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { NotificationInternalService } from "@aviary/gen/aviary/notification/v1/notification_internal_pb";
import { requireServiceScope } from "@aviary/runtime/context";
import type { Database } from "@aviary/runtime/db/database";
import { exportScope, keysetRows } from "@aviary/runtime/export";
import { proceduresOf } from "@aviary/runtime/service-config";
import { kindOf } from "./domain/kinds.ts";
import { presentPreferences } from "./handlers.ts";
import { receivedNotificationsPage, type NotificationRow } from "./store/export.ts";
import { watermark } from "./store/notifications.ts";
import { loadPreferences } from "./store/preferences.ts";

/** The scope a service token needs for ExportUserNotifications (the auth service's exporter). */
export const notificationExportScope = exportScope("notification");

/** The procedures that take service tokens: all of NotificationInternalService, nothing of NotificationService. */
export const internalProcedures = proceduresOf(NotificationInternalService);

export function createNotificationInternalHandlers(deps: { database: Database }): ServiceImpl<typeof NotificationInternalService> {
  const { db } = deps.database;
  return {
    async *exportUserNotifications(request, context) {
      requireServiceScope(context, notificationExportScope);
      const userId = request.userId.toLowerCase();
      yield { item: { case: "settings", value: { preferences: presentPreferences(await loadPreferences(db, userId)), seenSeq: BigInt(await watermark(db, userId)) } } };
      for await (const row of keysetRows<NotificationRow>((after, limit) => receivedNotificationsPage(db, userId, after, limit))) {
        yield {
          item: {
            case: "notification",
            value: {
              notificationId: row.id,
              kind: kindOf(row.kind),
              actorId: row.actorId,
              postId: row.postId ?? "",
              sourceId: row.sourceId ?? "",
              seq: BigInt(row.seq),
              createdAt: timestampFromDate(row.createdAt),
            },
          },
        };
      }
    },
  };
}
