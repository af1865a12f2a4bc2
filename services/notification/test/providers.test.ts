import test from "ava";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import webpush from "web-push";
import { ConfigError, loadConfig } from "@aviary/runtime/config";
import { openPushProviders, pushProvidersConfigSpec } from "../src/push/providers.ts";
import { parseRetryAfter } from "../src/push/transport.ts";
import { startApnsServer } from "./providers/apns-server.ts";
import { fakeServiceAccount, startFcmServer } from "./providers/fcm-server.ts";
import { startWebPushServer } from "./providers/webpush-server.ts";
import { sampleMessage } from "./providers/fixtures.ts";

/** Loads the spec from `env` and opens the providers. */
async function open(env: NodeJS.ProcessEnv) {
  return openPushProviders(loadConfig(pushProvidersConfigSpec, env));
}

/** The problems of the ConfigError `promise` rejects with, as "VARIABLE: problem". */
async function problems(t: import("ava").ExecutionContext, promise: Promise<unknown>): Promise<string[]> {
  const error = await t.throwsAsync(promise, { instanceOf: ConfigError });
  return (error as ConfigError | undefined)?.problems.map((p) => `${p.variable}: ${p.problem}`) ?? [];
}

function apnsKeyPem(): string {
  return generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
}

test("nothing configured: no providers, and that is fine", async (t) => {
  const providers = await open({});
  t.is(providers.size, 0);
});

test("defaults: Apple's and Google's production endpoints, a 40 minute token refresh, 10 s requests", (t) => {
  const config = loadConfig(pushProvidersConfigSpec, {});
  t.is(config.apnsUrl.href, "https://api.push.apple.com/");
  t.is(config.fcmUrl.href, "https://fcm.googleapis.com/");
  t.is(config.apnsTokenRefreshMinutes, 40);
  t.is(config.pushRequestTimeoutMs, 10_000);
  t.is(config.webPushTtlSeconds, 86_400);
});

test("the APNs token refresh must be within 20..60 minutes; the Web Push subject a mailto: or https: URL", (t) => {
  const error = t.throws(() => loadConfig(pushProvidersConfigSpec, { APNS_TOKEN_REFRESH_MINUTES: "10", WEBPUSH_SUBJECT: "push@aviary.test" }), { instanceOf: ConfigError });
  t.deepEqual(
    error?.problems.map((p) => p.variable),
    ["APNS_TOKEN_REFRESH_MINUTES", "WEBPUSH_SUBJECT"],
  );
});

test("half an APNs configuration names every missing variable", async (t) => {
  const listed = await problems(t, open({ APNS_KEY_ID: "KEY7654321" }));
  t.deepEqual(
    listed.map((p) => p.split(":")[0]),
    ["APNS_TEAM_ID", "APNS_KEY or APNS_KEY_FILE", "APNS_TOPIC"],
  );
  t.regex(listed[0] ?? "", /APNs needs APNS_KEY_ID, APNS_TEAM_ID, APNS_KEY or APNS_KEY_FILE, APNS_TOPIC \(APNS_KEY_ID is set\)/);
});

test("problems of every provider are reported together", async (t) => {
  const vapid = webpush.generateVAPIDKeys();
  const other = webpush.generateVAPIDKeys();
  const listed = await problems(
    t,
    open({
      APNS_KEY_ID: "KEY7654321",
      APNS_TEAM_ID: "TEAM123456",
      APNS_TOPIC: "app.aviary.ios",
      APNS_KEY: "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----",
      FCM_SERVICE_ACCOUNT: '{"project_id": "p"}',
      WEBPUSH_VAPID_PUBLIC_KEY: other.publicKey,
      WEBPUSH_VAPID_PRIVATE_KEY: vapid.privateKey,
      WEBPUSH_SUBJECT: "mailto:push@aviary.test",
      PUSH_CA_FILE: "/nonexistent/ca.pem",
    }),
  );
  t.deepEqual(
    listed.map((p) => p.split(":")[0]).sort(),
    ["APNS_KEY", "FCM_SERVICE_ACCOUNT", "PUSH_CA_FILE", "WEBPUSH_VAPID_PUBLIC_KEY"],
  );
  t.true(listed.some((p) => p.startsWith("FCM_SERVICE_ACCOUNT: not a service-account key file: missing client_email, private_key, token_uri")));
  t.true(listed.includes("WEBPUSH_VAPID_PUBLIC_KEY: is not the public key of the configured private key"));
});

