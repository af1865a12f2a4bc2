// Code delivery through real providers: emails to a real SMTP server
// (Mailpit, from deploy/local/infra.sh; read back through its HTTP API) and
// texts to a local server speaking Twilio's API and errors. Delivery is
// asynchronous (outbox → Kafka → the sender role), so every check polls for
// its condition with a deadline.
import test from "ava";
import { BadRequestSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { openEventBus } from "@aviary/runtime/bus/open";
import { deadLetterTopic, EventHeaders, type DeliveredEvent, type EventBus, type Subscription } from "@aviary/runtime/bus/bus";
import { eventually, infra, uniqueName } from "../../runtime/test-support/infra.ts";
import { mailCatcher, messagesTo, type CaughtMessage, type MailCatcher } from "../../runtime/test-support/mailpit.ts";
import { fakeSid, fakeToken, startFakeSmsGateway, type FakeSmsGateway } from "./fake-sms.ts";
import { as, password, rejection, startTestAuth, uniqueEmail, uniqueIp, type TestAuth } from "./harness.ts";

const topic = uniqueName("auth_code_deliveries_test");
let auth: TestAuth;
let mail: MailCatcher;
let sms: FakeSmsGateway;
let bus: EventBus;
let deadLetters: Subscription;
const parked: DeliveredEvent[] = [];

test.before(async () => {
  mail = await mailCatcher();
  sms = await startFakeSmsGateway();
  const [host = "", port = ""] = mail.smtp.split(":");
  auth = await startTestAuth({
    AUTH_DELIVERY_TOPIC: topic,
    AUTH_SMTP_HOST: host,
    AUTH_SMTP_PORT: port,
    // Mailpit accepts any login: the credentials still travel as in production.
    AUTH_SMTP_USER: "aviary",
    AUTH_SMTP_PASS: "smtp-test-password",
    AUTH_SMTP_FROM: "Aviary <no-reply@aviary.test>",
    AUTH_SMS_BASE_URL: sms.url,
    AUTH_SMS_ACCOUNT_SID: fakeSid,
    AUTH_SMS_AUTH_TOKEN: fakeToken,
    AUTH_SMS_FROM: "+15005550006",
    AUTH_DELIVERY_MAX_ATTEMPTS: "4",
    AUTH_DELIVERY_RETRY_MAX: "200ms",
  });
  bus = await openEventBus({ brokers: (await infra()).kafkaBrokers, clientId: "auth-delivery-test" });
  deadLetters = await bus.subscribe({ groupId: uniqueName("auth_dlq_test"), topics: [deadLetterTopic(topic)], handle: async (event) => void parked.push(event) });
});
test.after.always(async () => {
  await deadLetters?.stop();
  await bus?.close();
  await auth?.close();
  await sms?.close();
});

let phones = 0;
/** A valid, unused US number per call (libphonenumber accepts 555 numbers in these ranges). */
function uniquePhone(): string {
  phones += 1;
  return `+1415555${String((process.pid * 7 + Date.now() + phones * 37) % 10_000).padStart(4, "0")}`;
}

async function mailFor(to: string, count = 1): Promise<CaughtMessage[]> {
  let found: CaughtMessage[] = [];
  await eventually(`${count} email(s) to ${to}`, async () => (found = await messagesTo(mail, to)).length >= count, 30_000, 100);
  return found;
}

function codeIn(text: string): string {
  const match = /\b(\d{6})\b/.exec(text);
  if (!match) throw new Error(`no code in ${JSON.stringify(text)}`);
  return match[1]!;
}

async function metric(outcome: string, channel: string): Promise<number> {
  const text = await (await fetch(`${auth.service.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("auth_code_deliveries") && l.includes(`outcome="${outcome}"`) && l.includes(`channel="${channel}"`));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

test("a verification email reaches the SMTP server with the right code, in the asked-for language", async (t) => {
  const email = uniqueEmail("smtp");
  const registered = await auth.client.register({ identity: { case: "email", value: email }, password, locale: "de-AT" });
  const [message] = await mailFor(email);
  t.is(message!.subject, "Dein Aviary-Bestätigungscode");
  t.is(message!.from, "no-reply@aviary.test");
  t.deepEqual(message!.to, [email]);
  t.regex(message!.text, /Mit diesem Code bestätigst du/);
  const code = codeIn(message!.text);
  t.true(message!.html.includes(`data-code="${code}"`), "the HTML part carries the same code");
  t.regex(message!.html, /<html lang="de">/);
  t.deepEqual(message!.headers["X-Aviary-Purpose"], ["verify"]);
  t.regex(message!.messageId, /@aviary\.test$/, "a stable Message-ID on the sender's domain");
  // The code in the mailbox is the code the service checks.
  const verified = await auth.client.verifyIdentity({ identity: { case: "email", value: email }, code });
  t.is(verified.userId, registered.userId);
});

test("a password reset email follows Accept-Language, falling back to English", async (t) => {
  const email = uniqueEmail("reset");
  await auth.client.register({ identity: { case: "email", value: email }, password });
  await mailFor(email);
  await auth.client.requestPasswordReset({ identity: { case: "email", value: email } }, { headers: { "accept-language": "fr-CH, fr;q=0.9, en;q=0.5" } });
  const messages = await mailFor(email, 2);
  const reset = messages.find((m) => m.headers["X-Aviary-Purpose"]?.[0] === "password_reset");
  t.truthy(reset);
  t.is(reset!.subject, "Reset your Aviary password", "no French templates: English");
  const code = codeIn(reset!.text);
  await auth.client.resetPassword({ identity: { case: "email", value: email }, code, newPassword: "another-harbour-teapot-43" });
  const login = await auth.client.login({ identity: { case: "email", value: email }, password: "another-harbour-teapot-43" }, as({ ip: uniqueIp() }));
  t.truthy(login.tokens?.accessToken);
});

test("an unknown identity gets the same answer and no message", async (t) => {
  const email = uniqueEmail("ghost");
  const phone = uniquePhone();
  const known = uniqueEmail("known");
  await auth.client.register({ identity: { case: "email", value: known }, password });
  await mailFor(known);
  const answers = [
    await auth.client.requestPasswordReset({ identity: { case: "email", value: known } }),
    await auth.client.requestPasswordReset({ identity: { case: "email", value: email } }),
    await auth.client.sendVerificationCode({ identity: { case: "phone", value: phone } }),
  ];
  t.deepEqual(new Set(answers.map((a) => a.expiresInSeconds)).size, 1);
  await mailFor(known, 2);
  await auth.service.eventsFlushed(10_000);
  t.is((await messagesTo(mail, email)).length, 0);
  t.is(sms.received.filter((m) => m.to === phone).length, 0);
});

test("an SMS gateway 5xx is retried and the text delivered exactly once; a slow gateway does not slow Register", async (t) => {
  const phone = uniquePhone();
  sms.script(phone, [{ status: 503, delayMs: 1_500 }, { status: 500 }, { status: 429, retryAfter: "0" }]);
  const retriedBefore = await metric("retried", "sms");
  const started = Date.now();
  await auth.client.register({ identity: { case: "phone", value: phone }, password, locale: "en" });
  t.true(Date.now() - started < 1_500, `Register answered in ${Date.now() - started} ms while the gateway took 1.5 s`);
  await eventually("the text to be accepted", () => sms.delivered(phone).length === 1, 30_000);
  const attempts = sms.received.filter((m) => m.to === phone);
  t.deepEqual(attempts.map((m) => m.status), [503, 500, 429, 201]);
  t.is(attempts[3]!.from, "+15005550006");
  const code = codeIn(attempts[3]!.body);
  t.regex(attempts[3]!.body, /^Your Aviary verification code is \d{6}\. It expires in 10 minutes\.$/);
  t.true(attempts.every((m) => m.body === attempts[3]!.body), "every attempt sends the same code");
  t.true((await metric("retried", "sms")) >= retriedBefore + 3);
  // Delivered once: nothing more arrives (the sender marked it done; the outbox holds nothing back).
  await auth.service.eventsFlushed(10_000);
  t.is(sms.delivered(phone).length, 1);
  const verified = await auth.client.verifyIdentity({ identity: { case: "phone", value: phone }, code });
  t.truthy(verified.userId);
});

test("an invalid number (Twilio 21211) is not retried: the delivery is dead-lettered with the reason", async (t) => {
  const phone = uniquePhone();
  sms.script(phone, [{ status: 400 }]);
  const before = await metric("dead_lettered", "sms");
  await auth.client.register({ identity: { case: "phone", value: phone }, password });
  await eventually("the dead letter", () => parked.some((e) => (e.headers[EventHeaders.deadLetterReason] ?? "").includes("21211") && e.key === `phone:${phone}`), 30_000);
  const letter = parked.find((e) => e.key === `phone:${phone}`)!;
  t.regex(letter.headers[EventHeaders.deadLetterReason] ?? "", /^permanent failure: SMS gateway 400 \(code 21211\)/);
  t.is(letter.headers[EventHeaders.deadLetterTopic], topic);
  t.notRegex(letter.headers[EventHeaders.deadLetterReason] ?? "", /\d{6}/, "the reason never carries the code");
  t.is(sms.received.filter((m) => m.to === phone).length, 1, "one request, no retries");
  // Other tests of this file dead-letter concurrently: at least this one more.
  t.true((await metric("dead_lettered", "sms")) >= before + 1);
});

test("a gateway that keeps failing is given up after the configured attempts and dead-lettered", async (t) => {
  const phone = uniquePhone();
  sms.script(phone, Array.from({ length: 10 }, () => ({ status: 503 as const })));
  await auth.client.register({ identity: { case: "phone", value: phone }, password });
  await eventually("the dead letter", () => parked.some((e) => e.key === `phone:${phone}`), 30_000);
  const letter = parked.find((e) => e.key === `phone:${phone}`)!;
  t.regex(letter.headers[EventHeaders.deadLetterReason] ?? "", /^gave up after 4 attempts: SMS gateway 503 \(code 20503\)/);
  t.is(sms.received.filter((m) => m.to === phone).length, 4);
  // The caller saw none of it, and can ask again.
  const again = await auth.client.sendVerificationCode({ identity: { case: "phone", value: phone } });
  t.is(again.expiresInSeconds, 600);
});

test("bad locales are field violations, and nothing is sent", async (t) => {
  const email = uniqueEmail("badlocale");
  const error = await rejection(auth.client.register({ identity: { case: "email", value: email }, password, locale: "not a locale" }));
  t.is(error.code, 3);
  t.deepEqual(error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field)), ["locale"]);
  t.is((await auth.query<{ n: number }>("select count(*)::int as n from auth.users where email = $1", [email]))[0]?.n, 0);
  await auth.service.eventsFlushed(10_000);
  t.is((await messagesTo(mail, email)).length, 0);
});
