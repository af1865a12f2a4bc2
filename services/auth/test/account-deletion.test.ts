// DeleteAccount / CancelAccountDeletion / GetAccountDeletion and the durable
// purge scheduler, on the real auth service (PostgreSQL, Redis, Kafka). The
// deletion clock is the test's: the grace period passes by moving it, never
// by waiting. What the other services purge on AccountDeleted is checked
// end to end in tools/test/account-deletion.test.ts.
import test from "ava";
import { Code, type ConnectError } from "@connectrpc/connect";
import { eventually } from "../../runtime/test-support/infra.ts";
import { base32Decode, totpCode, TOTP_PERIOD_SECONDS } from "../src/domain/totp.ts";
import { as, password, rejection, startTestAuth, uniqueEmail, uniqueIp, signedInAccount, violatedFields as fields, type SignedInAccount, type TestAuth } from "./harness.ts";

const GRACE_MS = 7 * 24 * 3600 * 1000;
let deletionOffsetMs = 0;
const deletionClock = () => new Date(Date.now() + deletionOffsetMs);
let totpOffsetMs = 0;
const totpClock = () => Date.now() + totpOffsetMs;

let auth: TestAuth;
test.before(async () => {
  // The poll is fast so the scheduler's own timer is exercised too; nothing is due until the clock moves.
  auth = await startTestAuth({ AUTH_DELETION_GRACE: "7d", AUTH_DELETION_POLL_INTERVAL: "200ms" }, { deletionClock, totpClock });
});
test.after.always(async () => {
  await auth?.close();
});

/** Moves the deletion clock past every grace period scheduled so far. */
const passGrace = () => void (deletionOffsetMs += GRACE_MS + 60_000);

type Account = SignedInAccount;
const account = (label: string): Promise<Account> => signedInAccount(auth, label);

async function login(email: string): Promise<string> {
  const response = await auth.client.login({ identity: { case: "email", value: email }, password }, as({ ip: uniqueIp() }));
  return response.tokens?.accessToken ?? "";
}

async function state(userId: string): Promise<{ deletions: number; openSessions: number; users: number; scheduled: number; deleted: number }> {
  const [row] = await auth.query<{ deletions: number; openSessions: number; users: number; scheduled: number; deleted: number }>(
    `select (select count(*) from auth.account_deletions where user_id = $1)::int as deletions,
            (select count(*) from auth.sessions where user_id = $1 and revoked_at is null)::int as "openSessions",
            (select count(*) from auth.users where id = $1)::int as users,
            (select count(*) from auth.outbox_events where key = $1::text and type = 'aviary.events.v1.AccountDeletionScheduled')::int as scheduled,
            (select count(*) from auth.outbox_events where key = $1::text and type = 'aviary.events.v1.AccountDeleted')::int as deleted`,
    [userId],
  );
  return row!;
}

test.serial("refused: anonymous, wrong password, a code without two-factor, malformed input — nothing written, sessions stay", async (t) => {
  const ben = await account("del-refused");
  const before = await state(ben.userId);

  t.is((await rejection(auth.client.deleteAccount({ proof: { case: "password", value: password } }))).code, Code.Unauthenticated);

  const wrong = await rejection(auth.client.deleteAccount({ proof: { case: "password", value: "not-the-password" } }, as({ token: ben.token })));
  t.is(wrong.code, Code.InvalidArgument);
  t.deepEqual(fields(wrong), ["password"]);

  const noProof = await rejection(auth.client.deleteAccount({}, as({ token: ben.token })));
  t.is(noProof.code, Code.InvalidArgument);
  t.deepEqual(fields(noProof), ["proof"]);

  const malformed = await rejection(auth.client.deleteAccount({ proof: { case: "code", value: "12ab" } }, as({ token: ben.token })));
  t.is(malformed.code, Code.InvalidArgument);
  t.deepEqual(fields(malformed), ["code"]);

  const noSecondFactor = await rejection(auth.client.deleteAccount({ proof: { case: "code", value: "123456" } }, as({ token: ben.token })));
  t.is(noSecondFactor.code, Code.InvalidArgument);
  t.deepEqual(fields(noSecondFactor), ["code"]);

  const badId = await rejection(auth.client.getAccountDeletion({ userId: "not-a-uuid" }, as({ token: ben.token })));
  t.is(badId.code, Code.InvalidArgument);
  t.deepEqual(fields(badId), ["user_id"]);

  t.deepEqual(await state(ben.userId), before);
  t.is(before.openSessions, 1);
  t.is((await auth.client.getMe({}, as({ token: ben.token }))).userId, ben.userId);
});

