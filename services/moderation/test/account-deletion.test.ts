// A deleted account in moderation, on real infrastructure behind the real
// auth service (grace 0, the purge driven by the test): Ben is a moderator
// who also files reports and is reported. After AccountDeleted, his reports
// are gone; the reports about him are closed and point at the deleted-account
// marker; what he did as a moderator (a suspension, a removal, a resolved
// report) keeps one pseudonym; nothing in the moderation database names him
// (the outbox aside); the others' data stays. A redelivered event changes
// nothing.
import test from "ava";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { AccountDeletedSchema } from "@aviary/gen/aviary/events/v1/auth_events_pb";
import { ReportReason, ReportStatus, ResolutionAction, type Report } from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import { authEventsTopic, DELETED_ACCOUNT_ID } from "@aviary/runtime/bus/account-deletions";
import { Role } from "@aviary/runtime/auth/roles";
import { password } from "../../auth/test/harness.ts";
import { findLeftovers } from "../../runtime/test-support/leftovers.ts";
import { ACCOUNT_DELETED_NOTE } from "../src/write/purge.ts";
import { startTestModeration, type Account, type TestModeration } from "./harness.ts";

let mod: TestModeration;

test.before(async () => {
  mod = await startTestModeration({}, { auth: { env: { AUTH_DELETION_GRACE: "0s", AUTH_DELETION_POLL_INTERVAL: "1h" } } });
});
test.after.always(async () => {
  await mod?.close();
});

const userTarget = (userId: string) => ({ kind: { case: "userId" as const, value: userId } });
const postTarget = (postId: string) => ({ kind: { case: "postId" as const, value: postId } });

/** Every row of the moderation tables, as text, in a stable order (outbox aside: it keeps published events for a while by design). */
async function tables(): Promise<string[]> {
  const rows = await mod.query<{ row: string }>(
    `select 'r' || r::text as row from moderation.reports r union all select 's' || s::text from moderation.suspensions s union all select 'm' || m::text from moderation.removals m order by 1`,
  );
  return rows.map((r) => r.row);
}

async function report(reporter: Account, target: ReturnType<typeof userTarget> | ReturnType<typeof postTarget>): Promise<Report> {
  return (await mod.client.createReport({ target, reason: ReportReason.SPAM, note: `filed by ${reporter.userId}` }, reporter.call)).report!;
}

