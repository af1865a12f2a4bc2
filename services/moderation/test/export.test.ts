// ModerationInternalService.ExportUserReports over the real service (behind a
// real auth service and its service tokens): the data exporter's token gets
// the reports one user filed, by report id, as a reporter may know them (no
// moderator, no resolution note), then their own suspension without the
// moderator or the report; reports about the user and other reporters'
// reports stay out. No token, a user's token, a service token without the
// scope and a bad user_id are refused.
import test from "ava";
import { Code, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { toJsonString } from "@bufbuild/protobuf";
import { ReportReason, ReportStatus, ResolutionAction } from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import { ExportUserReportsResponseSchema, ModerationInternalService } from "@aviary/gen/aviary/moderation/v1/moderation_internal_pb";
import { as, testServiceClient } from "../../auth/test/harness.ts";
import { drain } from "../../runtime/test-support/streams.ts";
import { rejection, startTestModeration, violatedFields, type Account, type TestModeration } from "./harness.ts";

const exporter = testServiceClient("test-exporter", ["moderation.export"]);
// Every export scope but this service's.
const otherExporter = testServiceClient("test-other-exporter", ["user.export", "chat.export", "notification.export"]);

let mod: TestModeration;
let internal: Client<typeof ModerationInternalService>;
let ana: Account;
let ben: Account;

test.before(async () => {
  mod = await startTestModeration({}, { auth: { env: { AUTH_SERVICE_CLIENTS: [exporter.entry, otherExporter.entry].join(",") } } });
  internal = createClient(ModerationInternalService, createGrpcTransport({ baseUrl: mod.service.url }));
  [ana, ben] = await Promise.all([mod.signUp("ana"), mod.signUp("ben")]);
});

test.after.always(async () => {
  await mod?.close();
});

test.serial("the exporter gets the reports the user filed and their suspension, without moderators, their notes or reports about the user", async (t) => {
  const postId = crypto.randomUUID();
  const { report: aboutPost } = await mod.client.createReport({ target: { kind: { case: "postId", value: postId } }, reason: ReportReason.SPAM, note: "Ana's note on a link farm" }, ana.call);
  const { report: aboutBen } = await mod.client.createReport({ target: { kind: { case: "userId", value: ben.userId } }, reason: ReportReason.HARASSMENT, note: "" }, ana.call);
  // Ben's report about Ana is Ben's, not hers.
  await mod.client.createReport({ target: { kind: { case: "userId", value: ana.userId } }, reason: ReportReason.IMPERSONATION, note: "Ben's note about Ana" }, ben.call);
  await mod.client.resolveReport({ reportId: aboutPost!.reportId, action: ResolutionAction.DISMISS, reason: "the moderator's private note" }, mod.moderator.call);
  await mod.client.suspendUser({ userId: ana.userId, reason: "spam campaign" }, mod.moderator.call);

  const items = await drain(internal.exportUserReports({ userId: ana.userId }, as({ token: await exporter.token(mod.auth) })));
  t.deepEqual(items.map((item) => item.item.case), ["report", "report", "suspension"], "her reports, then her suspension");
  const reports = items.flatMap((item) => (item.item.case === "report" ? [item.item.value] : []));
  t.deepEqual(reports.map((r) => r.reportId), [aboutPost!.reportId, aboutBen!.reportId].sort(), "by report id");
  const dismissed = reports.find((r) => r.reportId === aboutPost!.reportId)!;
  t.is(dismissed.target?.kind.case, "postId");
  t.is(dismissed.target?.kind.value, postId);
  t.is(dismissed.reason, ReportReason.SPAM);
  t.is(dismissed.note, "Ana's note on a link farm");
  t.is(dismissed.status, ReportStatus.DISMISSED);
  t.truthy(dismissed.createdAt);
  t.truthy(dismissed.resolvedAt);
  const open = reports.find((r) => r.reportId === aboutBen!.reportId)!;
  t.is(open.status, ReportStatus.OPEN);
  t.is(open.resolvedAt, undefined);
  const suspension = items[2]?.item.case === "suspension" ? items[2].item.value : undefined;
  t.is(suspension?.suspended, true);
  t.is(suspension?.reason, "spam campaign");

  const everything = items.map((item) => toJsonString(ExportUserReportsResponseSchema, item)).join("\n");
  t.false(everything.includes(mod.moderator.userId), "no moderator's identity");
  t.false(everything.includes("the moderator's private note"));
  t.false(everything.includes("Ben's note about Ana"));

  // Ben's own export: his report about Ana, nothing of hers, no suspension.
  const bens = await drain(internal.exportUserReports({ userId: ben.userId }, as({ token: await exporter.token(mod.auth) })));
  t.deepEqual(bens.map((item) => (item.item.case === "report" ? item.item.value.note : item.item.case)), ["Ben's note about Ana"]);
});

test.serial("no token, a user's token, a service token without the scope and a bad user_id are refused", async (t) => {
  t.is((await rejection(drain(internal.exportUserReports({ userId: ben.userId })))).code, Code.Unauthenticated);
  t.is((await rejection(drain(internal.exportUserReports({ userId: ben.userId }, ben.call)))).code, Code.PermissionDenied);
  // A moderator is still a user: their token is no service's.
  t.is((await rejection(drain(internal.exportUserReports({ userId: ben.userId }, mod.moderator.call)))).code, Code.PermissionDenied);
  t.is((await rejection(drain(internal.exportUserReports({ userId: ben.userId }, as({ token: await otherExporter.token(mod.auth) }))))).code, Code.PermissionDenied);
  const token = await exporter.token(mod.auth);
  for (const userId of ["not-a-uuid", ""]) {
    const bad = await rejection(drain(internal.exportUserReports({ userId }, as({ token }))));
    t.is(bad.code, Code.InvalidArgument, userId);
    t.deepEqual(violatedFields(bad), ["user_id"]);
  }
});
