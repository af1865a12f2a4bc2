// Two-factor sign-in against real PostgreSQL, Redis and Kafka: enrolment,
// login with a challenge, recovery codes, limits, replay and disabling. The
// TOTP clock is injected, so a test moves to the next 30-second step instead
// of waiting for it. Serial: the tests share that clock.
import test from "ava";
import { Code, type ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { base32Decode, totpCode, TOTP_PERIOD_SECONDS } from "../src/domain/totp.ts";
import { as, password, rejection, startTestAuth, uniqueEmail, uniqueIp, signedInAccount, violatedFields as fields, type SignedInAccount, type TestAuth } from "./harness.ts";

let offsetMs = 0;
const clock = () => Date.now() + offsetMs;
/** The next TOTP step: a code of a step already used is a replay. */
const nextStep = () => void (offsetMs += TOTP_PERIOD_SECONDS * 1000);

let auth: TestAuth;
test.before(async () => {
  auth = await startTestAuth({ AUTH_2FA_ATTEMPTS_PER_CHALLENGE: "3", AUTH_2FA_FAILURES_PER_ACCOUNT: "5" }, { totpClock: clock });
});
test.after.always(async () => {
  await auth?.close();
});

type Account = SignedInAccount;
const account = (label: string): Promise<Account> => signedInAccount(auth, label);

/** Enrols and confirms an authenticator for `who`; returns its secret and recovery codes. */
async function enrol(who: Account): Promise<{ secret: Buffer; recoveryCodes: string[] }> {
  const started = await auth.client.startTotpEnrollment({ password }, as({ token: who.token }));
  const secret = base32Decode(started.secret);
  nextStep();
  const confirmed = await auth.client.confirmTotpEnrollment({ code: totpCode(secret, clock()) }, as({ token: who.token }));
  return { secret, recoveryCodes: confirmed.recoveryCodes };
}

async function challenge(who: Account): Promise<string> {
  const login = await auth.client.login({ identity: { case: "email", value: who.email }, password, deviceName: "second-factor" }, as({ ip: uniqueIp() }));
  if (!login.secondFactorRequired) throw new Error("expected a second factor to be required");
  return login.challengeToken;
}

async function counts(userId: string): Promise<{ sessions: number; events: number; codes: number }> {
  const [row] = await auth.query<{ sessions: number; events: number; codes: number }>(
    `select (select count(*) from auth.sessions where user_id = $1)::int as sessions,
            (select count(*) from auth.outbox_events where key = $1::text)::int as events,
            (select count(*) from auth.recovery_codes where user_id = $1 and used_at is null)::int as codes`,
    [userId],
  );
  return row!;
}

test.serial("enrol → confirm → login needs the code → the code finishes it; a replayed code is refused", async (t) => {
  const ada = await account("totp");
  const wrongPassword = await rejection(auth.client.startTotpEnrollment({ password: "not-the-password" }, as({ token: ada.token })));
  t.is(wrongPassword.code, Code.InvalidArgument);
  t.deepEqual(fields(wrongPassword), ["password"]);

  const started = await auth.client.startTotpEnrollment({ password }, as({ token: ada.token }));
  t.regex(started.secret, /^[A-Z2-7]{32}$/, "160 bits in base32");
  const uri = new URL(started.otpauthUri);
  t.is(uri.protocol, "otpauth:");
  t.is(uri.host, "totp");
  t.is(decodeURIComponent(uri.pathname), `/Aviary:${ada.email}`);
  t.is(uri.searchParams.get("secret"), started.secret);
  t.is(uri.searchParams.get("issuer"), "Aviary");
  t.is(started.digits, 6);
  t.is(started.periodSeconds, 30);
  const [stored] = await auth.query<{ sealed: Buffer }>("select secret_sealed as sealed from auth.totp_factors where user_id = $1", [ada.userId]);
  t.false(stored!.sealed.includes(base32Decode(started.secret)), "the secret is stored sealed, not as itself");

  // Not on until confirmed: login still answers tokens.
  t.false((await auth.client.getMe({}, as({ token: ada.token }))).twoFactorEnabled);
  const early = await auth.client.login({ identity: { case: "email", value: ada.email }, password }, as({ ip: uniqueIp() }));
  t.false(early.secondFactorRequired);

  const secret = base32Decode(started.secret);
  const wrong = await rejection(auth.client.confirmTotpEnrollment({ code: totpCode(secret, clock() + 600_000) }, as({ token: ada.token })));
  t.is(wrong.code, Code.InvalidArgument);
  t.deepEqual(fields(wrong), ["code"]);
  nextStep();
  const confirmed = await auth.client.confirmTotpEnrollment({ code: totpCode(secret, clock()) }, as({ token: ada.token }));
  t.is(confirmed.recoveryCodes.length, 10);
  t.is(new Set(confirmed.recoveryCodes).size, 10);
  for (const code of confirmed.recoveryCodes) t.regex(code, /^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/);
  t.true((await auth.client.getMe({}, as({ token: ada.token }))).twoFactorEnabled);
  const [hashes] = await auth.query<{ plain: number }>("select count(*)::int as plain from auth.recovery_codes where user_id = $1 and code_hash = any($2)", [ada.userId, confirmed.recoveryCodes]);
  t.is(hashes!.plain, 0, "recovery codes are stored hashed");

  const before = await counts(ada.userId);
  const login = await auth.client.login({ identity: { case: "email", value: ada.email }, password, deviceName: "pixel" }, as({ ip: uniqueIp() }));
  t.true(login.secondFactorRequired);
  t.is(login.tokens, undefined, "no tokens before the second factor");
  t.is(login.sessionId, "");
  t.true(login.challengeExpiresInSeconds > 0 && login.challengeExpiresInSeconds <= 300);
  t.is((await counts(ada.userId)).sessions, before.sessions, "no session yet");
  t.is((await rejection(auth.client.getMe({}, as({ token: login.challengeToken })))).code, Code.Unauthenticated, "a challenge is not an access token");

  const wrongCode = await rejection(auth.client.verifySecondFactor({ challengeToken: login.challengeToken, factor: { case: "code", value: totpCode(secret, clock() + 900_000) } }));
  t.is(wrongCode.code, Code.InvalidArgument);
  t.deepEqual(fields(wrongCode), ["code"]);
  nextStep();
  const code = totpCode(secret, clock());
  const verified = await auth.client.verifySecondFactor({ challengeToken: login.challengeToken, factor: { case: "code", value: code } });
  t.is(verified.userId, ada.userId);
  const me = await auth.client.getMe({}, as({ token: verified.tokens?.accessToken ?? "" }));
  t.is(me.sessionId, verified.sessionId);
  const sessions = await auth.client.listSessions({}, as({ token: verified.tokens?.accessToken ?? "" }));
  t.is(sessions.sessions.find((s) => s.current)?.deviceName, "pixel", "the session carries the login's device name");

  // The challenge is spent, and the same code (same step) cannot open another session.
  t.is((await rejection(auth.client.verifySecondFactor({ challengeToken: login.challengeToken, factor: { case: "code", value: code } }))).code, Code.Unauthenticated);
  const replay = await rejection(auth.client.verifySecondFactor({ challengeToken: await challenge(ada), factor: { case: "code", value: code } }));
  t.is(replay.code, Code.InvalidArgument);
  t.deepEqual(fields(replay), ["code"]);
  t.regex(replay.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.description ?? "", /already used/);
});

test.serial("a recovery code works once; a second use fails", async (t) => {
  const bea = await account("recovery");
  const { recoveryCodes } = await enrol(bea);
  const first = await auth.client.verifySecondFactor({ challengeToken: await challenge(bea), factor: { case: "recoveryCode", value: recoveryCodes[0]!.toLowerCase().replaceAll("-", " ") } });
  t.is(first.userId, bea.userId, "case, dashes and spaces do not matter");
  t.is(first.recoveryCodesRemaining, 9);
  t.truthy(first.tokens?.accessToken);
  const before = await counts(bea.userId);
  const again = await rejection(auth.client.verifySecondFactor({ challengeToken: await challenge(bea), factor: { case: "recoveryCode", value: recoveryCodes[0]! } }));
  t.is(again.code, Code.InvalidArgument);
  t.deepEqual(fields(again), ["recovery_code"]);
  t.deepEqual(await counts(bea.userId), { ...before, events: before.events + 1 }, "nothing written but the refusal, for the audit log");
  const types = await auth.query<{ type: string }>("select type from auth.outbox_events where key = $1 order by seq", [bea.userId]);
  t.deepEqual(
    types.map((r) => r.type).filter((type) => !type.endsWith("UserLoggedIn")),
    ["aviary.events.v1.UserRegistered", "aviary.events.v1.TwoFactorEnabled", "aviary.events.v1.RecoveryCodeUsed", "aviary.events.v1.SecondFactorFailed"],
  );
});

test.serial("wrong codes are limited per challenge and per account", async (t) => {
  const cy = await account("limits");
  const { secret } = await enrol(cy);
  const wrong = () => totpCode(secret, clock() + 3_600_000);
  // Per challenge: three attempts, then the challenge is gone.
  const first = await challenge(cy);
  for (let i = 0; i < 3; i += 1) t.is((await rejection(auth.client.verifySecondFactor({ challengeToken: first, factor: { case: "code", value: wrong() } }))).code, Code.InvalidArgument);
  nextStep();
  const exhausted = await rejection(auth.client.verifySecondFactor({ challengeToken: first, factor: { case: "code", value: totpCode(secret, clock()) } }));
  t.is(exhausted.code, Code.ResourceExhausted);
  t.is((await rejection(auth.client.verifySecondFactor({ challengeToken: first, factor: { case: "code", value: totpCode(secret, clock()) } }))).code, Code.Unauthenticated, "then it is gone");
  // Per account: five wrong codes across challenges lock the account's codes, even a right one on a fresh challenge.
  const second = await challenge(cy);
  for (let i = 0; i < 2; i += 1) await rejection(auth.client.verifySecondFactor({ challengeToken: second, factor: { case: "code", value: wrong() } }));
  const before = await counts(cy.userId);
  const locked = await rejection(auth.client.verifySecondFactor({ challengeToken: await challenge(cy), factor: { case: "code", value: totpCode(secret, clock()) } }));
  t.is(locked.code, Code.ResourceExhausted);
  t.regex(locked.rawMessage, /this account/);
  t.true(Number(locked.metadata.get("retry-after")) > 0);
  t.deepEqual(await counts(cy.userId), before, "no session, no event");
});

test.serial("disabling needs fresh proof; afterwards login answers tokens again", async (t) => {
  const dee = await account("disable");
  const { secret, recoveryCodes } = await enrol(dee);
  const wrong = await rejection(auth.client.disableTwoFactor({ proof: { case: "password", value: "not-the-password" } }, as({ token: dee.token })));
  t.is(wrong.code, Code.InvalidArgument);
  t.deepEqual(fields(wrong), ["password"]);
  const wrongCode = await rejection(auth.client.disableTwoFactor({ proof: { case: "code", value: totpCode(secret, clock() + 3_600_000) } }, as({ token: dee.token })));
  t.deepEqual(fields(wrongCode), ["code"]);
  t.true((await auth.client.getMe({}, as({ token: dee.token }))).twoFactorEnabled, "still on");
  nextStep();
  await auth.client.disableTwoFactor({ proof: { case: "code", value: totpCode(secret, clock()) } }, as({ token: dee.token }));
  t.false((await auth.client.getMe({}, as({ token: dee.token }))).twoFactorEnabled);
  const login = await auth.client.login({ identity: { case: "email", value: dee.email }, password }, as({ ip: uniqueIp() }));
  t.false(login.secondFactorRequired);
  t.truthy(login.tokens?.accessToken);
  t.is((await counts(dee.userId)).codes, 0, "its recovery codes are gone");
  t.is((await rejection(auth.client.verifySecondFactor({ challengeToken: "x".repeat(43), factor: { case: "recoveryCode", value: recoveryCodes[1]! } }))).code, Code.Unauthenticated);
  const again = await rejection(auth.client.disableTwoFactor({ proof: { case: "password", value: password } }, as({ token: dee.token })));
  t.is(again.code, Code.FailedPrecondition);
  const [event] = await auth.query<{ n: number }>("select count(*)::int as n from auth.outbox_events where key = $1 and type = 'aviary.events.v1.TwoFactorDisabled'", [dee.userId]);
  t.is(event!.n, 1);
});

test.serial("other users' attempts are refused and change nothing (only the refusal is recorded)", async (t) => {
  const eve = await account("eve");
  const fay = await account("fay");
  const { recoveryCodes: eveCodes } = await enrol(eve);
  const { secret: faySecret } = await enrol(fay);
  const before = await counts(fay.userId);
  // Eve's recovery code against Fay's sign-in, and Eve's own token at Fay's enrolment: nothing of Fay's moves.
  const mixed = await rejection(auth.client.verifySecondFactor({ challengeToken: await challenge(fay), factor: { case: "recoveryCode", value: eveCodes[0]! } }));
  t.is(mixed.code, Code.InvalidArgument);
  t.deepEqual(fields(mixed), ["recovery_code"]);
  nextStep();
  const faysCodeForEve = await rejection(auth.client.verifySecondFactor({ challengeToken: await challenge(eve), factor: { case: "code", value: totpCode(faySecret, clock()) } }));
  t.is(faysCodeForEve.code, Code.InvalidArgument);
  t.deepEqual(fields(faysCodeForEve), ["code"]);
  const stranger = await account("stranger");
  t.is((await rejection(auth.client.confirmTotpEnrollment({ code: "123456" }, as({ token: stranger.token })))).code, Code.FailedPrecondition);
  t.is((await rejection(auth.client.disableTwoFactor({ proof: { case: "password", value: password } }, as({ token: stranger.token })))).code, Code.FailedPrecondition);
  // An enrolment already on cannot be replaced without disabling it first.
  t.is((await rejection(auth.client.startTotpEnrollment({ password }, as({ token: fay.token })))).code, Code.FailedPrecondition);
  // Eve's recovery code at Fay's sign-in is a refusal on Fay's account, for the audit log.
  t.deepEqual(await counts(fay.userId), { ...before, events: before.events + 1 });
  t.is((await counts(eve.userId)).codes, 10, "Eve's code was not spent on Fay's account");
  for (const call of [auth.client.startTotpEnrollment({ password }), auth.client.confirmTotpEnrollment({ code: "123456" }), auth.client.disableTwoFactor({ proof: { case: "password", value: password } })]) {
    t.is((await rejection(call)).code, Code.Unauthenticated, "enrolment and disabling need an access token");
  }
});
