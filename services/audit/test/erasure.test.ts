// Erasing a deleted account from the audit log, on real infrastructure
// behind the real auth and moderation services: Dora signs in, reports Ana,
// is reported by Ana, suspended and unsuspended by a moderator, then
// deletes her account. Once auth purges it (grace 0, driven by the test),
// the log keeps every entry, the deletion's own included, but no table of
// the audit database holds her id; VerifyChain still passes; erasing again
// changes nothing. The trigger still refuses a plain UPDATE and any
// "erasure" that changes more than personal data, and tampering with an
// erased entry's digest or restoring its cleartext fails VerifyChain there.
import test from "ava";
import { ReportReason } from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import type { AuditEntry } from "@aviary/gen/aviary/audit/v1/audit_pb";
import { as, password, uniqueIp } from "../../auth/test/harness.ts";
import { eventually } from "../../runtime/test-support/infra.ts";
import { findLeftovers } from "../../runtime/test-support/leftovers.ts";
import { APPLY_WAIT_MS } from "../../moderation/test/harness.ts";
import { eraseAccount } from "../src/store/erasure.ts";
import { startTestAudit, type Account, type TestAudit } from "./harness.ts";

// Serial: one story, and the last test tampers with the chain.
let audit: TestAudit;
let ana: Account;
let dora: Account;
/** Dora's entries before the deletion, by source event id. */
let before: Map<string, AuditEntry>;
let deletionEventId: string;

test.before(async () => {
  // Grace 0 and an hour's poll: the purge runs exactly when the test calls it.
  audit = await startTestAudit({ auth: { env: { AUTH_DELETION_GRACE: "0s", AUTH_DELETION_POLL_INTERVAL: "1h" } } });
  [ana, dora] = await Promise.all([audit.moderation.signUp("ana"), audit.moderation.signUp("dora")]);
});

test.after.always(async () => {
  await audit?.close();
});

const leftovers = (userId: string) => findLeftovers({ databases: [audit.service.database], userId });

async function entriesNaming(userId: string): Promise<AuditEntry[]> {
  const { admin } = audit.moderation;
  const [asActor, asSubject] = await Promise.all([audit.client.listAuditEntries({ actorId: userId, pageSize: 200 }, admin.call), audit.entriesAbout(userId)]);
  const bySeq = new Map([...asActor.entries, ...asSubject].map((e) => [e.seq, e]));
  return [...bySeq.values()].sort((a, b) => Number(a.seq - b.seq));
}

test.serial("a deleted account is erased from every entry naming it; the entries, their digests and the chain stay", async (t) => {
  const { auth, client: moderation, moderator } = audit.moderation;
  const ip = uniqueIp();
  await auth.client.login({ identity: { case: "email", value: dora.identity }, password, deviceName: "dora's phone" }, as({ ip }));
  await moderation.createReport({ target: { kind: { case: "userId", value: ana.userId } }, reason: ReportReason.SPAM, note: "" }, dora.call);
  await moderation.createReport({ target: { kind: { case: "userId", value: dora.userId } }, reason: ReportReason.HARASSMENT, note: "" }, ana.call);
  await moderation.suspendUser({ userId: dora.userId, reason: "cooling off" }, moderator.call);
  await moderation.unsuspendUser({ userId: dora.userId, reason: "cooled off" }, moderator.call);
  const kindsNeeded = ["auth.login_succeeded", "moderation.report_created", "moderation.user_suspended", "moderation.user_unsuspended"];
  let named: AuditEntry[] = [];
  await eventually(
    "Dora's entries",
    async () => {
      named = await entriesNaming(dora.userId);
      const kinds = named.map((e) => e.kind);
      // Ana's report names Dora only in its details: look for it among Ana's.
      const anas = await audit.client.listAuditEntries({ actorId: ana.userId, kind: "moderation.report_created" }, audit.moderation.admin.call);
      return kindsNeeded.every((k) => kinds.includes(k)) && anas.entries.some((e) => e.details?.["target"] === dora.userId);
    },
    APPLY_WAIT_MS,
  );
  t.true(named.some((e) => e.kind === "auth.login_succeeded" && e.details?.["ip_address"] === ip && e.details?.["device_name"] === "dora's phone"));
  before = new Map(named.map((e) => [e.sourceEventId, e]));
  t.true((await leftovers(dora.userId)).length > 0, "the scan finds Dora in the log before the deletion");

  const again = await audit.moderation.signIn(dora);
  await auth.client.deleteAccount({ proof: { case: "password", value: password } }, again.call);
  t.is(await auth.service.purgeDueDeletions(), 1);
  const [deleted] = await auth.query<{ id: string }>(`select id::text from auth.outbox_events where key = $1 and type = 'aviary.events.v1.AccountDeleted'`, [dora.userId]);
  deletionEventId = deleted!.id;

  // The deletion's entry is appended, then Dora is erased from everything, it included.
  let left: string[] = [];
  await eventually(
    "Dora erased",
    async () => {
      const [row] = await audit.query<{ n: number }>(`select count(*)::int as n from audit.entries where source_event_id = $1`, [deletionEventId]);
      return row!.n === 1 && (left = await leftovers(dora.userId)).length === 0;
    },
    APPLY_WAIT_MS,
  ).catch(() => undefined);
  t.deepEqual(left, [], "no table of the audit database names Dora");
  t.true((await leftovers(ana.userId)).length > 0, "while it still finds Ana");
  t.deepEqual(await entriesNaming(dora.userId), [], "no entry can be found by her id");

  const { intact } = await audit.client.verifyChain({}, audit.moderation.admin.call);
  t.true(intact, "the chain verifies after the erasure");

  const rows = await audit.query<{ source_event_id: string; kind: string; actor_id: string | null; subject: string | null; details: Record<string, string>; hash: string; erased_at: Date | null }>(
    `select source_event_id::text, kind, actor_id::text, subject, details, hash, erased_at from audit.entries where source_event_id = any($1::uuid[])`,
    [[...before.keys(), deletionEventId]],
  );
  const bySource = new Map(rows.map((row) => [row.source_event_id, row]));
  t.is(bySource.size, before.size + 1, "every entry stays");
  for (const [source, entry] of before) t.is(bySource.get(source)?.hash, entry.hash, `${entry.kind} keeps its hash`);
  const deletion = bySource.get(deletionEventId)!;
  t.like(deletion, { kind: "auth.account_deleted", subject: null });
  t.truthy(deletion.erased_at);
  const suspension = [...before.values()].find((e) => e.kind === "moderation.user_suspended")!;
  t.like(bySource.get(suspension.sourceEventId), { actor_id: moderator.userId, subject: null, details: { reason: "cooling off" } }, "the moderator and the reason stay");
  const login = [...before.values()].find((e) => e.kind === "auth.login_succeeded" && e.details?.["ip_address"] === ip)!;
  t.deepEqual(bySource.get(login.sourceEventId)?.details, {}, "where she signed in from, and with what, goes with her");
  const anasReport = (await audit.client.listAuditEntries({ actorId: ana.userId, kind: "moderation.report_created" }, audit.moderation.admin.call)).entries[0]!;
  t.is(anasReport.actorId, ana.userId, "Ana's report stays hers");
  t.deepEqual(anasReport.details, { reason: "harassment" }, "but no longer names whom it was about");
});

