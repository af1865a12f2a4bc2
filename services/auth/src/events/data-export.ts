// The request to build a data export: an outbox event in the same
// transaction as the export's row, on the auth service's own export topic
// (never the public auth topic other services read). The exporter role
// (export/worker.ts) picks it up, so RequestDataExport never waits for the build.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Tx } from "@aviary/runtime/db/database";
import { enqueueEvent } from "@aviary/runtime/outbox/enqueue";
import { DataExportRequestedSchema } from "@aviary/gen/aviary/events/v1/auth_events_pb";
import { outboxEvents } from "../store/schema.ts";

/** The default export topic (AUTH_EXPORT_TOPIC). */
export const dataExportsTopic = "aviary.auth.data-exports";

export function requestDataExportBuild(tx: Tx, topic: string, request: { exportId: string; userId: string; requestedAt: Date }): Promise<void> {
  return enqueueEvent(tx, { outboxEvents }, {
    topic,
    key: request.userId,
    schema: DataExportRequestedSchema,
    message: create(DataExportRequestedSchema, { exportId: request.exportId, userId: request.userId, requestedAt: timestampFromDate(request.requestedAt) }),
  });
}
