// Registration, verification, login and sessions against real PostgreSQL,
// Redis and Kafka.
import test from "ava";
import { Code, type ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { as, password, rejection, startTestAuth, uniqueEmail, uniqueIp, type TestAuth } from "./harness.ts";

let auth: TestAuth;
test.before(async () => {
  auth = await startTestAuth();
});
test.after.always(async () => {
  await auth?.close();
});

function violations(error: ConnectError): Array<{ field: string; description: string }> {
  return error.findDetails(BadRequestSchema).flatMap((detail) => detail.fieldViolations.map(({ field, description }) => ({ field, description })));
}

async function countUsers(where: string, params: unknown[]): Promise<number> {
  const rows = await auth.query<{ n: number }>(`select count(*)::int as n from auth.users where ${where}`, params);
  return rows[0]?.n ?? -1;
}

test("register stores a normalised email, sends a code, and verification marks it verified", async (t) => {
  const email = uniqueEmail("Ada");
  const registered = await auth.client.register({ identity: { case: "email", value: email.toUpperCase() }, password });
  t.is(registered.identity, email.toLowerCase());
  t.true(registered.verificationRequired);

  const code = await auth.codeFor(email.toLowerCase(), "verify");
  t.regex(code, /^[0-9]{6}$/);
  const verified = await auth.client.verifyIdentity({ identity: { case: "email", value: email }, code });
  t.is(verified.userId, registered.userId);

  const login = await auth.client.login({ identity: { case: "email", value: email }, password, deviceName: "test" }, as({ ip: uniqueIp() }));
  const me = await auth.client.getMe({}, as({ token: login.tokens?.accessToken ?? "" }));
  t.is(me.userId, registered.userId);
  t.is(me.email, email.toLowerCase());
  t.true(me.emailVerified);
  t.false(me.phoneVerified);

  const again = await rejection(auth.client.verifyIdentity({ identity: { case: "email", value: email }, code }));
  t.is(again.code, Code.InvalidArgument, "a code works once");
});

test("register by phone normalises to E.164", async (t) => {
  const local = String(Date.now() % 10_000).padStart(4, "0");
  const registered = await auth.client.register({ identity: { case: "phone", value: `+1 (415) 555-${local}` }, password });
  t.is(registered.identity, `+1415555${local}`);
  t.regex(await auth.codeFor(`+1415555${local}`, "verify"), /^[0-9]{6}$/);
  const login = await auth.client.login({ identity: { case: "phone", value: `+1415555${local}` }, password }, as({ ip: uniqueIp() }));
  t.is(login.userId, registered.userId);
});

test("a duplicate identity is ALREADY_EXISTS, case-insensitively, and writes nothing", async (t) => {
  const email = uniqueEmail("dup");
  await auth.client.register({ identity: { case: "email", value: email }, password });
  // Outbox rows naming the address: the UserRegistered event and the code delivery.
  const eventsAbout = async () =>
    (await auth.query<{ n: number }>("select count(*)::int as n from auth.outbox_events where position(convert_to($1, 'UTF8') in payload) > 0", [email]))[0]?.n;
  t.is(await eventsAbout(), 2, "the first registration's event and its code delivery");
  const error = await rejection(auth.client.register({ identity: { case: "email", value: email.toUpperCase() }, password: "another-fine-passphrase" }));
  t.is(error.code, Code.AlreadyExists);
  t.is(await countUsers("email = $1", [email]), 1);
  t.is(await eventsAbout(), 2, "no event and no code for the rejected registration");
});

test("a wrong code is INVALID_ARGUMENT on `code`; too many wrong codes lock it (RESOURCE_EXHAUSTED)", async (t) => {
  const email = uniqueEmail("otp");
  await auth.client.register({ identity: { case: "email", value: email }, password });
  const right = await auth.codeFor(email, "verify");
  const wrong = right === "000000" ? "111111" : "000000";
  const first = await rejection(auth.client.verifyIdentity({ identity: { case: "email", value: email }, code: wrong }));
  t.is(first.code, Code.InvalidArgument);
  t.deepEqual(violations(first).map((v) => v.field), ["code"]);
  for (let attempt = 2; attempt <= 4; attempt += 1) {
    t.is((await rejection(auth.client.verifyIdentity({ identity: { case: "email", value: email }, code: wrong }))).code, Code.InvalidArgument);
  }
  const fifth = await rejection(auth.client.verifyIdentity({ identity: { case: "email", value: email }, code: wrong }));
  t.is(fifth.code, Code.ResourceExhausted);
  // The right code no longer works: it was dropped with the lock.
  const late = await rejection(auth.client.verifyIdentity({ identity: { case: "email", value: email }, code: right }));
  t.is(late.code, Code.InvalidArgument);
  t.is(await countUsers("email = $1 and email_verified_at is not null", [email]), 0);
});

test("an expired code is refused", async (t) => {
  // Long enough for the asynchronous delivery (a code that expires before it is sent is not sent at all).
  const shortLived = await startTestAuth({ AUTH_CODE_TTL: "3s" });
  t.teardown(() => shortLived.close());
  const email = uniqueEmail("expiry");
  const issuedBy = Date.now();
  await shortLived.client.register({ identity: { case: "email", value: email }, password });
  const expiresBy = Date.now() + 3_000;
  const code = await shortLived.codeFor(email, "verify", { timeoutMs: expiresBy - issuedBy });
  // Waiting out a known deadline (the code's TTL), not guessing at one.
  await new Promise((resolve) => setTimeout(resolve, expiresBy - Date.now() + 200));
  const error = await rejection(shortLived.client.verifyIdentity({ identity: { case: "email", value: email }, code }));
  t.is(error.code, Code.InvalidArgument);
  t.is((await shortLived.query<{ n: number }>("select count(*)::int as n from auth.users where email_verified_at is not null"))[0]?.n, 0);
});

test("asking for codes is limited per identity, and answers the same for unknown identities", async (t) => {
  const email = uniqueEmail("codes");
  await auth.client.register({ identity: { case: "email", value: email }, password });
  // Registration sent one code; four more fit in the hourly limit of five.
  for (let i = 0; i < 4; i += 1) await auth.client.sendVerificationCode({ identity: { case: "email", value: email } });
  const error = await rejection(auth.client.sendVerificationCode({ identity: { case: "email", value: email } }));
  t.is(error.code, Code.ResourceExhausted);
  t.true(Number(error.metadata.get("retry-after")) > 0);

  const unknown = await auth.client.sendVerificationCode({ identity: { case: "email", value: uniqueEmail("nobody") } });
  t.is(unknown.expiresInSeconds, 600);
});

test("wrong passwords are UNAUTHENTICATED; after five from one address that address waits (retry info), the owner elsewhere still signs in", async (t) => {
  const email = uniqueEmail("brute");
  await auth.client.register({ identity: { case: "email", value: email }, password });
  const attacker = uniqueIp();
  for (let i = 0; i < 5; i += 1) {
    const error = await rejection(auth.client.login({ identity: { case: "email", value: email }, password: `wrong-password-${i}` }, as({ ip: attacker })));
    t.is(error.code, Code.Unauthenticated);
  }
  const locked = await rejection(auth.client.login({ identity: { case: "email", value: email }, password }, as({ ip: attacker })));
  t.is(locked.code, Code.ResourceExhausted, "from the attacking address even the right password waits out the window");
  const retryAfter = Number(locked.metadata.get("retry-after"));
  t.true(retryAfter > 0 && retryAfter <= 900, `retry-after ${retryAfter}`);
  const sessions = () => auth.query<{ n: number }>("select count(*)::int as n from auth.sessions s join auth.users u on u.id = s.user_id where u.email = $1", [email]).then((r) => r[0]?.n);
  t.is(await sessions(), 0);

  // The owner, from another address, is not held up by the attacker's failures.
  const victim = uniqueIp();
  const owner = await auth.client.login({ identity: { case: "email", value: email }, password }, as({ ip: victim }));
  t.truthy(owner.tokens?.accessToken);
  t.is(await sessions(), 1);
  // A success clears that address's counter (and the account-wide one): four wrong ones and the right one still work from there.
  for (let i = 0; i < 4; i += 1) await rejection(auth.client.login({ identity: { case: "email", value: email }, password: `typo-${i}` }, as({ ip: victim })));
  t.truthy((await auth.client.login({ identity: { case: "email", value: email }, password }, as({ ip: victim }))).tokens?.accessToken);
  // The attacker's address stays blocked for this account.
  t.is((await rejection(auth.client.login({ identity: { case: "email", value: email }, password }, as({ ip: attacker })))).code, Code.ResourceExhausted);
});

test("the account-wide ceiling still stops guessing spread over many addresses", async (t) => {
  const ceiling = await startTestAuth({ AUTH_LOGIN_FAILURES_PER_IDENTITY_IP: "2", AUTH_LOGIN_FAILURES_PER_IDENTITY: "6" });
  t.teardown(() => ceiling.close());
  const email = uniqueEmail("spread");
  await ceiling.client.register({ identity: { case: "email", value: email }, password });
  // Three addresses, two failures each: each within its own budget, together at the ceiling.
  for (let n = 0; n < 3; n += 1) {
    const ip = uniqueIp();
    for (let i = 0; i < 2; i += 1) t.is((await rejection(ceiling.client.login({ identity: { case: "email", value: email }, password: `guess-${n}-${i}` }, as({ ip })))).code, Code.Unauthenticated);
  }
  const blocked = await rejection(ceiling.client.login({ identity: { case: "email", value: email }, password }, as({ ip: uniqueIp() })));
  t.is(blocked.code, Code.ResourceExhausted, "a fresh address with the right password waits too");
  t.regex(blocked.rawMessage, /for this account$/);
  t.true(Number(blocked.metadata.get("retry-after")) > 0);
});

test("failed logins are limited per client IP across identities", async (t) => {
  const perIp = await startTestAuth({ AUTH_LOGIN_FAILURES_PER_IP: "3" });
  t.teardown(() => perIp.close());
  const ip = uniqueIp();
  for (let i = 0; i < 3; i += 1) {
    const error = await rejection(perIp.client.login({ identity: { case: "email", value: uniqueEmail("spray") }, password }, as({ ip })));
    t.is(error.code, Code.Unauthenticated);
  }
  const blocked = await rejection(perIp.client.login({ identity: { case: "email", value: uniqueEmail("spray") }, password }, as({ ip })));
  t.is(blocked.code, Code.ResourceExhausted);
  // Another address is not affected.
  const other = await rejection(perIp.client.login({ identity: { case: "email", value: uniqueEmail("spray") }, password }, as({ ip: uniqueIp() })));
  t.is(other.code, Code.Unauthenticated);
});

test("an unknown identity and a wrong password get the same answer", async (t) => {
  const email = uniqueEmail("known");
  await auth.client.register({ identity: { case: "email", value: email }, password });
  const wrongPassword = await rejection(auth.client.login({ identity: { case: "email", value: email }, password: "not-the-password" }, as({ ip: uniqueIp() })));
  const unknown = await rejection(auth.client.login({ identity: { case: "email", value: uniqueEmail("unknown") }, password }, as({ ip: uniqueIp() })));
  t.is(wrongPassword.code, Code.Unauthenticated);
  t.is(unknown.code, wrongPassword.code);
  t.is(unknown.rawMessage, wrongPassword.rawMessage);
});

test("sessions are listed newest first with opaque page tokens; tampered tokens are rejected", async (t) => {
  const email = uniqueEmail("devices");
  await auth.client.register({ identity: { case: "email", value: email }, password });
  const logins = [];
  for (const device of ["phone", "tablet", "laptop", "desktop", "watch"]) {
    logins.push(await auth.client.login({ identity: { case: "email", value: email }, password, deviceName: device }, as({ ip: uniqueIp() })));
  }
  const token = logins.at(-1)?.tokens?.accessToken ?? "";
  const first = await auth.client.listSessions({ pageSize: 2 }, as({ token }));
  t.deepEqual(first.sessions.map((s) => s.deviceName), ["watch", "desktop"]);
  t.true(first.sessions[0]?.current);
  t.not(first.nextPageToken, "");
  const second = await auth.client.listSessions({ pageSize: 2, pageToken: first.nextPageToken }, as({ token }));
  t.deepEqual(second.sessions.map((s) => s.deviceName), ["laptop", "tablet"]);
  const third = await auth.client.listSessions({ pageSize: 2, pageToken: second.nextPageToken }, as({ token }));
  t.deepEqual(third.sessions.map((s) => s.deviceName), ["phone"]);
  t.is(third.nextPageToken, "");

  const [body, mac] = first.nextPageToken.split(".");
  const forged = Buffer.from(JSON.stringify({ createdAt: new Date().toISOString(), id: "ffffffff-ffff-4fff-8fff-ffffffffffff" })).toString("base64url");
  for (const tampered of [`${forged}.${mac}`, `${body}.${mac?.slice(0, -2)}AA`, "garbage", `${body}`]) {
    const error = await rejection(auth.client.listSessions({ pageSize: 2, pageToken: tampered }, as({ token })));
    t.is(error.code, Code.InvalidArgument);
    t.deepEqual(violations(error).map((v) => v.field), ["page_token"]);
  }
});

test("a user cannot see or revoke another user's sessions", async (t) => {
  const alice = uniqueEmail("alice");
  const bob = uniqueEmail("bob");
  await auth.client.register({ identity: { case: "email", value: alice }, password });
  await auth.client.register({ identity: { case: "email", value: bob }, password });
  const aliceLogin = await auth.client.login({ identity: { case: "email", value: alice }, password }, as({ ip: uniqueIp() }));
  const bobLogin = await auth.client.login({ identity: { case: "email", value: bob }, password }, as({ ip: uniqueIp() }));
  const bobToken = bobLogin.tokens?.accessToken ?? "";

  const bobSees = await auth.client.listSessions({}, as({ token: bobToken }));
  t.deepEqual(bobSees.sessions.map((s) => s.sessionId), [bobLogin.sessionId]);

  const error = await rejection(auth.client.revokeSession({ sessionId: aliceLogin.sessionId }, as({ token: bobToken })));
  t.is(error.code, Code.NotFound, "someone else's session looks like no session");
  const aliceMe = await auth.client.getMe({}, as({ token: aliceLogin.tokens?.accessToken ?? "" }));
  t.is(aliceMe.userId, aliceLogin.userId, "alice's session still works");
});

test("protected RPCs need a token", async (t) => {
  for (const call of [auth.client.getMe({}), auth.client.listSessions({}), auth.client.logout({})]) {
    t.is((await rejection(call)).code, Code.Unauthenticated);
  }
});