test.serial("a deleted account's reports go, reports about it are closed without naming it, its moderator actions keep a pseudonym; a redelivery changes nothing", async (t) => {
  const [ana, carl, dan] = await Promise.all([mod.signUp("ana"), mod.signUp("carl"), mod.signUp("dan")]);
  const benAccount = await mod.signUp("ben");
  await mod.roles.grantRole({ userId: benAccount.userId, role: Role.MODERATOR }, mod.admin.call);
  const ben = await mod.signIn(benAccount);

  // What Ben filed: one open, one another moderator resolved.
  const benOpen = await report(ben, userTarget(ana.userId));
  const benClosed = await report(ben, postTarget(crypto.randomUUID()));
  await mod.client.resolveReport({ reportId: benClosed.reportId, action: ResolutionAction.DISMISS, reason: "" }, mod.moderator.call);
  // About Ben: Carl's is dismissed, then Ana's stays open (resolving closes every open report on the target, so hers comes after).
  const aboutClosed = await report(carl, userTarget(ben.userId));
  await mod.client.resolveReport({ reportId: aboutClosed.reportId, action: ResolutionAction.DISMISS, reason: "" }, mod.moderator.call);
  const aboutOpen = await report(ana, userTarget(ben.userId));
  // What Ben did as a moderator: suspended Carl, removed a post, dismissed Dan's report.
  await mod.client.suspendUser({ userId: carl.userId, reason: "spam wave" }, ben.call);
  const removedPost = crypto.randomUUID();
  await mod.client.removeContent({ target: postTarget(removedPost), reason: "off-topic" }, ben.call);
  const dansReport = await report(dan, postTarget(crypto.randomUUID()));
  await mod.client.resolveReport({ reportId: dansReport.reportId, action: ResolutionAction.DISMISS, reason: "fine" }, ben.call);
  // Someone else's action, untouched by Ben's purge.
  await mod.client.suspendUser({ userId: dan.userId, reason: "another wave" }, mod.moderator.call);

  const database = mod.service.database;
  t.true((await findLeftovers({ databases: [database], userId: ben.userId })).length > 0, "the scan finds Ben before the deletion");

  await mod.auth.client.deleteAccount({ proof: { case: "password", value: password } }, ben.call);
  t.is(await mod.auth.service.purgeDueDeletions(), 1);
  await mod.until("Ben purged from moderation", async () => (await findLeftovers({ databases: [database], userId: ben.userId })).length === 0);

  const reportRow = async (id: string) => (await mod.query<{ status: string; reporter_id: string; target_id: string; resolved_by: string | null; resolution_note: string | null; resolution: number | null }>(`select * from moderation.reports where id = $1`, [id]))[0];
  t.is(await reportRow(benOpen.reportId), undefined, "Ben's open report is gone");
  t.is(await reportRow(benClosed.reportId), undefined, "and his closed one");
  t.like(await reportRow(aboutOpen.reportId), { status: "dismissed", resolution: ResolutionAction.DISMISS, resolved_by: null, resolution_note: ACCOUNT_DELETED_NOTE, reporter_id: ana.userId, target_id: DELETED_ACCOUNT_ID });
  t.like(await reportRow(aboutClosed.reportId), { status: "dismissed", resolved_by: mod.moderator.userId, resolution_note: "", reporter_id: carl.userId, target_id: DELETED_ACCOUNT_ID });

  // The moderator's view: the reports about the deleted account read as dismissed, about the marker.
  const dismissed = (await mod.client.listReports({ status: ReportStatus.DISMISSED, pageSize: 100 }, mod.moderator.call)).reports;
  const aboutOpenNow = dismissed.find((r) => r.reportId === aboutOpen.reportId)!;
  t.is(aboutOpenNow.target?.kind.value, DELETED_ACCOUNT_ID);
  t.is(aboutOpenNow.resolvedBy, "");

  // Ben's actions: one pseudonym, neither his id nor the marker, for all of them.
  const carlSuspension = await mod.client.getSuspension({ userId: carl.userId }, mod.moderator.call);
  const pseudonym = carlSuspension.suspension!.moderatorId;
  t.true(carlSuspension.suspension!.suspended, "Carl stays suspended");
  t.not(pseudonym, ben.userId);
  t.not(pseudonym, DELETED_ACCOUNT_ID);
  const [removal] = await mod.query<{ moderator_id: string; removed: boolean }>(`select moderator_id::text, removed from moderation.removals where target_id = $1`, [removedPost]);
  t.deepEqual(removal, { moderator_id: pseudonym, removed: true });
  t.like(await reportRow(dansReport.reportId), { resolved_by: pseudonym, resolution_note: "fine", reporter_id: dan.userId });
  t.is((await mod.client.getSuspension({ userId: dan.userId }, mod.moderator.call)).suspension!.moderatorId, mod.moderator.userId);
  t.true((await findLeftovers({ databases: [database], userId: ana.userId })).length > 0, "the scan still finds Ana");

  // Redelivered (same event id, and as a fresh one), then a deletion of Dan on the same key, so the same partition: once Dan is purged, the replays were applied.
  const state = await tables();
  const [row] = await mod.auth.query<{ payload: Buffer; headers: Record<string, string> }>(`select payload, headers from auth.outbox_events where key = $1 and type = 'aviary.events.v1.AccountDeleted'`, [ben.userId]);
  const payload = new Uint8Array(row!.payload);
  t.is(fromBinary(AccountDeletedSchema, payload).userId, ben.userId);
  const marker = toBinary(AccountDeletedSchema, create(AccountDeletedSchema, { ...fromBinary(AccountDeletedSchema, payload), userId: dan.userId }));
  await mod.service.bus.publish([
    { topic: authEventsTopic, key: ben.userId, value: payload, headers: row!.headers },
    { topic: authEventsTopic, key: ben.userId, value: payload, headers: { ...row!.headers, "event-id": crypto.randomUUID() } },
    { topic: authEventsTopic, key: ben.userId, value: marker, headers: { ...row!.headers, "event-id": crypto.randomUUID() } },
  ]);
  await mod.until("the marker applied", async () => (await reportRow(dansReport.reportId)) === undefined);
  const without = (rows: string[]) => rows.filter((r) => !r.includes(dan.userId));
  t.deepEqual(without(await tables()), without(state), "the replays changed nothing of Ben's remains");
  t.is((await mod.client.getSuspension({ userId: carl.userId }, mod.moderator.call)).suspension!.moderatorId, pseudonym, "no second pseudonym");
});
