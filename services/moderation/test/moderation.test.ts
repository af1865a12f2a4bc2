// The moderation service on real infrastructure, behind a real auth service:
// who may call what, the report rules (rate limit, one open report per
// reporter and target), the queue, resolutions, and bad input (field
// errors, nothing written).
import test from "ava";
import { Code } from "@connectrpc/connect";
import type { DescMethod } from "@bufbuild/protobuf";
import { ModerationService, ReportReason, ReportStatus, ResolutionAction, TargetKind } from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import { requiredRoleOf } from "@aviary/runtime/auth/roles";
import { rejection, startTestModeration, violatedFields, type Account, type TestModeration } from "./harness.ts";

// Serial: several tests assert that nothing was written, by counting the tables.
let mod: TestModeration;
let ana: Account;
let ben: Account;

test.before(async () => {
  // Three reports per window, so the limit is reached within a test.
  mod = await startTestModeration({ MODERATION_REPORT_RATE: "3/1h" });
  [ana, ben] = await Promise.all([mod.signUp("ana"), mod.signUp("ben")]);
});

test.after.always(async () => {
  await mod?.close();
});

const userTarget = (userId: string) => ({ kind: { case: "userId" as const, value: userId } });
const postTarget = (postId: string) => ({ kind: { case: "postId" as const, value: postId } });
const commentTarget = (commentId: string) => ({ kind: { case: "commentId" as const, value: commentId } });

/** A request every moderator RPC accepts as well-formed, so only the role decides. */
function validRequest(method: DescMethod): Record<string, unknown> {
  const id = crypto.randomUUID();
  switch (method.name) {
    case "ListReports":
      return {};
    case "ResolveReport":
      return { reportId: id, action: ResolutionAction.DISMISS };
    case "SuspendUser":
    case "UnsuspendUser":
      return { userId: id, reason: "spam" };
    case "GetSuspension":
      return { userId: id };
    case "RemoveContent":
    case "RestoreContent":
      return { target: postTarget(id), reason: "spam" };
    default:
      throw new Error(`no valid request for ${method.name}: add one`);
  }
}

test.serial("every moderator RPC is PERMISSION_DENIED to a user without the role, and writes nothing", async (t) => {
  const guarded = ModerationService.methods.filter((m) => requiredRoleOf(m) !== undefined);
  t.deepEqual(
    guarded.map((m) => m.name).sort(),
    ["GetSuspension", "ListReports", "RemoveContent", "ResolveReport", "RestoreContent", "SuspendUser", "UnsuspendUser"],
    "only CreateReport is for everyone",
  );
  const before = await mod.counts();
  for (const method of guarded) {
    const call = (mod.client as unknown as Record<string, (req: unknown, opts: unknown) => Promise<unknown>>)[method.localName]!;
    const error = await rejection(call(validRequest(method), ana.call));
    t.is(error.code, Code.PermissionDenied, method.name);
    t.regex(error.rawMessage, /moderator role/, method.name);
    // Without a token at all: UNAUTHENTICATED, not a hint about roles.
    t.is((await rejection(call(validRequest(method), {}))).code, Code.Unauthenticated, method.name);
  }
  t.deepEqual(await mod.counts(), before);
  // The moderator passes the same check (these answer NOT_FOUND / empty, not PERMISSION_DENIED).
  t.is((await mod.client.listReports({}, mod.moderator.call)).reports.length >= 0, true);
  t.is((await rejection(mod.client.resolveReport(validRequest(ModerationService.method.resolveReport) as never, mod.moderator.call))).code, Code.NotFound);
});

test.serial("a report: one open per reporter and target (a repeat answers it), then the rate limit", async (t) => {
  const reporter = await mod.signUp("reporter");
  const target = userTarget(ben.userId);
  const first = await mod.client.createReport({ target, reason: ReportReason.SPAM, note: "  buys followers  " }, reporter.call);
  t.true(first.created);
  t.is(first.report?.status, ReportStatus.OPEN);
  t.is(first.report?.note, "buys followers");
  t.is(first.report?.reporterId, reporter.userId);
  const again = await mod.client.createReport({ target, reason: ReportReason.HARASSMENT }, reporter.call);
  t.false(again.created);
  t.is(again.report?.reportId, first.report?.reportId);
  t.is((await mod.query("select 1 from moderation.reports where reporter_id = $1", [reporter.userId])).length, 1);
  // Two more new targets reach the limit of 3; the fourth is refused with a retry hint, and not written.
  await mod.client.createReport({ target: postTarget(crypto.randomUUID()), reason: ReportReason.SPAM }, reporter.call);
  await mod.client.createReport({ target: commentTarget(crypto.randomUUID()), reason: ReportReason.SPAM }, reporter.call);
  const limited = await rejection(mod.client.createReport({ target: postTarget(crypto.randomUUID()), reason: ReportReason.SPAM }, reporter.call));
  t.is(limited.code, Code.ResourceExhausted);
  t.truthy(limited.metadata.get("retry-after"));
  t.is((await mod.query("select 1 from moderation.reports where reporter_id = $1", [reporter.userId])).length, 3);
  // The open report can still be answered: a retry is never refused by the limit.
  t.is((await mod.client.createReport({ target, reason: ReportReason.SPAM }, reporter.call)).report?.reportId, first.report?.reportId);
  // Once it is closed, the same target can be reported again (by a reporter under the limit).
  await mod.client.resolveReport({ reportId: first.report!.reportId, action: ResolutionAction.DISMISS, reason: "not spam" }, mod.moderator.call);
  const other = await mod.signUp("reporter2");
  t.true((await mod.client.createReport({ target, reason: ReportReason.SPAM }, other.call)).created);
});

