// The audit log on real infrastructure, fed by the real auth and moderation
// services: security events land in order with an intact chain, a
// suspension and its lifting are recorded with the moderator as actor, the
// filters and the cursor, admin-only access, field errors, replays append
// nothing, the database refuses changes, and an edited row fails
// VerifyChain at that row.
import test from "ava";
import { Code } from "@connectrpc/connect";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { DescMethod } from "@bufbuild/protobuf";
import { AuditService, type AuditEntry } from "@aviary/gen/aviary/audit/v1/audit_pb";
import { UserSuspendedSchema } from "@aviary/gen/aviary/events/v1/moderation_events_pb";
import { EventHeaders } from "@aviary/runtime/bus/bus";
import { PROTOBUF_CONTENT_TYPE } from "@aviary/runtime/outbox/enqueue";
import { requiredRoleOf, Role } from "@aviary/runtime/auth/roles";
import { DataExportService } from "@aviary/gen/aviary/auth/v1/data_export_pb";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { as, password, uniqueIp } from "../../auth/test/harness.ts";
import { base32Decode, totpCode, TOTP_PERIOD_SECONDS } from "../../auth/src/domain/totp.ts";
import { eventually } from "../../runtime/test-support/infra.ts";
import { APPLY_WAIT_MS } from "../../moderation/test/harness.ts";
import { expectedHash, fieldDigest } from "../src/domain/chain.ts";
import { chainedOf } from "../src/store/entries.ts";
import { entries } from "../src/store/schema.ts";
import { eq } from "drizzle-orm";
import { rejection, startTestAudit, violatedFields, type Account, type TestAudit } from "./harness.ts";

// Serial: the last test tampers with the chain.
let audit: TestAudit;
let ana: Account;
let ben: Account;
let cleo: Account;

// The TOTP clock is injected: a test moves to the next 30-second step instead of waiting for it.
let totpOffsetMs = 0;
const totpClock = () => Date.now() + totpOffsetMs;
const nextTotpStep = () => void (totpOffsetMs += TOTP_PERIOD_SECONDS * 1000);
/** Low limits, so a lockout takes a few attempts (the test below counts on these numbers). */
const LOGIN_FAILURES_PER_IDENTITY_IP = 3;
const SECOND_FACTOR_FAILURES_PER_ACCOUNT = 4;

test.before(async () => {
  audit = await startTestAudit({
    auth: {
      env: { AUTH_LOGIN_FAILURES_PER_IDENTITY_IP: String(LOGIN_FAILURES_PER_IDENTITY_IP), AUTH_2FA_FAILURES_PER_ACCOUNT: String(SECOND_FACTOR_FAILURES_PER_ACCOUNT) },
      adapters: { totpClock },
    },
  });
  // Signed in before the rotation test: a token under a key newer than the audit service's JWKS cache waits out jose's refetch cooldown.
  [ana, ben, cleo] = await Promise.all([audit.moderation.signUp("ana"), audit.moderation.signUp("ben"), audit.moderation.signUp("cleo")]);
});

test.after.always(async () => {
  await audit?.close();
});

const kinds = (entries: AuditEntry[]) => entries.map((e) => e.kind);

async function entriesUntil(subject: string, what: string, done: (entries: AuditEntry[]) => boolean): Promise<AuditEntry[]> {
  let found: AuditEntry[] = [];
  await eventually(what, async () => done((found = await audit.entriesAbout(subject))), APPLY_WAIT_MS);
  return found;
}

async function verifyAll(): Promise<{ intact: boolean; firstBadSeq: bigint; problem: string; checked: bigint }> {
  return audit.client.verifyChain({}, audit.moderation.admin.call);
}

test.serial("an account's security events are recorded in order, failures and password changes included", async (t) => {
  const { auth } = audit.moderation;
  const ip = uniqueIp();
  const wrong = await rejection(auth.client.login({ identity: { case: "email", value: ana.identity }, password: "not-the-password-at-all" }, as({ ip })));
  t.is(wrong.code, Code.Unauthenticated);
  const again = await audit.moderation.signIn(ana);
  await auth.client.changePassword({ currentPassword: password, newPassword: "a-new-long-passphrase-77" }, again.call);

  const entries = await entriesUntil(ana.userId, "ana's password change", (found) => kinds(found).includes("auth.password_changed") && kinds(found).includes("auth.session_revoked"));
  t.deepEqual(
    kinds(entries).filter((k) => k !== "auth.session_revoked"),
    ["auth.user_registered", "auth.login_succeeded", "auth.login_failed", "auth.login_succeeded", "auth.password_changed"],
  );
  const failed = entries.find((e) => e.kind === "auth.login_failed")!;
  t.is(failed.actorId, "", "a failed sign-in has no actor");
  t.is(failed.details?.["ip_address"], ip);
  const revoked = entries.filter((e) => e.kind === "auth.session_revoked");
  t.true(revoked.length >= 1 && revoked.every((e) => e.details?.["reason"] === "password_changed" && e.actorId === ana.userId));
  // Each links to the one before it in the log (not necessarily ana's).
  for (const entry of entries) t.regex(entry.hash, /^[0-9a-f]{64}$/);
  t.true((await verifyAll()).intact);
});

