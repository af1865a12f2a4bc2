// Rows → the aviary.moderation.v1 messages.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { RemovalSchema, ReportSchema, ReportStatus, SuspensionSchema, type Removal, type Report, type Suspension } from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import type { RemovalRow, SuspensionRow } from "../store/actions.ts";
import type { ReportRow, ReportStatusName } from "../store/reports.ts";
import { contentTargetMessage, targetMessage, type ContentKindName, type TargetKindName } from "./targets.ts";

export const statusNames: Record<Exclude<ReportStatus, ReportStatus.UNSPECIFIED>, ReportStatusName> = {
  [ReportStatus.OPEN]: "open",
  [ReportStatus.ACTIONED]: "actioned",
  [ReportStatus.DISMISSED]: "dismissed",
};

const statuses: Record<ReportStatusName, ReportStatus> = { open: ReportStatus.OPEN, actioned: ReportStatus.ACTIONED, dismissed: ReportStatus.DISMISSED };

export function presentReport(row: ReportRow): Report {
  return create(ReportSchema, {
    reportId: row.id,
    reporterId: row.reporterId,
    target: targetMessage({ kind: row.targetKind as TargetKindName, id: row.targetId }),
    reason: row.reason,
    note: row.note,
    status: statuses[row.status as ReportStatusName],
    createdAt: timestampFromDate(row.createdAt),
    resolution: row.resolution ?? 0,
    resolvedBy: row.resolvedBy ?? "",
    resolutionNote: row.resolutionNote ?? "",
    ...(row.resolvedAt === null ? {} : { resolvedAt: timestampFromDate(row.resolvedAt) }),
  });
}

export function presentSuspension(userId: string, row: SuspensionRow | undefined): Suspension {
  if (row === undefined) return create(SuspensionSchema, { userId, suspended: false });
  return create(SuspensionSchema, {
    userId: row.userId,
    suspended: row.suspended,
    reason: row.reason,
    moderatorId: row.moderatorId,
    reportId: row.reportId ?? "",
    changedAt: timestampFromDate(row.changedAt),
  });
}

export function presentRemoval(row: RemovalRow): Removal {
  return create(RemovalSchema, {
    target: contentTargetMessage({ kind: row.targetKind as ContentKindName, id: row.targetId }),
    removed: row.removed,
    reason: row.reason,
    moderatorId: row.moderatorId,
    reportId: row.reportId ?? "",
    changedAt: timestampFromDate(row.changedAt),
  });
}
