import test, { type ExecutionContext } from "ava";
import webpush from "web-push";
import type { PushProvider, PushTarget } from "../src/push/provider.ts";
import { createWebPushProvider, parseSubscription, vapidKeyProblems, webPushTopic, type WebPushProviderOptions } from "../src/push/webpush.ts";
import { startWebPushServer, type TestSubscription, type WebPushServer, type WebPushServerOptions } from "./providers/webpush-server.ts";
import { HANG_TIMEOUT_MS, manualClock, sampleMessage, type ManualClock } from "./providers/fixtures.ts";

const SUBJECT = "mailto:push@aviary.test";
const target = (subscription: TestSubscription | string): PushTarget => ({
  deviceId: "d-1",
  platform: "web",
  token: typeof subscription === "string" ? subscription : JSON.stringify(subscription),
});

interface Setup {
  server: WebPushServer;
  provider: PushProvider;
  clock: ManualClock;
  vapid: { publicKey: string; privateKey: string };
}

async function setup(t: ExecutionContext, overrides: Partial<WebPushProviderOptions> = {}, serverOptions: WebPushServerOptions = {}): Promise<Setup> {
  const clock = manualClock(Date.now());
  const vapid = webpush.generateVAPIDKeys();
  const server = await startWebPushServer({ vapidPublicKey: vapid.publicKey, ...serverOptions });
  const provider = await createWebPushProvider({ vapidPublicKey: vapid.publicKey, vapidPrivateKey: vapid.privateKey, subject: SUBJECT, ttlSeconds: 3600, ca: server.ca, now: clock.now, ...overrides });
  t.teardown(async () => {
    await provider.close();
    await server.close();
  });
  return { server, provider, clock, vapid };
}

test("a delivered push decrypts to the message, with TTL, Topic, Urgency and a valid VAPID signature", async (t) => {
  const { server, provider, vapid } = await setup(t);
  const subscription = server.subscribe();
  const message = sampleMessage();
  t.deepEqual(await provider.send(target(subscription), message), { kind: "delivered" });

  const [request] = server.requestsFor(server.idOf(subscription));
  if (request === undefined) return t.fail("no request recorded");
  t.is(request.status, 201);
  t.deepEqual(JSON.parse(request.payload ?? "null"), { title: message.title, body: message.body, badge: 4, collapseKey: message.collapseKey, data: message.data });
  t.is(request.contentEncoding, "aes128gcm");
  t.is(request.ttl, "3600");
  t.is(request.urgency, "normal");
  t.is(request.topic, webPushTopic(message.collapseKey));
  t.is(request.vapid?.publicKey, vapid.publicKey);
  t.is(request.vapid?.claims.aud, server.url);
  t.is(request.vapid?.claims.sub, SUBJECT);
});

test("the Topic is 32 base64url characters, the same for the same collapse key", (t) => {
  const topic = webPushTopic("comments:post-1");
  t.regex(topic, /^[A-Za-z0-9_-]{32}$/);
  t.is(webPushTopic("comments:post-1"), topic);
  t.not(webPushTopic("comments:post-2"), topic);
});

test("410 (the user revoked it) and 404 (unknown subscription) are gone", async (t) => {
  const { server, provider } = await setup(t);
  const revoked = server.subscribe();
  server.gone(server.idOf(revoked));
  t.deepEqual(await provider.send(target(revoked), sampleMessage()), { kind: "gone", reason: "webpush 410 subscription expired" });
  const unknown = { ...server.subscribe(), endpoint: `${server.url}/push/nosuchsubscription` };
  t.deepEqual(await provider.send(target(unknown), sampleMessage()), { kind: "gone", reason: "webpush 404 no such subscription" });
});

test("subscriptions we cannot push to are quarantined as malformed, without a request", async (t) => {
  const { server, provider } = await setup(t);
  const good = server.subscribe();
  const malformed = [
    "not json",
    JSON.stringify({ ...good, endpoint: good.endpoint.replace("https:", "http:") }),
    JSON.stringify({ endpoint: good.endpoint }),
    JSON.stringify({ ...good, keys: { p256dh: good.keys.p256dh, auth: "c2hvcnQ" } }),
    JSON.stringify({ ...good, keys: { p256dh: good.keys.auth, auth: good.keys.auth } }),
    JSON.stringify({ ...good, endpoint: "not a url" }),
  ];
  for (const token of malformed) t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "quarantine", reason: "malformed subscription" }, token);
  t.is(server.requests.length, 0);
});

test("a payload over 4 KB (413) fails", async (t) => {
  const { server, provider } = await setup(t);
  const verdict = await provider.send(target(server.subscribe()), sampleMessage({ body: "x".repeat(5000) }));
  t.deepEqual(verdict, { kind: "failed", reason: "webpush 413 payload too large" });
});