test.serial("a suspension and its lifting are recorded with the moderator, the reason and an intact chain", async (t) => {
  const { client: moderation, moderator } = audit.moderation;
  await moderation.suspendUser({ userId: ben.userId, reason: "spam campaign" }, moderator.call);
  const suspended = await entriesUntil(ben.userId, "ben's suspension", (found) => kinds(found).includes("moderation.user_suspended"));
  const entry = suspended.find((e) => e.kind === "moderation.user_suspended")!;
  t.is(entry.actorId, moderator.userId);
  t.is(entry.details?.["reason"], "spam campaign");
  await eventually("the sessions the suspension ended", async () => (await audit.entriesAbout(ben.userId)).some((e) => e.details?.["reason"] === "account_suspended"), APPLY_WAIT_MS);
  t.true((await verifyAll()).intact);

  await moderation.unsuspendUser({ userId: ben.userId, reason: "appeal granted" }, moderator.call);
  const lifted = await entriesUntil(ben.userId, "ben's unsuspension", (found) => kinds(found).includes("moderation.user_unsuspended"));
  t.is(lifted.find((e) => e.kind === "moderation.user_unsuspended")!.actorId, moderator.userId);
  t.true((await verifyAll()).intact);
});

test.serial("role grants and signing-key rotations are recorded", async (t) => {
  const { admin, moderator, auth } = audit.moderation;
  const granted = await entriesUntil(moderator.userId, "the moderator's grant", (found) => kinds(found).includes("auth.role_granted"));
  const grant = granted.find((e) => e.kind === "auth.role_granted")!;
  t.is(grant.actorId, admin.userId);
  t.is(grant.details?.["role"], "moderator");

  const kid = await auth.service.rotateSigningKey();
  const rotated = await entriesUntil(`key:${kid}`, "the rotation", (found) => found.length === 1);
  t.is(rotated[0]!.kind, "auth.signing_key_rotated");
});

