// ModerationInternalService: reads for other services, authorised by service
// tokens (scopes), never by a user's token. Only procedures listed in
// internalProcedures accept service tokens (see server.ts).
import type { ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ModerationInternalService } from "@aviary/gen/aviary/moderation/v1/moderation_internal_pb";
import { requireServiceScope } from "@aviary/runtime/context";
import type { Database } from "@aviary/runtime/db/database";
import { exportScope, keysetRows } from "@aviary/runtime/export";
import { proceduresOf } from "@aviary/runtime/service-config";
import { presentReport } from "./domain/present.ts";
import { findSuspension } from "./store/actions.ts";
import { filedReportsPage } from "./store/export.ts";
import type { ReportRow } from "./store/reports.ts";

/** The scope a service token needs for ExportUserReports (the auth service's exporter). */
export const moderationExportScope = exportScope("moderation");

/** The procedures that take service tokens: all of ModerationInternalService, nothing of ModerationService. */
export const internalProcedures = proceduresOf(ModerationInternalService);

export function createModerationInternalHandlers(deps: { database: Database }): ServiceImpl<typeof ModerationInternalService> {
  const { db } = deps.database;
  return {
    async *exportUserReports(request, context) {
      requireServiceScope(context, moderationExportScope);
      const userId = request.userId.toLowerCase();
      for await (const row of keysetRows<ReportRow>((after, limit) => filedReportsPage(db, userId, after, limit))) {
        // What the reporter may know of their report: never who resolved it, how, or the moderator's note.
        const { reportId, target, reason, note, status, createdAt, resolvedAt } = presentReport(row);
        yield { item: { case: "report", value: { reportId, target, reason, note, status, createdAt, resolvedAt } } };
      }
      const suspension = await findSuspension(db, userId);
      if (suspension !== undefined) {
        // Not the moderator nor the report it came from: that would name someone who reported them.
        yield { item: { case: "suspension", value: { suspended: suspension.suspended, reason: suspension.reason, changedAt: timestampFromDate(suspension.changedAt) } } };
      }
    },
  };
}
