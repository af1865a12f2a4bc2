// CreateReport and ResolveReport.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { invalidArgument, failedPrecondition, notFound } from "@aviary/runtime/errors";
import type { Database } from "@aviary/runtime/db/database";
import type { WindowLimiter } from "@aviary/runtime/window-limit";
import {
  ResolutionAction,
  type CreateReportRequest,
  type CreateReportResponseSchema,
  type ResolveReportRequest,
  type ResolveReportResponseSchema,
} from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import { presentReport } from "../domain/present.ts";
import { storedTarget, targetField, type ContentKindName, type StoredTarget } from "../domain/targets.ts";
import type { ModerationEvents } from "../events/publish.ts";
import { closeOpenReportsOn, closeReport, findOpenReport, findReport, insertReport, type ReportRow } from "../store/reports.ts";
import { removeContent, suspend } from "./actions.ts";

export interface ReportDeps {
  database: Database;
  events: ModerationEvents;
  limiter: WindowLimiter;
  now: () => Date;
}

/**
 * One open report per reporter and target: a repeat while it is open answers
 * that report (created = false), writes nothing and is not counted against
 * the reporter's limit, so a retried request is harmless.
 */
export async function createReport(deps: ReportDeps, reporterId: string, request: CreateReportRequest): Promise<MessageInitShape<typeof CreateReportResponseSchema>> {
  const target = storedTarget(request.target!);
  if (target.kind === "user" && target.id === reporterId) {
    throw invalidArgument([{ field: targetField("target", target), description: "you cannot report yourself", reason: "SELF_REPORT" }]);
  }
  const open = await findOpenReport(deps.database.db, reporterId, target);
  if (open !== undefined) return { report: presentReport(open), created: false };
  await deps.limiter.admit(reporterId);
  return deps.database.db.transaction(async (tx) => {
    const row: ReportRow = {
      id: crypto.randomUUID(),
      reporterId,
      targetKind: target.kind,
      targetId: target.id,
      reason: request.reason,
      note: request.note.trim(),
      status: "open",
      createdAt: deps.now(),
      resolution: null,
      resolvedBy: null,
      resolutionNote: null,
      resolvedAt: null,
    };
    const inserted = await insertReport(tx, row);
    if (inserted === undefined) {
      // A concurrent identical report won the unique index: answer it.
      const existing = await findOpenReport(tx, reporterId, target);
      if (existing !== undefined) return { report: presentReport(existing), created: false };
      throw failedPrecondition("the report could not be filed; try again");
    }
    const report = presentReport(inserted);
    await deps.events.reportCreated(tx, report);
    return { report, created: true };
  });
}

/** Checks what the action needs of the request and the report before anything is written. */
function actionPlan(report: ReportRow, request: ResolveReportRequest, moderatorId: string): { kind: "dismiss" } | { kind: "remove"; target: StoredTarget<ContentKindName> } | { kind: "suspend"; userId: string } {
  const reason = request.reason.trim();
  const target: StoredTarget = { kind: report.targetKind as StoredTarget["kind"], id: report.targetId };
  if (request.action === ResolutionAction.DISMISS) {
    if (request.userId !== "") throw invalidArgument([{ field: "user_id", description: "only for SUSPEND_USER", reason: "NOT_APPLICABLE" }]);
    return { kind: "dismiss" };
  }
  if (reason === "") throw invalidArgument([{ field: "reason", description: "is required to remove content or suspend a user", reason: "REQUIRED" }]);
  if (request.action === ResolutionAction.REMOVE_CONTENT) {
    if (target.kind === "user") throw invalidArgument([{ field: "action", description: "a user report cannot be resolved by removing content", reason: "NOT_APPLICABLE" }]);
    if (request.userId !== "") throw invalidArgument([{ field: "user_id", description: "only for SUSPEND_USER", reason: "NOT_APPLICABLE" }]);
    return { kind: "remove", target: target as StoredTarget<ContentKindName> };
  }
  const userId = target.kind === "user" ? target.id : request.userId.toLowerCase();
  if (userId === "") throw invalidArgument([{ field: "user_id", description: "is required to suspend the author of reported content", reason: "REQUIRED" }]);
  if (target.kind === "user" && request.userId !== "" && request.userId.toLowerCase() !== target.id) {
    throw invalidArgument([{ field: "user_id", description: "must be the reported user (or empty)", reason: "MISMATCH" }]);
  }
  if (userId === moderatorId) throw invalidArgument([{ field: "user_id", description: "you cannot suspend yourself", reason: "SELF_SUSPENSION" }]);
  return { kind: "suspend", userId };
}

/**
 * Closes the report, and every other open report on its target, with the
 * action, applying the action in the same transaction (a removal or
 * suspension already in force is kept as it is).
 */
export async function resolveReport(deps: ReportDeps, moderatorId: string, request: ResolveReportRequest): Promise<MessageInitShape<typeof ResolveReportResponseSchema>> {
  const reportId = request.reportId.toLowerCase();
  const found = await findReport(deps.database.db, reportId);
  if (found === undefined) throw notFound("no such report", { type: "aviary.moderation.v1.Report", name: reportId });
  const plan = actionPlan(found, request, moderatorId);
  const reason = request.reason.trim();
  return deps.database.db.transaction(async (tx) => {
    const report = (await findReport(tx, reportId, { lock: true }))!;
    if (report.status !== "open") {
      throw failedPrecondition("the report is already closed", [{ type: "REPORT_CLOSED", subject: `reports/${reportId}`, description: `closed as ${report.status}` }]);
    }
    const at = deps.now();
    const action = { moderatorId, reason, at, reportId };
    if (plan.kind === "remove") await removeContent(tx, deps.events, plan.target, action);
    if (plan.kind === "suspend") await suspend(tx, deps.events, plan.userId, action);
    const resolution = {
      status: plan.kind === "dismiss" ? "dismissed" : "actioned",
      resolution: request.action,
      resolvedBy: moderatorId,
      resolutionNote: reason,
      resolvedAt: at,
    };
    const closed = await closeReport(tx, reportId, resolution);
    const others = await closeOpenReportsOn(tx, { kind: report.targetKind as StoredTarget["kind"], id: report.targetId }, reportId, resolution);
    for (const row of [closed, ...others]) await deps.events.reportResolved(tx, presentReport(row), moderatorId);
    return { report: presentReport(closed), alsoClosed: others.length };
  });
}