test.serial("second-factor failures, lockouts, two-factor changes, data exports, deletion and its cancelling and role revocations are recorded", async (t) => {
  const { auth, admin, roles } = audit.moderation;
  const dan = await audit.moderation.signUp("dan");
  const started = await auth.client.startTotpEnrollment({ password }, dan.call);
  const secret = base32Decode(started.secret);
  nextTotpStep();
  const { recoveryCodes } = await auth.client.confirmTotpEnrollment({ code: totpCode(secret, totpClock()) }, dan.call);

  // A sign-in with the password: a code from the future, then the enrolment's own (a replay), then a recovery code finishes it.
  const ip = uniqueIp();
  const signIn = async () => (await auth.client.login({ identity: { case: "email", value: dan.identity }, password, deviceName: "test" }, as({ ip }))).challengeToken;
  const first = await signIn();
  for (const value of [totpCode(secret, totpClock() + 10 * TOTP_PERIOD_SECONDS * 1000), totpCode(secret, totpClock())]) {
    t.is((await rejection(auth.client.verifySecondFactor({ challengeToken: first, factor: { case: "code", value } }, as({ ip })))).code, Code.InvalidArgument);
  }
  await auth.client.verifySecondFactor({ challengeToken: first, factor: { case: "recoveryCode", value: recoveryCodes[0]! } }, as({ ip }));
  // The spent recovery code again, on the next sign-in.
  const second = await signIn();
  t.is((await rejection(auth.client.verifySecondFactor({ challengeToken: second, factor: { case: "recoveryCode", value: recoveryCodes[0]! } }, as({ ip })))).code, Code.InvalidArgument);
  // Wrong codes to turn two-factor off until the account's limit is reached (the success above reset its count): the last one locks.
  for (let i = 1; i < SECOND_FACTOR_FAILURES_PER_ACCOUNT; i++) {
    t.is((await rejection(auth.client.disableTwoFactor({ proof: { case: "code", value: totpCode(secret, totpClock() + 10 * TOTP_PERIOD_SECONDS * 1000) } }, dan.call))).code, Code.InvalidArgument);
  }
  t.is((await rejection(auth.client.disableTwoFactor({ proof: { case: "code", value: "000000" } }, dan.call))).code, Code.ResourceExhausted, "refused, and not recorded again");
  await auth.client.disableTwoFactor({ proof: { case: "password", value: password } }, dan.call);

  // Wrong passwords from one address until its limit for the account is reached; the refused one after it records nothing.
  const guesser = uniqueIp();
  for (let i = 0; i < LOGIN_FAILURES_PER_IDENTITY_IP; i++) {
    t.is((await rejection(auth.client.login({ identity: { case: "email", value: dan.identity }, password: "not-the-password-at-all" }, as({ ip: guesser })))).code, Code.Unauthenticated);
  }
  t.is((await rejection(auth.client.login({ identity: { case: "email", value: dan.identity }, password: "not-the-password-at-all" }, as({ ip: guesser })))).code, Code.ResourceExhausted);

  const exports = createClient(DataExportService, createGrpcTransport({ baseUrl: auth.service.url }));
  const requested = await exports.requestDataExport({}, dan.call);
  await roles.grantRole({ userId: dan.userId, role: Role.MODERATOR }, admin.call);
  await roles.revokeRole({ userId: dan.userId, role: Role.MODERATOR }, admin.call);
  const again = await audit.moderation.signIn(dan);
  await auth.client.deleteAccount({ proof: { case: "password", value: password } }, again.call);
  const during = await audit.moderation.signIn(dan);
  await auth.client.cancelAccountDeletion({}, during.call);

  const wanted = ["auth.second_factor_failed", "auth.login_locked_out", "auth.two_factor_enabled", "auth.two_factor_disabled", "auth.recovery_code_used", "auth.data_export_requested", "auth.role_revoked", "auth.account_deletion_scheduled", "auth.account_deletion_cancelled"];
  const entries = await entriesUntil(dan.userId, "dan's security events", (found) => wanted.every((kind) => kinds(found).includes(kind)));
  const of = (kind: string) => entries.filter((e) => e.kind === kind);

  t.deepEqual(
    of("auth.second_factor_failed").map((e) => [e.details?.["purpose"], e.details?.["method"], e.details?.["failure"]]),
    [
      ["sign_in", "totp", "wrong_code"],
      ["sign_in", "totp", "replayed_code"],
      ["sign_in", "recovery_code", "unknown_recovery_code"],
      ...Array.from({ length: SECOND_FACTOR_FAILURES_PER_ACCOUNT - 1 }, () => ["disable", "totp", "wrong_code"]),
    ],
    "every refused code, none after the lockout",
  );
  t.true(of("auth.second_factor_failed").every((e) => e.actorId === "" && e.details?.["ip_address"] !== undefined));
  t.is(of("auth.second_factor_failed")[0]!.details?.["ip_address"], ip);
  const lockouts = of("auth.login_locked_out");
  t.deepEqual(lockouts.map((e) => e.details?.["limit"]).sort(), ["identity_ip", "second_factor"], "one entry per lockout");
  const passwordLockout = lockouts.find((e) => e.details?.["limit"] === "identity_ip")!;
  t.is(passwordLockout.details?.["ip_address"], guesser);
  t.is(passwordLockout.details?.["identity"], "email");
  t.true(Date.parse(String(passwordLockout.details?.["locked_until"])) > timestampDate(passwordLockout.occurredAt!).getTime());
  t.is(of("auth.login_failed").length, LOGIN_FAILURES_PER_IDENTITY_IP, "the refused attempt under the lockout is not a failure of its own");
  t.is(of("auth.two_factor_disabled")[0]!.details?.["proof"], "password");
  t.is(of("auth.recovery_code_used")[0]!.details?.["remaining"], String(recoveryCodes.length - 1));
  const exported = of("auth.data_export_requested")[0]!;
  t.is(exported.actorId, dan.userId);
  t.is(exported.details?.["export_id"], requested.export?.exportId);
  const revoked = of("auth.role_revoked")[0]!;
  t.is(revoked.actorId, admin.userId);
  t.is(revoked.details?.["role"], "moderator");
  t.true(of("auth.account_deletion_scheduled")[0]!.details?.["purge_at"] !== undefined);
  t.is(of("auth.account_deletion_cancelled")[0]!.actorId, dan.userId);
  t.true((await verifyAll()).intact);
});