test.serial("erasing again changes nothing", async (t) => {
  // Compared over the entries that exist now: the consumer may still append
  // later events of this file's accounts (it did, under a CPU hog), and an
  // append is not a change to what was there.
  const [{ head } = { head: "0" }] = await audit.query<{ head: string }>(`select coalesce(max(seq), 0)::text as head from audit.entries`);
  const digest = `select md5(string_agg(t::text, '|' order by seq)) as digest from audit.entries t where seq <= $1`;
  const [state] = await audit.query<{ digest: string }>(digest, [head]);
  t.is(await eraseAccount(audit.service.database, dora.userId, new Date()), 0);
  const [after] = await audit.query<{ digest: string }>(digest, [head]);
  t.is(after!.digest, state!.digest);
  t.true((await audit.client.verifyChain({}, audit.moderation.admin.call)).intact);
});

test.serial("the database refuses a plain UPDATE, and any erasure that changes more than personal data", async (t) => {
  const [row] = await audit.query<{ seq: string }>(`select seq::text from audit.entries where source_event_id = $1`, [deletionEventId]);
  const seq = row!.seq;
  const [ana_] = await audit.query<{ seq: string }>(`select seq::text from audit.entries where actor_id = $1 order by seq limit 1`, [ana.userId]);
  const erasure = (statement: string) => `select set_config('audit.erasure', 'on', false); ${statement}`;
  const refused = [
    `update audit.entries set actor_id = null, actor_salt = null, erased_at = now() where seq = ${ana_!.seq}`,
    erasure(`update audit.entries set kind = 'auth.nothing' where seq = ${seq}`),
    erasure(`update audit.entries set subject_digest = null, erased_at = now() where seq = ${ana_!.seq}`),
    // A value without its salt would no longer match its digest: cleartext and salt go together.
    erasure(`update audit.entries set actor_id = null, erased_at = now() where seq = ${ana_!.seq}`),
    erasure(`update audit.entries set details = '{}', erased_at = now() where seq = ${ana_!.seq} and details <> '{}'`),
    erasure(`update audit.entries set subject = 'someone-else', erased_at = now() where seq = ${seq}`),
    erasure(`delete from audit.entries where seq = ${seq}`),
  ];
  for (const statement of refused) {
    const error = await t.throwsAsync(audit.query(statement));
    t.regex(error?.message ?? "", /append-only/, statement);
  }
  t.true((await audit.client.verifyChain({}, audit.moderation.admin.call)).intact);
});

test.serial("tampering with an erased entry fails VerifyChain at that entry: its cleartext restored, or its digest changed", async (t) => {
  const { admin } = audit.moderation;
  const suspension = [...before.values()].find((e) => e.kind === "moderation.user_suspended")!;
  const [row] = await audit.query<{ seq: string; subject_digest: string }>(`select seq::text, subject_digest from audit.entries where source_event_id = $1`, [suspension.sourceEventId]);
  const seq = BigInt(row!.seq);
  // Putting the id back (triggers off), without the salt it had, does not match the digest.
  await audit.query(`set session_replication_role = replica; update audit.entries set subject = '${dora.userId}' where seq = ${seq}`);
  const restored = await audit.client.verifyChain({}, admin.call);
  t.like(restored, { intact: false, firstBadSeq: seq, problem: "digest" });

  await audit.query(`set session_replication_role = replica; update audit.entries set subject = null, subject_digest = '${"0".repeat(64)}' where seq = ${seq}`);
  const digest = await audit.client.verifyChain({}, admin.call);
  t.like(digest, { intact: false, firstBadSeq: seq, problem: "hash" });
});