test.serial("bad input gets field-level errors and writes nothing", async (t) => {
  const before = await mod.counts();
  const cases: Array<[string, Promise<unknown>, string[]]> = [
    ["no target", mod.client.createReport({ reason: ReportReason.SPAM }, ana.call), ["target"]],
    ["empty target", mod.client.createReport({ target: {}, reason: ReportReason.SPAM }, ana.call), ["target.kind"]],
    ["bad id and no reason", mod.client.createReport({ target: postTarget("nope"), reason: ReportReason.UNSPECIFIED }, ana.call), ["target.post_id", "reason"]],
    ["unknown reason", mod.client.createReport({ target: postTarget(crypto.randomUUID()), reason: 99 as ReportReason }, ana.call), ["reason"]],
    ["long note", mod.client.createReport({ target: postTarget(crypto.randomUUID()), reason: ReportReason.OTHER, note: "x".repeat(1001) }, ana.call), ["note"]],
    ["self report", mod.client.createReport({ target: userTarget(ana.userId), reason: ReportReason.OTHER }, ana.call), ["target.user_id"]],
    ["suspend without reason", mod.client.suspendUser({ userId: ben.userId, reason: "" }, mod.moderator.call), ["reason"]],
    ["remove with a blank reason", mod.client.removeContent({ target: postTarget(crypto.randomUUID()), reason: "   " }, mod.moderator.call), ["reason"]],
    ["suspend a bad id", mod.client.suspendUser({ userId: "ben", reason: "spam" }, mod.moderator.call), ["user_id"]],
    ["suspend yourself", mod.client.suspendUser({ userId: mod.moderator.userId, reason: "spam" }, mod.moderator.call), ["user_id"]],
    ["remove without target", mod.client.removeContent({ reason: "spam" }, mod.moderator.call), ["target"]],
    ["resolve without action", mod.client.resolveReport({ reportId: crypto.randomUUID() }, mod.moderator.call), ["action"]],
    ["list with a bad page size", mod.client.listReports({ pageSize: 1000 }, mod.moderator.call), ["page_size"]],
    ["list with a forged token", mod.client.listReports({ pageToken: "forged" }, mod.moderator.call), ["page_token"]],
  ];
  for (const [what, call, fields] of cases) {
    const error = await rejection(call);
    t.is(error.code, Code.InvalidArgument, what);
    t.deepEqual(violatedFields(error), fields, what);
  }
  t.deepEqual(await mod.counts(), before);
});