test.serial("filters by actor, kind and time, paged newest first with a cursor bound to its filters", async (t) => {
  const { admin, moderator } = audit.moderation;
  const byModerator = await audit.client.listAuditEntries({ actorId: moderator.userId, kind: "moderation.user_suspended" }, admin.call);
  t.true(byModerator.entries.length >= 1);
  t.true(byModerator.entries.every((e) => e.actorId === moderator.userId && e.kind === "moderation.user_suspended"));

  const all = await audit.entriesAbout(ben.userId);
  const pages: AuditEntry[] = [];
  let pageToken = "";
  do {
    const page = await audit.client.listAuditEntries({ subject: ben.userId, pageSize: 1, pageToken }, admin.call);
    t.true(page.entries.length <= 1);
    pages.push(...page.entries);
    pageToken = page.nextPageToken;
    if (pageToken !== "") {
      const other = await rejection(audit.client.listAuditEntries({ subject: ana.userId, pageSize: 1, pageToken }, admin.call));
      t.deepEqual(violatedFields(other), ["page_token"]);
    }
  } while (pageToken !== "");
  t.deepEqual(pages.map((e) => e.seq).reverse(), all.map((e) => e.seq), "the pages are the whole list, newest first");

  const suspension = all.find((e) => e.kind === "moderation.user_suspended")!;
  const at = suspension.occurredAt!;
  const window = await audit.client.listAuditEntries(
    { subject: ben.userId, since: at, until: timestampFromDate(new Date(Number(at.seconds) * 1000 + at.nanos / 1e6 + 1)) },
    admin.call,
  );
  t.true(window.entries.some((e) => e.seq === suspension.seq));
  t.true(window.entries.every((e) => e.occurredAt!.seconds === at.seconds));
});

test.serial("bad input is refused with field errors", async (t) => {
  const { admin } = audit.moderation;
  const cases: Array<[string, Promise<unknown>, string[]]> = [
    ["actor not a uuid", audit.client.listAuditEntries({ actorId: "nope" }, admin.call), ["actor_id"]],
    ["unknown kind", audit.client.listAuditEntries({ kind: "auth.made_up" }, admin.call), ["kind"]],
    ["empty range", audit.client.listAuditEntries({ since: timestampFromDate(new Date(2000)), until: timestampFromDate(new Date(1000)) }, admin.call), ["until"]],
    ["negative page size", audit.client.listAuditEntries({ pageSize: -1 }, admin.call), ["page_size"]],
    ["forged page token", audit.client.listAuditEntries({ pageToken: "eyJzIjoxfQ.AAAAAAAAAAAAAAAAAAAAAA" }, admin.call), ["page_token"]],
    ["negative after_seq", audit.client.verifyChain({ afterSeq: -1n }, admin.call), ["after_seq"]],
    ["after_seq past the end", audit.client.verifyChain({ afterSeq: 1n << 40n }, admin.call), ["after_seq"]],
    ["limit over the cap", audit.client.verifyChain({ limit: 10_001 }, admin.call), ["limit"]],
  ];
  for (const [what, call, fields] of cases) {
    const error = await rejection(call);
    t.is(error.code, Code.InvalidArgument, what);
    t.deepEqual(violatedFields(error), fields, what);
  }
});

/** A request every audit RPC accepts as well-formed, so only the role decides. */
function validRequest(method: DescMethod): Record<string, unknown> {
  switch (method.name) {
    case "ListAuditEntries":
    case "VerifyChain":
      return {};
    default:
      throw new Error(`no valid request for ${method.name}: add one`);
  }
}

test.serial("every audit RPC is for admins only: PERMISSION_DENIED to moderators and users, UNAUTHENTICATED without a token", async (t) => {
  t.true(AuditService.methods.every((m) => requiredRoleOf(m) === Role.ADMIN));
  for (const method of AuditService.methods) {
    const call = (headers: { headers: Record<string, string> }) =>
      (audit.client[method.localName as "listAuditEntries"] as (r: Record<string, unknown>, o: unknown) => Promise<unknown>)(validRequest(method), headers);
    for (const caller of [audit.moderation.moderator, cleo]) {
      t.is((await rejection(call(caller.call))).code, Code.PermissionDenied, `${method.name} as ${caller === cleo ? "a user" : "a moderator"}`);
    }
    t.is((await rejection(call(as({})))).code, Code.Unauthenticated, `${method.name} without a token`);
  }
});