test.serial("with two-factor on: a wrong code or recovery code is refused; a current code schedules the deletion", async (t) => {
  const ben = await account("del-2fa");
  const started = await auth.client.startTotpEnrollment({ password }, as({ token: ben.token }));
  const secret = base32Decode(started.secret);
  totpOffsetMs += TOTP_PERIOD_SECONDS * 1000;
  await auth.client.confirmTotpEnrollment({ code: totpCode(secret, totpClock()) }, as({ token: ben.token }));
  totpOffsetMs += TOTP_PERIOD_SECONDS * 1000;

  const current = totpCode(secret, totpClock());
  const wrongCode = String((Number(current) + 1) % 1_000_000).padStart(6, "0");
  const wrong = await rejection(auth.client.deleteAccount({ proof: { case: "code", value: wrongCode } }, as({ token: ben.token })));
  t.is(wrong.code, Code.InvalidArgument);
  t.deepEqual(fields(wrong), ["code"]);
  const wrongRecovery = await rejection(auth.client.deleteAccount({ proof: { case: "recoveryCode", value: "AAAA-BBBB-CCCC-DDDD" } }, as({ token: ben.token })));
  t.is(wrongRecovery.code, Code.InvalidArgument);
  t.deepEqual(fields(wrongRecovery), ["recovery_code"]);
  t.is((await state(ben.userId)).deletions, 0);

  const scheduled = await auth.client.deleteAccount({ proof: { case: "code", value: current } }, as({ token: ben.token }));
  t.truthy(scheduled.deletion?.purgeAt);
  t.is((await state(ben.userId)).deletions, 1);
  // The step is spent: the same code cannot prove anything again.
  await auth.client.cancelAccountDeletion({}, as({ token: await secondFactorLogin(ben.email, secret) }));
});

async function secondFactorLogin(email: string, secret: Buffer): Promise<string> {
  const first = await auth.client.login({ identity: { case: "email", value: email }, password }, as({ ip: uniqueIp() }));
  totpOffsetMs += TOTP_PERIOD_SECONDS * 1000;
  const done = await auth.client.verifySecondFactor({ challengeToken: first.challengeToken, factor: { case: "code", value: totpCode(secret, totpClock()) } });
  if (done.pendingDeletion === undefined) throw new Error("the second-factor login should report the pending deletion");
  return done.tokens?.accessToken ?? "";
}