test.serial("resolving: actions need what they act on; a closed report stays closed; other open reports on the target close with it", async (t) => {
  const postId = crypto.randomUUID();
  const [r1, r2] = await Promise.all([mod.signUp("r1"), mod.signUp("r2")]);
  const a = (await mod.client.createReport({ target: postTarget(postId), reason: ReportReason.SPAM }, r1.call)).report!;
  const b = (await mod.client.createReport({ target: postTarget(postId), reason: ReportReason.HATE }, r2.call)).report!;
  const userReport = (await mod.client.createReport({ target: userTarget(ben.userId), reason: ReportReason.SPAM }, r1.call)).report!;
  const before = await mod.counts();
  const refusals: Array<[string, Promise<unknown>, string[]]> = [
    ["remove without reason", mod.client.resolveReport({ reportId: a.reportId, action: ResolutionAction.REMOVE_CONTENT }, mod.moderator.call), ["reason"]],
    ["suspend an unnamed author", mod.client.resolveReport({ reportId: a.reportId, action: ResolutionAction.SUSPEND_USER, reason: "spam" }, mod.moderator.call), ["user_id"]],
    ["remove a user", mod.client.resolveReport({ reportId: userReport.reportId, action: ResolutionAction.REMOVE_CONTENT, reason: "spam" }, mod.moderator.call), ["action"]],
    ["suspend someone else for a user report", mod.client.resolveReport({ reportId: userReport.reportId, action: ResolutionAction.SUSPEND_USER, reason: "spam", userId: ana.userId }, mod.moderator.call), ["user_id"]],
  ];
  for (const [what, call, fields] of refusals) {
    const error = await rejection(call);
    t.is(error.code, Code.InvalidArgument, what);
    t.deepEqual(violatedFields(error), fields, what);
  }
  t.deepEqual(await mod.counts(), before, "refusals write nothing");

  const resolved = await mod.client.resolveReport({ reportId: a.reportId, action: ResolutionAction.REMOVE_CONTENT, reason: "spam links" }, mod.moderator.call);
  t.is(resolved.report?.status, ReportStatus.ACTIONED);
  t.is(resolved.report?.resolvedBy, mod.moderator.userId);
  t.is(resolved.alsoClosed, 1);
  const closedB = await mod.query<{ status: string }>("select status from moderation.reports where id = $1", [b.reportId]);
  t.is(closedB[0]?.status, "actioned");
  const removal = await mod.query<{ removed: boolean; reason: string; report_id: string }>("select removed, reason, report_id from moderation.removals where target_id = $1", [postId]);
  t.deepEqual(removal, [{ removed: true, reason: "spam links", report_id: a.reportId }]);
  const again = await rejection(mod.client.resolveReport({ reportId: a.reportId, action: ResolutionAction.DISMISS }, mod.moderator.call));
  t.is(again.code, Code.FailedPrecondition);
  // The events: one ReportResolved per closed report and one ContentRemoved, in the outbox.
  const events = await mod.query<{ type: string; key: string }>("select type, key from moderation.outbox_events where key in ($1, $2, $3) order by type", [a.reportId, b.reportId, postId]);
  t.deepEqual(
    events.map((e) => e.type).filter((type) => type !== "aviary.events.v1.ReportCreated"),
    ["aviary.events.v1.ContentRemoved", "aviary.events.v1.ReportResolved", "aviary.events.v1.ReportResolved"],
  );
  // Restore is the undo; restoring twice is refused.
  t.false((await mod.client.restoreContent({ target: postTarget(postId), reason: "appeal granted" }, mod.moderator.call)).removal?.removed);
  t.is((await rejection(mod.client.restoreContent({ target: postTarget(postId), reason: "again" }, mod.moderator.call))).code, Code.FailedPrecondition);
});

test.serial("the queue: filters by status and kind, oldest first, paged with a cursor bound to its filters", async (t) => {
  const reporter = await mod.signUp("queue");
  const other = await mod.signUp("queue2");
  const ids: string[] = [];
  for (const account of [reporter, other]) {
    for (const target of [commentTarget(crypto.randomUUID()), commentTarget(crypto.randomUUID())]) {
      ids.push((await mod.client.createReport({ target, reason: ReportReason.SPAM }, account.call)).report!.reportId);
    }
  }
  const seen: string[] = [];
  let pageToken = "";
  let pages = 0;
  do {
    const page = await mod.client.listReports({ status: ReportStatus.OPEN, targetKind: TargetKind.COMMENT, pageSize: 3, pageToken }, mod.moderator.call);
    t.true(page.reports.every((r) => r.status === ReportStatus.OPEN && r.target?.kind.case === "commentId"));
    seen.push(...page.reports.map((r) => r.reportId));
    pageToken = page.nextPageToken;
    pages += 1;
    if (pages === 1) {
      // A token made for comment reports is refused for another filter.
      const error = await rejection(mod.client.listReports({ status: ReportStatus.OPEN, targetKind: TargetKind.POST, pageToken }, mod.moderator.call));
      t.deepEqual(violatedFields(error), ["page_token"]);
    }
  } while (pageToken !== "");
  t.true(pages >= 2);
  t.deepEqual(seen.filter((id) => ids.includes(id)), ids, "ours, oldest first, each once");
  t.is(new Set(seen).size, seen.length);
  await mod.client.resolveReport({ reportId: ids[0]!, action: ResolutionAction.DISMISS }, mod.moderator.call);
  const dismissed = await mod.client.listReports({ status: ReportStatus.DISMISSED, pageSize: 100 }, mod.moderator.call);
  t.true(dismissed.reports.some((r) => r.reportId === ids[0]));
  t.false((await mod.client.listReports({ targetKind: TargetKind.COMMENT, pageSize: 100 }, mod.moderator.call)).reports.some((r) => r.reportId === ids[0]));
});