test.serial("a redelivered event appends nothing", async (t) => {
  const userId = crypto.randomUUID();
  const eventId = crypto.randomUUID();
  const event = (id: string, reason: string) => ({
    topic: audit.moderationTopic,
    key: userId,
    value: toBinary(UserSuspendedSchema, create(UserSuspendedSchema, { userId, actorId: audit.moderation.moderator.userId, reason, suspendedAt: timestampFromDate(new Date()) })),
    headers: { [EventHeaders.id]: id, [EventHeaders.type]: UserSuspendedSchema.typeName, [EventHeaders.contentType]: PROTOBUF_CONTENT_TYPE },
  });
  await audit.service.bus.publish([event(eventId, "first")]);
  await audit.service.bus.publish([event(eventId, "first"), event(crypto.randomUUID(), "after the replay")]);
  // Same key, same partition: once the later event is in, the replay was handled before it.
  const entries = await entriesUntil(userId, "the event after the replay", (found) => found.some((e) => e.details?.["reason"] === "after the replay"));
  t.deepEqual(entries.map((e) => e.details?.["reason"]), ["first", "after the replay"]);
  t.is(entries.filter((e) => e.sourceEventId === eventId).length, 1);
});

test.serial("the database refuses to change or remove entries", async (t) => {
  for (const statement of ["update audit.entries set subject = 'x' where seq = 1", "delete from audit.entries where seq = 1", "truncate audit.entries"]) {
    const error = await t.throwsAsync(audit.query(statement));
    t.regex(error?.message ?? "", /append-only/, statement);
  }
  t.true((await verifyAll()).intact);
});

test.serial("an entry edited behind the trigger's back fails VerifyChain at that entry, in whole and in slices", async (t) => {
  const { admin } = audit.moderation;
  const suspension = (await audit.entriesAbout(ben.userId)).find((e) => e.kind === "moderation.user_suspended")!;
  // An attacker with database access: triggers off for their session, the reason softened. The cleartext no longer matches its digest.
  await audit.query(`set session_replication_role = replica; update audit.entries set details = '{"reason": "nothing to see"}' where seq = ${suspension.seq}`);
  const whole = await verifyAll();
  t.false(whole.intact);
  t.is(whole.firstBadSeq, suspension.seq);
  t.is(whole.problem, "digest");

  // In slices (about four before the edit, however long the log), following next_after_seq, the same entry is found.
  const limit = Math.max(1, Math.floor(Number(suspension.seq) / 4));
  let afterSeq = 0n;
  let slices = 0;
  for (;;) {
    const slice = await audit.client.verifyChain({ afterSeq, limit }, admin.call);
    slices += 1;
    if (!slice.intact) {
      t.true(slices > 1, "found in a later slice");
      t.is(slice.firstBadSeq, suspension.seq);
      break;
    }
    t.not(slice.nextAfterSeq, 0n, "the slices reached the end without finding the edit");
    afterSeq = slice.nextAfterSeq;
  }

  // An attacker who also recomputes the digest (the salt is in the row) breaks the entry's hash, which covers the digests.
  const stored = async () => chainedOf((await audit.service.database.db.select().from(entries).where(eq(entries.seq, Number(suspension.seq))))[0]!);
  const edited = await stored();
  const detailsDigests = { ...edited.detailsDigests, reason: fieldDigest(edited.detailsSalts!["reason"]!, "nothing to see") };
  await audit.query(`set session_replication_role = replica; update audit.entries set details_digests = '${JSON.stringify(detailsDigests)}' where seq = ${suspension.seq}`);
  const rehashed = await verifyAll();
  t.is(rehashed.firstBadSeq, suspension.seq);
  t.is(rehashed.problem, "hash");

  // One who recomputes the entry's hash as well moves the break to the next entry's link.
  const [next] = await audit.query<{ seq: string }>(`select seq from audit.entries where seq > $1 order by seq limit 1`, [suspension.seq.toString()]);
  t.truthy(next, "the suspension is not the last entry (its lifting follows)");
  const forged = expectedHash(await stored());
  await audit.query(`set session_replication_role = replica; update audit.entries set hash = '${forged}' where seq = ${suspension.seq}`);
  const relinked = await verifyAll();
  t.is(relinked.firstBadSeq, BigInt(next!.seq));
  t.is(relinked.problem, "link");
});