test.serial("scheduling ends every session; a login in the grace period is told and can cancel; others are refused; nothing is purged after a cancel", async (t) => {
  const ben = await account("del-cancel");
  const phone = await login(ben.email); // a second device
  const ana = await account("del-other");

  const response = await auth.client.deleteAccount({ proof: { case: "password", value: password } }, as({ token: ben.token }));
  const requestedAt = Number(response.deletion!.requestedAt!.seconds) * 1000;
  t.is(Number(response.deletion!.purgeAt!.seconds) * 1000 - requestedAt, GRACE_MS);
  let now = await state(ben.userId);
  t.is(now.openSessions, 0, "every session ended at once");
  t.is(now.scheduled, 1);
  for (const token of [ben.token, phone]) t.is((await rejection(auth.client.getMe({}, as({ token })))).code, Code.Unauthenticated);

  const again = await auth.client.login({ identity: { case: "email", value: ben.email }, password }, as({ ip: uniqueIp() }));
  t.deepEqual(again.pendingDeletion?.purgeAt, response.deletion?.purgeAt, "the login says the account is going");
  const token = again.tokens?.accessToken ?? "";
  t.deepEqual((await auth.client.getAccountDeletion({}, as({ token }))).deletion?.purgeAt, response.deletion?.purgeAt);
  t.is((await rejection(auth.client.deleteAccount({ proof: { case: "password", value: password } }, as({ token })))).code, Code.FailedPrecondition);

  // Someone else can neither see nor cancel it, and has nothing of their own to cancel.
  t.is((await rejection(auth.client.getAccountDeletion({ userId: ben.userId }, as({ token: ana.token })))).code, Code.PermissionDenied);
  t.is((await rejection(auth.client.cancelAccountDeletion({ userId: ben.userId }, as({ token: ana.token })))).code, Code.PermissionDenied);
  t.is((await rejection(auth.client.cancelAccountDeletion({}, as({ token: ana.token })))).code, Code.FailedPrecondition);
  t.is((await rejection(auth.client.cancelAccountDeletion({ userId: ben.userId }))).code, Code.Unauthenticated);
  t.is((await state(ben.userId)).deletions, 1);
  t.is((await auth.client.getAccountDeletion({}, as({ token: ana.token }))).deletion, undefined);

  await auth.client.cancelAccountDeletion({ userId: ben.userId }, as({ token }));
  t.is((await auth.client.getAccountDeletion({}, as({ token }))).deletion, undefined);
  passGrace();
  await auth.service.purgeDueDeletions();
  now = await state(ben.userId);
  t.is(now.users, 1, "the account stays");
  t.is(now.deleted, 0);
  t.is((await auth.client.getMe({}, as({ token }))).userId, ben.userId);
  const [cancelled] = await auth.query<{ n: number }>(
    "select count(*)::int as n from auth.outbox_events where key = $1 and type = 'aviary.events.v1.AccountDeletionCancelled'",
    [ben.userId],
  );
  t.is(cancelled?.n, 1);
});

test.serial("the scheduler purges a due deletion once: credentials gone, a tombstone without personal data, one AccountDeleted", async (t) => {
  const ben = await account("del-purge");
  await auth.client.deleteAccount({ proof: { case: "password", value: password } }, as({ token: ben.token }));
  const during = await auth.client.login({ identity: { case: "email", value: ben.email }, password }, as({ ip: uniqueIp() }));
  t.is(await auth.service.purgeDueDeletions(), 0, "not due yet");
  t.is((await state(ben.userId)).users, 1);

  passGrace();
  // The scheduler's own timer (AUTH_DELETION_POLL_INTERVAL) finds it.
  await eventually("the purge", async () => (await state(ben.userId)).users === 0, 30_000);
  const after = await state(ben.userId);
  t.is(after.deleted, 1);
  const [tombstone] = await auth.query<Record<string, unknown>>("select * from auth.account_deletions where user_id = $1", [ben.userId]);
  t.deepEqual(Object.keys(tombstone ?? {}).sort(), ["purge_at", "purged_at", "requested_at", "user_id"]);
  t.truthy(tombstone?.["purged_at"]);
  const [sessions] = await auth.query<{ n: number }>("select count(*)::int as n from auth.sessions where user_id = $1", [ben.userId]);
  t.is(sessions?.n, 0);

  // The session opened during the grace period ended with the account; the password no longer opens one.
  t.is((await rejection(auth.client.getMe({}, as({ token: during.tokens?.accessToken ?? "" })))).code, Code.Unauthenticated);
  t.is((await rejection(auth.client.login({ identity: { case: "email", value: ben.email }, password }, as({ ip: uniqueIp() })))).code, Code.Unauthenticated);

  // Again: nothing more happens.
  t.is(await auth.service.purgeDueDeletions(), 0);
  t.is((await state(ben.userId)).deleted, 1);
  // The address is free again: a new account, a new id.
  const { userId } = await auth.client.register({ identity: { case: "email", value: ben.email }, password });
  t.not(userId, ben.userId);
});
