import test, { type ExecutionContext } from "ava";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createApnsProvider, apnsCollapseId, type ApnsProviderOptions } from "../src/push/apns.ts";
import type { PushProvider, PushTarget } from "../src/push/provider.ts";
import { startApnsServer, type ApnsServer } from "./providers/apns-server.ts";
import { HANG_TIMEOUT_MS, manualClock, sampleMessage, type ManualClock } from "./providers/fixtures.ts";

const TEAM_ID = "TEAM123456";
const KEY_ID = "KEY7654321";
const TOPIC = "app.aviary.ios";

function signingKey(): { pem: string; publicKey: import("node:crypto").KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { pem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(), publicKey };
}

const deviceToken = (): string => randomBytes(32).toString("hex");
const target = (token: string): PushTarget => ({ deviceId: "d-1", platform: "ios", token });

interface Setup {
  server: ApnsServer;
  provider: PushProvider;
  clock: ManualClock;
}

/** A test server and an adapter configured for it, sharing one manual clock; both closed after the test. */
async function setup(t: ExecutionContext, overrides: Partial<ApnsProviderOptions> = {}, serverClock?: () => number): Promise<Setup> {
  const clock = manualClock();
  const key = signingKey();
  const server = await startApnsServer({ teamId: TEAM_ID, keyId: KEY_ID, publicKey: key.publicKey, topic: TOPIC, now: serverClock ?? clock.now });
  const provider = await createApnsProvider({ url: server.url, teamId: TEAM_ID, keyId: KEY_ID, key: key.pem, topic: TOPIC, ca: server.ca, now: clock.now, ...overrides });
  t.teardown(async () => {
    await provider.close();
    await server.close();
  });
  return { server, provider, clock };
}

test("a delivered push carries Apple's headers, the provider token, the collapse id and the badge", async (t) => {
  const { server, provider, clock } = await setup(t);
  const token = deviceToken();
  const message = sampleMessage();
  t.deepEqual(await provider.send(target(token), message), { kind: "delivered" });

  const [request] = server.requestsFor(token);
  if (request === undefined) return t.fail("no request recorded");
  t.is(request.status, 200);
  t.is(request.path, `/3/device/${token}`);
  t.is(request.headers["apns-topic"], TOPIC);
  t.is(request.headers["apns-push-type"], "alert");
  t.is(request.headers["apns-priority"], "10");
  t.is(request.headers["apns-expiration"], String(Math.floor(clock.now() / 1000) + 86_400));
  t.is(request.headers["apns-collapse-id"], message.collapseKey);
  t.is(request.headers["apns-id"], message.id);
  t.deepEqual(request.jwtHeader, { alg: "ES256", kid: KEY_ID });
  t.deepEqual(request.claims, { iss: TEAM_ID, iat: Math.floor(clock.now() / 1000) });
  t.deepEqual(request.body, {
    aps: { alert: { title: message.title, body: message.body }, badge: 4, sound: "default", "thread-id": message.collapseKey },
    notification_id: "n-1",
    group_id: "g-1",
    kind: "like",
  });
});

test("a collapse key longer than 64 bytes is sent as a stable hash that APNs accepts", async (t) => {
  const { server, provider } = await setup(t);
  const token = deviceToken();
  const collapseKey = `comments:${"é".repeat(40)}`;
  t.deepEqual(await provider.send(target(token), sampleMessage({ collapseKey })), { kind: "delivered" });
  t.deepEqual(await provider.send(target(token), sampleMessage({ collapseKey })), { kind: "delivered" });
  const ids = server.requestsFor(token).map((r) => r.headers["apns-collapse-id"]);
  t.is(ids[0], apnsCollapseId(collapseKey));
  t.is(ids[0], ids[1]);
  t.true(Buffer.byteLength(ids[0] ?? "") <= 64);
  // thread-id has no such limit: the app still groups by the real key.
  t.is((server.requestsFor(token)[0]?.body as { aps: { "thread-id": string } }).aps["thread-id"], collapseKey);
});

test("a message id that is not a UUID is left out (APNs would reject it as BadMessageId)", async (t) => {
  const { server, provider } = await setup(t);
  const token = deviceToken();
  t.deepEqual(await provider.send(target(token), sampleMessage({ id: "n-1:d-1" })), { kind: "delivered" });
  t.is(server.requestsFor(token)[0]?.headers["apns-id"], undefined);
});

test("410 Unregistered is gone, with the time APNs gives", async (t) => {
  const { server, provider } = await setup(t);
  const token = deviceToken();
  const at = Date.UTC(2030, 0, 10);
  server.unregister(token, at);
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "gone", reason: "apns 410 Unregistered", since: new Date(at) });
});