test("a VAPID key the push service rejects (403, 401) fails", async (t) => {
  const other = webpush.generateVAPIDKeys();
  // The server expects another application server key: 403.
  const { server, provider } = await setup(t, {}, { vapidPublicKey: other.publicKey });
  t.deepEqual(await provider.send(target(server.subscribe()), sampleMessage()), { kind: "failed", reason: "webpush 403 k is not the subscription's application server key" });
  // A push service that refuses our (correct) key anyway: 401, then 400.
  const good = await setup(t);
  const goodSubscription = good.server.subscribe();
  good.server.respond(good.server.idOf(goodSubscription), [{ status: 401, body: "Unauthorized" }, { status: 400, body: "Bad Request" }]);
  t.deepEqual(await good.provider.send(target(goodSubscription), sampleMessage()), { kind: "failed", reason: "webpush 401 Unauthorized" });
  t.deepEqual(await good.provider.send(target(goodSubscription), sampleMessage()), { kind: "failed", reason: "webpush 400 Bad Request" });
});

test("429 and 5xx are retried, honouring Retry-After", async (t) => {
  const { server, provider, clock } = await setup(t);
  const subscription = server.subscribe();
  server.respond(server.idOf(subscription), [
    { status: 429, retryAfter: 5 },
    { status: 503, retryAfter: new Date(clock.now() + 60_000).toUTCString() },
    { status: 500 },
  ]);
  t.deepEqual(await provider.send(target(subscription), sampleMessage()), { kind: "retry", reason: "webpush 429", retryAfterMs: 5000 });
  const second = await provider.send(target(subscription), sampleMessage());
  // An HTTP date has whole seconds: the wait is the minute, less the sub-second part of now.
  t.true(second.kind === "retry" && second.retryAfterMs !== undefined && second.retryAfterMs > 59_000 && second.retryAfterMs <= 60_000, JSON.stringify(second));
  t.deepEqual(await provider.send(target(subscription), sampleMessage()), { kind: "retry", reason: "webpush 500" });
  t.deepEqual(await provider.send(target(subscription), sampleMessage()), { kind: "delivered" });
});

test("no answer within the request timeout is a retry", async (t) => {
  const { server, provider } = await setup(t, { requestTimeoutMs: HANG_TIMEOUT_MS });
  const subscription = server.subscribe();
  server.respond(server.idOf(subscription), [{ hang: true }]);
  const verdict = await provider.send(target(subscription), sampleMessage());
  t.is(verdict.kind, "retry");
  t.regex(verdict.kind === "retry" ? verdict.reason : "", /webpush timeout/);
  t.deepEqual(await provider.send(target(subscription), sampleMessage()), { kind: "delivered" });
});

test("an unreachable push service is a retry", async (t) => {
  const { server, provider } = await setup(t);
  const subscription = { ...server.subscribe(), endpoint: "https://127.0.0.1:1/push/x" };
  const verdict = await provider.send(target(subscription), sampleMessage());
  t.is(verdict.kind, "retry");
  t.regex(verdict.kind === "retry" ? verdict.reason : "", /webpush network/);
});

test("a long, multi-byte payload still decrypts", async (t) => {
  const { server, provider } = await setup(t);
  const subscription = server.subscribe();
  const message = sampleMessage({ body: "🐦 ".repeat(700) });
  t.deepEqual(await provider.send(target(subscription), message), { kind: "delivered" });
  t.is(JSON.parse(server.requestsFor(server.idOf(subscription))[0]?.payload ?? "{}").body, message.body);
});

test("VAPID keys are checked at startup, including that they are one pair", async (t) => {
  const a = webpush.generateVAPIDKeys();
  const b = webpush.generateVAPIDKeys();
  t.deepEqual(vapidKeyProblems(a.publicKey, a.privateKey), []);
  t.deepEqual(vapidKeyProblems(b.publicKey, a.privateKey), [{ key: "public", problem: "is not the public key of the configured private key" }]);
  t.deepEqual(
    vapidKeyProblems("abc", "def").map((p) => p.key),
    ["public", "private"],
  );
  await t.throwsAsync(createWebPushProvider({ vapidPublicKey: b.publicKey, vapidPrivateKey: a.privateKey, subject: SUBJECT }), { message: /not the public key/ });
  await t.throwsAsync(createWebPushProvider({ vapidPublicKey: a.publicKey, vapidPrivateKey: a.privateKey, subject: "push@aviary.test" }));
});

test("parseSubscription accepts what browsers produce", (t) => {
  const keys = { p256dh: Buffer.alloc(65, 4).toString("base64url"), auth: Buffer.alloc(16, 1).toString("base64url") };
  t.deepEqual(parseSubscription(JSON.stringify({ endpoint: "https://fcm.googleapis.com/fcm/send/abc", expirationTime: null, keys })), { endpoint: "https://fcm.googleapis.com/fcm/send/abc", keys });
  t.is(parseSubscription(JSON.stringify({ endpoint: "https://x.test/a", keys: { ...keys, auth: 42 } })), undefined);
});