test("a value given both inline and as a file, or FCM_TOKEN_URL alone, is a mistake", async (t) => {
  const listed = await problems(
    t,
    open({
      APNS_KEY_ID: "KEY7654321",
      APNS_TEAM_ID: "TEAM123456",
      APNS_TOPIC: "app.aviary.ios",
      APNS_KEY: apnsKeyPem(),
      APNS_KEY_FILE: "/etc/aviary/apns.p8",
      FCM_TOKEN_URL: "https://oauth2.googleapis.com/token",
      WEBPUSH_VAPID_PUBLIC_KEY: webpush.generateVAPIDKeys().publicKey,
    }),
  );
  t.true(listed.includes("APNS_KEY_FILE: set APNS_KEY or APNS_KEY_FILE, not both"));
  t.true(listed.some((p) => p.startsWith("FCM_SERVICE_ACCOUNT: missing: FCM_TOKEN_URL is set")));
  t.true(listed.some((p) => p.startsWith("WEBPUSH_VAPID_PRIVATE_KEY: missing")));
  t.true(listed.some((p) => p.startsWith("WEBPUSH_SUBJECT: missing")));
});

test("fully configured: all three providers open (keys from files and inline) and deliver to their servers", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "aviary-push-config-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const apnsKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const apns = await startApnsServer({ teamId: "TEAM123456", keyId: "KEY7654321", publicKey: apnsKey.publicKey, topic: "app.aviary.ios" });
  const fcm = await startFcmServer({ projectId: "aviary-test" });
  const account = fakeServiceAccount(fcm.url, { projectId: "aviary-test" });
  fcm.trust(account.serviceAccount.client_email, account.publicKey);
  const vapid = webpush.generateVAPIDKeys();
  const web = await startWebPushServer({ vapidPublicKey: vapid.publicKey });
  t.teardown(() => Promise.all([apns.close(), fcm.close(), web.close()]).then(() => undefined));
  await writeFile(join(dir, "ca.pem"), apns.ca);
  await writeFile(join(dir, "apns.p8"), apnsKey.privateKey.export({ type: "pkcs8", format: "pem" }).toString());

  const providers = await open({
    APNS_URL: apns.url,
    APNS_KEY_ID: "KEY7654321",
    APNS_TEAM_ID: "TEAM123456",
    APNS_KEY_FILE: join(dir, "apns.p8"),
    APNS_TOPIC: "app.aviary.ios",
    FCM_URL: fcm.url,
    FCM_SERVICE_ACCOUNT: account.json,
    WEBPUSH_VAPID_PUBLIC_KEY: vapid.publicKey,
    WEBPUSH_VAPID_PRIVATE_KEY: vapid.privateKey,
    WEBPUSH_SUBJECT: "mailto:push@aviary.test",
    WEBPUSH_TTL_SECONDS: "600",
    PUSH_CA_FILE: join(dir, "ca.pem"),
  });
  t.teardown(() => Promise.all([...providers.values()].map((p) => p.close())).then(() => undefined));
  t.deepEqual([...providers.keys()].sort(), ["android", "ios", "web"]);

  const message = sampleMessage();
  const subscription = JSON.stringify(web.subscribe());
  t.deepEqual(await providers.get("ios")?.send({ deviceId: "d-ios", platform: "ios", token: randomBytes(32).toString("hex") }, message), { kind: "delivered" });
  t.deepEqual(await providers.get("android")?.send({ deviceId: "d-android", platform: "android", token: "fcm-token-1" }, message), { kind: "delivered" });
  t.deepEqual(await providers.get("web")?.send({ deviceId: "d-web", platform: "web", token: subscription }, message), { kind: "delivered" });
  t.is(web.requests[0]?.ttl, "600");
});

test("an APNs key pasted with literal \\n sequences still works", async (t) => {
  const pem = apnsKeyPem().replaceAll("\n", "\\n");
  const providers = await open({ APNS_KEY_ID: "KEY7654321", APNS_TEAM_ID: "TEAM123456", APNS_KEY: pem, APNS_TOPIC: "app.aviary.ios" });
  t.deepEqual([...providers.keys()], ["ios"]);
  await Promise.all([...providers.values()].map((p) => p.close()));
});

test("Retry-After: seconds, an HTTP date, a past date, garbage", (t) => {
  const now = Date.UTC(2030, 0, 15, 12, 0, 0);
  t.is(parseRetryAfter("120", now), 120_000);
  t.is(parseRetryAfter(" 0 ", now), 0);
  t.is(parseRetryAfter("Tue, 15 Jan 2030 12:01:30 GMT", now), 90_000);
  t.is(parseRetryAfter("Tue, 15 Jan 2030 11:00:00 GMT", now), 0);
  t.is(parseRetryAfter("soon", now), undefined);
  t.is(parseRetryAfter(undefined, now), undefined);
});