test("410 ExpiredToken without a timestamp is gone without a date", async (t) => {
  const { server, provider } = await setup(t);
  const token = deviceToken();
  server.respond(token, [{ status: 410, reason: "ExpiredToken" }]);
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "gone", reason: "apns 410 ExpiredToken" });
});

test("a token of the other environment (400 BadDeviceToken) is quarantined", async (t) => {
  const { server, provider } = await setup(t);
  const token = deviceToken();
  server.wrongEnvironment(token);
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "quarantine", reason: "apns 400 BadDeviceToken" });
});

test("a token for another topic (400 DeviceTokenNotForTopic) is quarantined", async (t) => {
  const { provider } = await setup(t, { topic: "app.aviary.other" });
  t.deepEqual(await provider.send(target(deviceToken()), sampleMessage()), { kind: "quarantine", reason: "apns 400 DeviceTokenNotForTopic" });
});

test("a topic or environment our key may not push to (TopicDisallowed, BadEnvironmentKeyInToken) is quarantined", async (t) => {
  const { server, provider } = await setup(t);
  const token = deviceToken();
  server.respond(token, [
    { status: 400, reason: "TopicDisallowed" },
    { status: 403, reason: "BadEnvironmentKeyInToken" },
  ]);
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "quarantine", reason: "apns 400 TopicDisallowed" });
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "quarantine", reason: "apns 403 BadEnvironmentKeyInToken" });
});

test("a payload over 4 KB (413 PayloadTooLarge) fails", async (t) => {
  const { provider } = await setup(t);
  const verdict = await provider.send(target(deviceToken()), sampleMessage({ body: "x".repeat(5000) }));
  t.deepEqual(verdict, { kind: "failed", reason: "apns 413 PayloadTooLarge" });
});

test("other 400s fail", async (t) => {
  const { server, provider } = await setup(t);
  const token = deviceToken();
  server.respond(token, [{ status: 400, reason: "BadExpirationDate" }]);
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "failed", reason: "apns 400 BadExpirationDate" });
});

test("a token signed with the wrong key (403 InvalidProviderToken) fails: our credentials", async (t) => {
  const { provider, server } = await setup(t, { key: signingKey().pem });
  const token = deviceToken();
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "failed", reason: "apns 403 InvalidProviderToken" });
  t.is(server.requestsFor(token).length, 1);
});

test("a wrong key id or team id is rejected as InvalidProviderToken", async (t) => {
  const wrongKid = await setup(t, { keyId: "OTHERKEY00" });
  t.deepEqual(await wrongKid.provider.send(target(deviceToken()), sampleMessage()), { kind: "failed", reason: "apns 403 InvalidProviderToken" });
  const wrongTeam = await setup(t, { teamId: "OTHERTEAM0" });
  t.deepEqual(await wrongTeam.provider.send(target(deviceToken()), sampleMessage()), { kind: "failed", reason: "apns 403 InvalidProviderToken" });
});

test("503 and 429 are retried, honouring Retry-After in seconds or as a date", async (t) => {
  const { server, provider, clock } = await setup(t);
  const token = deviceToken();
  server.respond(token, [
    { status: 503, reason: "ServiceUnavailable", retryAfter: 7 },
    { status: 429, reason: "TooManyRequests", retryAfter: new Date(clock.now() + 90_000).toUTCString() },
    { status: 500, reason: "InternalServerError" },
  ]);
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "retry", reason: "apns 503 ServiceUnavailable", retryAfterMs: 7000 });
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "retry", reason: "apns 429 TooManyRequests", retryAfterMs: 90_000 });
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "retry", reason: "apns 500 InternalServerError" });
  // The queue is used up: the next push goes through.
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "delivered" });
});

test("the provider token is reused until the refresh age, then signed again", async (t) => {
  const { server, provider, clock } = await setup(t, { tokenRefreshMinutes: 40 });
  const token = deviceToken();
  const start = Math.floor(clock.now() / 1000);
  await provider.send(target(token), sampleMessage());
  await provider.send(target(token), sampleMessage());
  clock.advance(39 * 60_000);
  await provider.send(target(token), sampleMessage());
  const first = server.requestsFor(token).map((r) => r.jwt);
  t.is(new Set(first).size, 1, "one JWT for every push within 40 minutes");

  clock.advance(60_000);
  await provider.send(target(token), sampleMessage());
  await provider.send(target(token), sampleMessage());
  const all = server.requestsFor(token);
  t.is(new Set(all.map((r) => r.jwt)).size, 2, "a second JWT at 40 minutes, reused after");
  t.is(all[0]?.claims?.iat, start);
  t.is(all[3]?.claims?.iat, start + 40 * 60);
  t.true(all.every((r) => r.status === 200));
});

