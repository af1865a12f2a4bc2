// Bad input over the wire as a client would send it (Connect JSON over plain
// HTTP/1.1): every case gets INVALID_ARGUMENT with field-level details, and
// nothing is written. Serial, because "nothing written" is checked by counting rows.
import test from "ava";
import { startTestAuth, uniqueEmail, type TestAuth } from "./harness.ts";

let auth: TestAuth;
test.before(async () => {
  auth = await startTestAuth();
});
test.after.always(async () => {
  await auth?.close();
});

interface ErrorBody {
  code: string;
  message: string;
  details?: Array<{ type: string; debug?: { fieldViolations?: Array<{ field: string; description: string }> } }>;
}

async function call(method: string, body: string | object, headers: Record<string, string> = {}): Promise<{ status: number; body: ErrorBody & Record<string, unknown> }> {
  const response = await fetch(`${auth.service.url}/aviary.auth.v1.AuthService/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as ErrorBody & Record<string, unknown> };
}

function fields(body: ErrorBody): string[] {
  return [...new Set((body.details ?? []).flatMap((d) => d.debug?.fieldViolations ?? []).map((v) => v.field))].sort();
}

async function rowCounts(): Promise<string> {
  const rows = await auth.query<{ users: number; sessions: number; events: number }>(
    "select (select count(*) from auth.users)::int as users, (select count(*) from auth.sessions)::int as sessions, (select count(*) from auth.outbox_events)::int as events",
  );
  return JSON.stringify(rows[0]);
}

const long = (n: number) => "x".repeat(n);
const good = "violet-harbour-teapot-42";

// [name, method, body, expected violated fields]
const cases: Array<[string, string, object | string, string[]]> = [
  ["malformed email", "Register", { email: "not-an-email", password: good }, ["email"]],
  ["email with spaces inside", "Register", { email: "ada lovelace@example.org", password: good }, ["email"]],
  ["email over 254 bytes", "Register", { email: `${long(250)}@example.org`, password: good }, ["email"]],
  ["malformed phone", "Register", { phone: "call me maybe", password: good }, ["phone"]],
  ["phone without country code", "Register", { phone: "4155552671", password: good }, ["phone"]],
  ["phone that does not exist", "Register", { phone: "+1 000 000 0000", password: good }, ["phone"]],
  ["no identity", "Register", { password: good }, ["identity"]],
  ["short password", "Register", { email: "a@example.org", password: "short" }, ["password"]],
  ["oversized password", "Register", { email: "a@example.org", password: long(129) }, ["password"]],
  ["password of many-byte characters", "Register", { email: "a@example.org", password: "😀".repeat(129) }, ["password"]],
  ["common password", "Register", { email: "a@example.org", password: "password123" }, ["password"]],
  ["both bad", "Register", { email: "nope", password: "1" }, ["email", "password"]],
  ["oversized device name", "Login", { email: "a@example.org", password: good, deviceName: long(101) }, ["device_name"]],
  ["code not six digits", "VerifyIdentity", { email: "a@example.org", code: "12345" }, ["code"]],
  ["code with letters", "VerifyIdentity", { email: "a@example.org", code: "12a456" }, ["code"]],
  ["empty refresh token", "Refresh", { refreshToken: "" }, ["refresh_token"]],
  ["oversized refresh token", "Refresh", { refreshToken: long(201) }, ["refresh_token"]],
  ["reset with weak new password", "ResetPassword", { email: "a@example.org", code: "123456", newPassword: "1234567890" }, ["new_password"]],
  ["locale that is not a language tag", "Register", { email: "a@example.org", password: good, locale: "english please" }, ["locale"]],
  ["oversized locale", "SendVerificationCode", { email: "a@example.org", locale: `de-${"x".repeat(40)}` }, ["locale"]],
  ["locale with a bad subtag", "RequestPasswordReset", { email: "a@example.org", locale: "de-" }, ["locale"]],
  ["second factor without a challenge", "VerifySecondFactor", { code: "123456" }, ["challenge_token"]],
  ["second factor without a code", "VerifySecondFactor", { challengeToken: "abc" }, ["factor"]],
  ["second factor code not six digits", "VerifySecondFactor", { challengeToken: "abc", code: "12a456" }, ["code"]],
  ["recovery code too short", "VerifySecondFactor", { challengeToken: "abc", recoveryCode: "ABCD-1234" }, ["recovery_code"]],
  ["recovery code with symbols", "VerifySecondFactor", { challengeToken: "abc", recoveryCode: "ABCD-1234-EFGH-5678!" }, ["recovery_code"]],
  ["oversized challenge", "VerifySecondFactor", { challengeToken: long(201), code: "123456" }, ["challenge_token"]],
];

for (const [name, method, body, expected] of cases) {
  test.serial(`${method}: ${name} → 400 invalid_argument on ${expected.join(", ")}`, async (t) => {
    const before = await rowCounts();
    const response = await call(method, body);
    t.is(response.status, 400);
    t.is(response.body.code, "invalid_argument");
    t.deepEqual(fields(response.body), expected);
    t.is(await rowCounts(), before, "nothing written");
  });
}

test.serial("an unknown JSON field is refused, not ignored", async (t) => {
  const before = await rowCounts();
  const response = await call("Register", { email: uniqueEmail(), password: good, isAdmin: true });
  t.is(response.status, 400);
  t.is(response.body.code, "invalid_argument");
  t.regex(response.body.message, /isAdmin/);
  t.is(await rowCounts(), before);
});

test.serial("malformed JSON and wrong JSON types are refused", async (t) => {
  for (const body of ['{"email": "a@example.org", "password": ', '{"email": 42, "password": "violet-harbour-teapot-42"}', "[]"]) {
    const response = await call("Register", body);
    t.is(response.status, 400, body);
    t.is(response.body.code, "invalid_argument", body);
  }
});

test.serial("a page size out of range is a field violation; anonymous callers are refused before validation", async (t) => {
  const anonymous = await call("ListSessions", { pageSize: 1000 }, { authorization: "Bearer x" });
  t.is(anonymous.status, 401, "authentication runs first: an anonymous caller learns nothing about the rules");
  const email = uniqueEmail("pages");
  await auth.client.register({ identity: { case: "email", value: email }, password: good });
  const login = await auth.client.login({ identity: { case: "email", value: email }, password: good });
  const response = await call("ListSessions", { pageSize: 1000 }, { authorization: `Bearer ${login.tokens?.accessToken}` });
  t.is(response.status, 400);
  t.deepEqual(fields(response.body), ["page_size"]);
});

test.serial("two-factor enrolment and disabling: bad input is a field violation after authentication, and nothing is written", async (t) => {
  const email = uniqueEmail("bad2fa");
  await auth.client.register({ identity: { case: "email", value: email }, password: good });
  const login = await auth.client.login({ identity: { case: "email", value: email }, password: good });
  const authorization = { authorization: `Bearer ${login.tokens?.accessToken}` };
  const before = await rowCounts();
  const factors = async () => (await auth.query<{ n: number }>("select count(*)::int as n from auth.totp_factors"))[0]?.n;
  const factorsBefore = await factors();
  for (const [method, body, expected] of [
    ["StartTotpEnrollment", {}, ["password"]],
    ["StartTotpEnrollment", { password: long(129) }, ["password"]],
    ["ConfirmTotpEnrollment", { code: "12" }, ["code"]],
    ["ConfirmTotpEnrollment", {}, ["code"]],
    ["DisableTwoFactor", {}, ["proof"]],
    ["DisableTwoFactor", { code: "abcdef" }, ["code"]],
  ] as const) {
    t.is((await call(method, body, { authorization: "Bearer x" })).status, 401, `${method} anonymous`);
    const response = await call(method, body, authorization);
    t.is(response.status, 400, method);
    t.deepEqual(fields(response.body), [...expected], method);
  }
  t.is(await rowCounts(), before);
  t.is(await factors(), factorsBefore);
});

test.serial("a request body over the size limit is refused before parsing", async (t) => {
  const response = await fetch(`${auth.service.url}/aviary.auth.v1.AuthService/Register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "a@example.org", password: long(2 * 1024 * 1024) }),
  });
  t.true(response.status === 400 || response.status === 413 || response.status === 429, `status ${response.status}`);
  const body = (await response.json()) as ErrorBody;
  t.is(body.code, "resource_exhausted");
});

test.serial("errors never leak stack traces or SQL", async (t) => {
  const response = await call("Login", { email: "a@example.org", password: good });
  const text = JSON.stringify(response.body);
  t.notRegex(text, /at .*\.ts:\d+|select |insert |postgres/i);
});
