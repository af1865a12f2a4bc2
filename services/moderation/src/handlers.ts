// The RPCs of aviary.moderation.v1.ModerationService. Who may call which is
// declared in the proto (required_role) and enforced by the runtime's auth
// interceptor before these run; each takes the caller from the verified token.
import type { ServiceImpl } from "@connectrpc/connect";
import { ReportStatus, TargetKind, type ModerationService } from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import { requirePrincipal, type HasContextValues } from "@aviary/runtime/context";
import type { Database } from "@aviary/runtime/db/database";
import { invalidArgument } from "@aviary/runtime/errors";
import { pageSize, type PageTokens } from "@aviary/runtime/pagination";
import type { WindowLimiter } from "@aviary/runtime/window-limit";
import { cursorPayload, parseCursor } from "./domain/page-token.ts";
import { presentReport, presentSuspension, statusNames } from "./domain/present.ts";
import { storedTarget, targetKindNames } from "./domain/targets.ts";
import type { ModerationEvents } from "./events/publish.ts";
import { findSuspension } from "./store/actions.ts";
import { reportPage } from "./store/reports.ts";
import { removeContent, restoreContent, suspend, unsuspend } from "./write/actions.ts";
import { createReport, resolveReport } from "./write/reports.ts";

export interface ModerationDeps {
  database: Database;
  events: ModerationEvents;
  /** Reports per reporter (MODERATION_REPORT_RATE). */
  reportLimiter: WindowLimiter;
  pageTokens: PageTokens;
  now?: () => Date;
}

/** Ids are compared as lower-case strings everywhere (Postgres prints UUIDs lower-case). */
function callerId(ctx: HasContextValues): string {
  return requirePrincipal(ctx).userId.toLowerCase();
}

function notYourself(userId: string, moderatorId: string): void {
  if (userId === moderatorId) throw invalidArgument([{ field: "user_id", description: "you cannot suspend yourself", reason: "SELF_SUSPENSION" }]);
}

export function createModerationHandlers(deps: ModerationDeps): ServiceImpl<typeof ModerationService> {
  const db = deps.database.db;
  const now = deps.now ?? (() => new Date());
  const reportDeps = { database: deps.database, events: deps.events, limiter: deps.reportLimiter, now };
  const action = (ctx: HasContextValues, reason: string) => {
    // The field rule requires a non-empty string; blank is no reason either.
    if (reason.trim() === "") throw invalidArgument([{ field: "reason", description: "must not be blank", reason: "REQUIRED" }]);
    return { moderatorId: callerId(ctx), reason: reason.trim(), at: now() };
  };

  return {
    createReport: (request, ctx) => createReport(reportDeps, callerId(ctx), request),

    async listReports(request) {
      const status = request.status === ReportStatus.UNSPECIFIED ? "open" : statusNames[request.status];
      const kind = request.targetKind === TargetKind.UNSPECIFIED ? undefined : targetKindNames[request.targetKind];
      if (status === undefined) throw invalidArgument([{ field: "status", description: "is not a report status", reason: "DEFINED_ENUM" }]);
      if (request.targetKind !== TargetKind.UNSPECIFIED && kind === undefined) {
        throw invalidArgument([{ field: "target_kind", description: "is not a target kind", reason: "DEFINED_ENUM" }]);
      }
      const filters = `${status}/${kind ?? ""}`;
      const after = request.pageToken === "" ? undefined : deps.pageTokens.decode(request.pageToken, parseCursor);
      if (after !== undefined && after.filters !== filters) {
        throw invalidArgument([{ field: "page_token", description: "was made for other filters", reason: "INVALID_PAGE_TOKEN" }]);
      }
      const page = await reportPage(db, { status, kind }, pageSize(request.pageSize, { default: 20, max: 100 }), after);
      return {
        reports: page.rows.map(presentReport),
        nextPageToken: page.next === undefined ? "" : deps.pageTokens.encode(cursorPayload({ ...page.next, filters })),
      };
    },

    resolveReport: (request, ctx) => resolveReport(reportDeps, callerId(ctx), request),

    async suspendUser(request, ctx) {
      const userId = request.userId.toLowerCase();
      notYourself(userId, callerId(ctx));
      return { suspension: await db.transaction((tx) => suspend(tx, deps.events, userId, action(ctx, request.reason))) };
    },

    async unsuspendUser(request, ctx) {
      const userId = request.userId.toLowerCase();
      return { suspension: await db.transaction((tx) => unsuspend(tx, deps.events, userId, action(ctx, request.reason))) };
    },

    async getSuspension(request) {
      const userId = request.userId.toLowerCase();
      return { suspension: presentSuspension(userId, await findSuspension(db, userId)) };
    },

    async removeContent(request, ctx) {
      const target = storedTarget(request.target!);
      return { removal: await db.transaction((tx) => removeContent(tx, deps.events, target, action(ctx, request.reason))) };
    },

    async restoreContent(request, ctx) {
      const target = storedTarget(request.target!);
      return { removal: await db.transaction((tx) => restoreContent(tx, deps.events, target, action(ctx, request.reason))) };
    },
  };
}