test("concurrent first sends share one signing", async (t) => {
  const { server, provider } = await setup(t);
  const tokens = Array.from({ length: 8 }, deviceToken);
  const verdicts = await Promise.all(tokens.map((tk) => provider.send(target(tk), sampleMessage())));
  t.true(verdicts.every((v) => v.kind === "delivered"));
  t.is(new Set(server.requests.map((r) => r.jwt)).size, 1);
});

test("403 ExpiredProviderToken: a new token and one retry", async (t) => {
  const { server, provider } = await setup(t);
  const token = deviceToken();
  server.respond(token, [{ status: 403, reason: "ExpiredProviderToken" }]);
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "delivered" });
  const [rejected, retried] = server.requestsFor(token);
  t.is(rejected?.reason, "ExpiredProviderToken");
  t.is(retried?.status, 200);
  t.not(rejected?.jwt, retried?.jwt);
  // The new token is the cached one from now on.
  await provider.send(target(token), sampleMessage());
  t.is(server.requestsFor(token)[2]?.jwt, retried?.jwt);
});

test("a token APNs still calls expired after the retry (our clock is off) fails after exactly one retry", async (t) => {
  const clock = manualClock();
  // The server's clock runs 61 minutes ahead of ours: every fresh token is already too old for it.
  const { server, provider } = await setup(t, { now: clock.now }, () => clock.now() + 61 * 60_000);
  const token = deviceToken();
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "failed", reason: "apns 403 ExpiredProviderToken" });
  t.is(server.requestsFor(token).length, 2);
});

test("no answer within the request timeout is a retry, and the connection stays usable", async (t) => {
  const { server, provider } = await setup(t, { requestTimeoutMs: HANG_TIMEOUT_MS });
  const token = deviceToken();
  server.respond(token, [{ hang: true }]);
  const verdict = await provider.send(target(token), sampleMessage());
  t.is(verdict.kind, "retry");
  t.regex(verdict.kind === "retry" ? verdict.reason : "", /timeout/);
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "delivered" });
});

test("after APNs closes the connection (GOAWAY) the next push reconnects", async (t) => {
  const { server, provider } = await setup(t);
  const token = deviceToken();
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "delivered" });
  server.disconnect();
  // Whether the adapter sees the GOAWAY before or after its next request, one
  // of the next two pushes reconnects; a clean GOAWAY loses nothing.
  const verdicts = [await provider.send(target(token), sampleMessage()), await provider.send(target(token), sampleMessage())];
  t.deepEqual(verdicts[1], { kind: "delivered" });
  t.true(verdicts.every((v) => v.kind === "delivered" || v.kind === "retry"));
});

test("a provider that cannot connect answers retry", async (t) => {
  const { provider, server } = await setup(t);
  const closed = await createApnsProvider({ url: "https://127.0.0.1:1", teamId: TEAM_ID, keyId: KEY_ID, key: signingKey().pem, topic: TOPIC, ca: server.ca });
  t.teardown(() => closed.close());
  const verdict = await closed.send(target(deviceToken()), sampleMessage());
  t.is(verdict.kind, "retry");
  t.regex(verdict.kind === "retry" ? verdict.reason : "", /apns network/);
  t.deepEqual(await provider.send(target(deviceToken()), sampleMessage()), { kind: "delivered" });
});

test("an aborted send answers retry", async (t) => {
  const { server, provider } = await setup(t);
  const token = deviceToken();
  server.respond(token, [{ hang: true }]);
  const controller = new AbortController();
  const pending = provider.send(target(token), sampleMessage(), controller.signal);
  controller.abort();
  const verdict = await pending;
  t.is(verdict.kind, "retry");
  t.regex(verdict.kind === "retry" ? verdict.reason : "", /aborted/);
});

test("a device token that is not hex is quarantined without a request", async (t) => {
  const { server, provider } = await setup(t);
  t.deepEqual(await provider.send(target("../../3/other"), sampleMessage()), { kind: "quarantine", reason: "apns malformed device token" });
  t.is(server.requests.length, 0);
});

test("the token refresh age must be within Apple's 20 to 60 minutes", async (t) => {
  const key = signingKey().pem;
  const base = { url: "https://127.0.0.1:1", teamId: TEAM_ID, keyId: KEY_ID, key, topic: TOPIC };
  await t.throwsAsync(createApnsProvider({ ...base, tokenRefreshMinutes: 19 }), { instanceOf: RangeError });
  await t.throwsAsync(createApnsProvider({ ...base, tokenRefreshMinutes: 61 }), { instanceOf: RangeError });
  const ok = await createApnsProvider({ ...base, tokenRefreshMinutes: 20 });
  await ok.close();
  t.pass();
});
