// The plain functions under two-factor sign-in and code delivery: TOTP
// against RFC 6238's own test vectors, base32, sealing, recovery codes,
// locales, templates and how provider answers are classified.
import test from "ava";
import { randomBytes } from "node:crypto";
import { base32Decode, base32Encode, hotp, matchTotp, otpauthUri, totpCode } from "../src/domain/totp.ts";
import { aesGcmSealer, parseSecretsKey } from "../src/domain/sealing.ts";
import { hashRecoveryCode, newRecoveryCode, normaliseRecoveryCode } from "../src/domain/recovery-codes.ts";
import { chooseLocale } from "../src/delivery/locale.ts";
import { renderEmail, renderSms } from "../src/delivery/templates.ts";
import { classifySmsResponse } from "../src/delivery/sms.ts";
import { classifySmtpError } from "../src/delivery/smtp.ts";
import { masked } from "../src/delivery/worker.ts";

// RFC 6238 Appendix B (SHA-1 key "12345678901234567890"), truncated to the 6 digits apps use.
const rfcSecret = Buffer.from("12345678901234567890");
const vectors: Array<[number, string]> = [
  [59, "94287082"],
  [1111111109, "07081804"],
  [1111111111, "14050471"],
  [1234567890, "89005924"],
  [2000000000, "69279037"],
  [20000000000, "65353130"],
];

test("TOTP matches RFC 6238's test vectors", (t) => {
  for (const [seconds, expected] of vectors) {
    t.is(hotp(rfcSecret, Math.floor(seconds / 30), 8), expected, `T=${seconds}`);
    t.is(totpCode(rfcSecret, seconds * 1000), expected.slice(-6));
  }
  // RFC 4226 Appendix D.
  t.is(hotp(rfcSecret, 0), "755224");
  t.is(hotp(rfcSecret, 9), "520489");
});

test("a code matches its step and one step either side, nothing further", (t) => {
  const at = 1_700_000_000_000;
  const step = Math.floor(at / 30_000);
  t.is(matchTotp(rfcSecret, totpCode(rfcSecret, at), at), step);
  t.is(matchTotp(rfcSecret, totpCode(rfcSecret, at - 30_000), at), step - 1);
  t.is(matchTotp(rfcSecret, totpCode(rfcSecret, at + 30_000), at), step + 1);
  t.is(matchTotp(rfcSecret, totpCode(rfcSecret, at + 90_000), at), undefined);
  t.is(matchTotp(rfcSecret, "12345", at), undefined);
});

test("base32 round-trips (RFC 4648 vectors) and the otpauth URI carries what apps read", (t) => {
  t.is(base32Encode(Buffer.from("foobar")), "MZXW6YTBOI");
  t.is(base32Decode("MZXW6YTBOI======").toString(), "foobar");
  const secret = randomBytes(20);
  t.deepEqual(base32Decode(base32Encode(secret)), secret);
  const uri = new URL(otpauthUri({ issuer: "Aviary", account: "ada+2fa@example.org", secret }));
  t.is(decodeURIComponent(uri.pathname), "/Aviary:ada+2fa@example.org");
  t.is(uri.searchParams.get("secret"), base32Encode(secret));
  t.is(uri.searchParams.get("digits"), "6");
});

test("sealed values open only with the same key and for the same use", (t) => {
  const key = randomBytes(32);
  const sealer = aesGcmSealer(key);
  const sealed = sealer.seal("totp-secret", Buffer.from("secret"));
  t.is(Buffer.from(sealer.open("totp-secret", sealed)).toString(), "secret");
  t.throws(() => sealer.open("code-delivery", sealed));
  t.throws(() => aesGcmSealer(randomBytes(32)).open("totp-secret", sealed));
  const tampered = new Uint8Array(sealed);
  tampered[tampered.length - 1]! ^= 1;
  t.throws(() => sealer.open("totp-secret", tampered));
  t.deepEqual(parseSecretsKey(key.toString("base64")), key);
  t.deepEqual(parseSecretsKey(key.toString("hex")), key);
  t.is(parseSecretsKey("too-short"), undefined);
});

test("recovery codes: 16 unambiguous characters, compared without case, dashes or look-alikes", (t) => {
  const code = newRecoveryCode();
  t.regex(code, /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/);
  t.is(hashRecoveryCode(code.toLowerCase().replaceAll("-", " ")), hashRecoveryCode(code));
  t.is(normaliseRecoveryCode("ab1o-IL00"), "AB101100", "I and L read as 1, O as 0");
});

test("the locale: the request's field, else Accept-Language by weight, else English", (t) => {
  t.is(chooseLocale("de-AT", "en"), "de");
  t.is(chooseLocale("", "fr-CH, de;q=0.8, en;q=0.5"), "de");
  t.is(chooseLocale("", "de;q=0, en"), "en");
  t.is(chooseLocale("pt-BR", "de"), "en", "an explicit locale we have no texts for falls back to English, not to the header");
  t.is(chooseLocale("", null), "en");
  t.is(chooseLocale("", "*;q=0.5, garbage;;;"), "en");
});

test("templates: subject, text and HTML per purpose and language; values are escaped", (t) => {
  const en = renderEmail({ purpose: "password_reset", locale: "en", code: "123456", expiresInSeconds: 600 });
  t.is(en.subject, "Reset your Aviary password");
  t.regex(en.text, /123456[\s\S]*next 10 minutes/);
  t.regex(en.html, /data-code="123456"/);
  const de = renderEmail({ purpose: "verify", locale: "de", code: "654321", expiresInSeconds: 90 });
  t.is(de.subject, "Dein Aviary-Bestätigungscode");
  t.regex(de.text, /nächsten 2 Minuten/);
  t.is(renderEmail({ purpose: "verify", locale: "xx", code: "1", expiresInSeconds: 60 }).subject, "Your Aviary verification code");
  t.notRegex(renderEmail({ purpose: "verify", locale: "en", code: "<b>", expiresInSeconds: 60 }).html, /<b>/);
  t.is(renderSms({ purpose: "verify", locale: "de", code: "111222", expiresInSeconds: 600 }), "Dein Aviary-Bestätigungscode ist 111222. Er läuft in 10 Minuten ab.");
});

test("provider answers: HTTP 429/5xx and SMTP 4xx are transient; other 4xx and SMTP 5xx are permanent", (t) => {
  t.is(classifySmsResponse(503, "{}", null).kind, "transient");
  t.is(classifySmsResponse(429, '{"code":20429,"message":"Too Many Requests"}', "2").retryAfterMs, 2000);
  const invalid = classifySmsResponse(400, '{"code":21211,"message":"The \'To\' number is not a valid phone number.","status":400}', null);
  t.is(invalid.kind, "permanent");
  t.regex(invalid.message, /code 21211/);
  t.is(classifySmsResponse(401, '{"code":20003}', null).kind, "permanent");
  t.is(classifySmtpError(Object.assign(new Error("mailbox busy"), { responseCode: 451 })).kind, "transient");
  t.is(classifySmtpError(Object.assign(new Error("no such user"), { responseCode: 550 })).kind, "permanent");
  t.is(classifySmtpError(Object.assign(new Error("bad login"), { code: "EAUTH" })).kind, "permanent");
  t.is(classifySmtpError(Object.assign(new Error("refused"), { code: "ECONNECTION" })).kind, "transient");
});

test("logs show a masked recipient", (t) => {
  t.is(masked({ kind: "email", value: "ada@example.org" }), "a…@example.org");
  t.is(masked({ kind: "phone", value: "+14155552671" }), "+14…71");
});
