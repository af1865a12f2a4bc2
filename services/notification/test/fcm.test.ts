import test, { type ExecutionContext } from "ava";
import { randomBytes } from "node:crypto";
import { createFcmProvider, parseServiceAccount, FCM_SCOPE, type FcmProviderOptions } from "../src/push/fcm.ts";
import type { PushProvider, PushTarget } from "../src/push/provider.ts";
import { fakeServiceAccount, startFcmServer, type FakeServiceAccount, type FcmServer } from "./providers/fcm-server.ts";
import { HANG_TIMEOUT_MS, manualClock, sampleMessage, type ManualClock } from "./providers/fixtures.ts";

const PROJECT = "aviary-test";

const registrationToken = (): string => `${randomBytes(11).toString("base64url")}:APA91b${randomBytes(100).toString("base64url")}`;
const target = (token: string): PushTarget => ({ deviceId: "d-1", platform: "android", token });

interface Setup {
  server: FcmServer;
  account: FakeServiceAccount;
  provider: PushProvider;
  clock: ManualClock;
}

async function setup(t: ExecutionContext, overrides: Partial<FcmProviderOptions> = {}): Promise<Setup> {
  const clock = manualClock();
  const server = await startFcmServer({ projectId: PROJECT, now: clock.now });
  const account = fakeServiceAccount(server.url, { projectId: PROJECT });
  server.trust(account.serviceAccount.client_email, account.publicKey);
  const provider = await createFcmProvider({ serviceAccount: account.serviceAccount, url: server.url, ca: server.ca, now: clock.now, ...overrides });
  t.teardown(async () => {
    await provider.close();
    await server.close();
  });
  return { server, account, provider, clock };
}

test("a delivered push: the v1 message with collapse key, tag, badge and data, under a service-account token", async (t) => {
  const { server, account, provider, clock } = await setup(t);
  const token = registrationToken();
  const message = sampleMessage();
  t.deepEqual(await provider.send(target(token), message), { kind: "delivered" });

  const [send] = server.requestsFor(token);
  if (send === undefined) return t.fail("no send recorded");
  t.is(send.status, 200);
  t.is(send.path, `/v1/projects/${PROJECT}/messages:send`);
  t.deepEqual(send.body, {
    message: {
      token,
      notification: { title: message.title, body: message.body },
      data: { notification_id: "n-1", group_id: "g-1", kind: "like" },
      android: { collapse_key: message.collapseKey, notification: { tag: message.collapseKey, notification_count: 4 } },
      apns: { payload: { aps: { badge: 4 } } },
    },
  });

  const [grant] = server.tokenRequests;
  t.is(grant?.grantType, "urn:ietf:params:oauth:grant-type:jwt-bearer");
  t.is(grant?.status, 200);
  const iat = Math.floor(clock.now() / 1000);
  t.deepEqual(grant?.claims, { iss: account.serviceAccount.client_email, scope: FCM_SCOPE, aud: server.tokenUrl, iat, exp: iat + 3600 });
  t.is(send.accessToken, grant?.accessToken);
});

test("one access token serves many sends", async (t) => {
  const { server, provider } = await setup(t);
  const tokens = Array.from({ length: 5 }, registrationToken);
  // Concurrent first sends wait for the same token request.
  const verdicts = await Promise.all(tokens.map((tk) => provider.send(target(tk), sampleMessage())));
  await provider.send(target(tokens[0] ?? ""), sampleMessage());
  t.true(verdicts.every((v) => v.kind === "delivered"));
  t.is(server.tokenRequests.length, 1);
  t.is(server.requests.length, 6);
});

test("the access token is renewed shortly before it expires", async (t) => {
  const { server, provider, clock } = await setup(t);
  server.setTokenLifetime(3599);
  const token = registrationToken();
  await provider.send(target(token), sampleMessage());
  // Renewal is due 5 minutes before expiry.
  clock.advance((3599 - 301) * 1000);
  await provider.send(target(token), sampleMessage());
  t.is(server.tokenRequests.length, 1);
  clock.advance(2000);
  await provider.send(target(token), sampleMessage());
  t.is(server.tokenRequests.length, 2);
  const sends = server.requestsFor(token);
  t.true(sends.every((s) => s.status === 200));
  t.not(sends[2]?.accessToken, sends[0]?.accessToken);
});

test("a short-lived token is renewed at half its life", async (t) => {
  const { server, provider, clock } = await setup(t);
  server.setTokenLifetime(60);
  const token = registrationToken();
  await provider.send(target(token), sampleMessage());
  clock.advance(29_000);
  await provider.send(target(token), sampleMessage());
  t.is(server.tokenRequests.length, 1);
  clock.advance(1000);
  await provider.send(target(token), sampleMessage());
  t.is(server.tokenRequests.length, 2);
});

test("a 401 (token revoked early) gets a new access token and one retry", async (t) => {
  const { server, provider } = await setup(t);
  const token = registrationToken();
  await provider.send(target(token), sampleMessage());
  server.expireTokens();
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "delivered" });
  t.is(server.tokenRequests.length, 2);
  t.deepEqual(
    server.requestsFor(token).map((s) => s.status),
    [200, 401, 200],
  );
});

test("401 again after the refresh is failed (our credentials)", async (t) => {
  const { server, provider } = await setup(t);
  const token = registrationToken();
  server.respond(token, [
    { status: 401, errorCode: null, message: "Request had invalid authentication credentials." },
    { status: 401, errorCode: null, message: "Request had invalid authentication credentials." },
  ]);
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "failed", reason: "fcm 401 UNAUTHENTICATED: Request had invalid authentication credentials." });
  t.is(server.requestsFor(token).length, 2);
  t.is(server.tokenRequests.length, 2);
});

test("THIRD_PARTY_AUTH_ERROR fails without a token refresh", async (t) => {
  const { server, provider } = await setup(t);
  const token = registrationToken();
  server.respond(token, [{ status: 401, errorCode: "THIRD_PARTY_AUTH_ERROR", message: "Auth error from APNS or Web Push Service" }]);
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "failed", reason: "fcm 401 THIRD_PARTY_AUTH_ERROR: Auth error from APNS or Web Push Service" });
  t.is(server.tokenRequests.length, 1);
});

test("404 UNREGISTERED is gone", async (t) => {
  const { server, provider } = await setup(t);
  const token = registrationToken();
  server.unregistered(token);
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "gone", reason: "fcm 404 UNREGISTERED: Requested entity was not found." });
});

test("403 SENDER_ID_MISMATCH is quarantined", async (t) => {
  const { server, provider } = await setup(t);
  const token = registrationToken();
  server.senderMismatch(token);
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "quarantine", reason: "fcm 403 SENDER_ID_MISMATCH: SenderId mismatch" });
});

test("INVALID_ARGUMENT about the registration token is quarantined, never gone", async (t) => {
  const { server, provider } = await setup(t);
  const token = registrationToken();
  server.invalidToken(token);
  t.deepEqual(await provider.send(target(token), sampleMessage()), {
    kind: "quarantine",
    reason: "fcm 400 INVALID_ARGUMENT: The registration token is not a valid FCM registration token",
  });
  // The field-violation form of the same complaint.
  t.deepEqual(await provider.send(target(""), sampleMessage()), { kind: "quarantine", reason: "fcm 400 INVALID_ARGUMENT: Request contains an invalid argument." });
});

test("any other INVALID_ARGUMENT (here a reserved data key) fails: the message is wrong, not the device", async (t) => {
  const { provider } = await setup(t);
  const verdict = await provider.send(target(registrationToken()), sampleMessage({ data: { "google.sent_time": "1" } }));
  t.deepEqual(verdict, { kind: "failed", reason: "fcm 400 INVALID_ARGUMENT: Invalid data payload key: google.sent_time" });
});

test("503, 429 and 500 are retried, honouring Retry-After", async (t) => {
  const { server, provider, clock } = await setup(t);
  const token = registrationToken();
  server.respond(token, [
    { status: 503, retryAfter: 3, message: "The service is currently unavailable." },
    { status: 429, retryAfter: new Date(clock.now() + 120_000).toUTCString(), message: "Quota exceeded" },
    { status: 500, message: "Internal error" },
  ]);
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "retry", reason: "fcm 503 UNAVAILABLE: The service is currently unavailable.", retryAfterMs: 3000 });
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "retry", reason: "fcm 429 QUOTA_EXCEEDED: Quota exceeded", retryAfterMs: 120_000 });
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "retry", reason: "fcm 500 INTERNAL: Internal error" });
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "delivered" });
});

test("no answer within the request timeout is a retry", async (t) => {
  const { server, provider } = await setup(t, { requestTimeoutMs: HANG_TIMEOUT_MS });
  const token = registrationToken();
  server.respond(token, [{ hang: true }]);
  const verdict = await provider.send(target(token), sampleMessage());
  t.is(verdict.kind, "retry");
  t.regex(verdict.kind === "retry" ? verdict.reason : "", /fcm timeout/);
  t.deepEqual(await provider.send(target(token), sampleMessage()), { kind: "delivered" });
});

test("a service account the token endpoint refuses is failed; an unreachable one is retried", async (t) => {
  const { server } = await setup(t);
  const stranger = fakeServiceAccount(server.url, { projectId: PROJECT, clientEmail: "stranger@aviary-test.iam.gserviceaccount.com" });
  const refused = await createFcmProvider({ serviceAccount: stranger.serviceAccount, url: server.url, ca: server.ca });
  t.teardown(() => refused.close());
  const verdict = await refused.send(target(registrationToken()), sampleMessage());
  t.deepEqual(verdict, { kind: "failed", reason: "fcm oauth 400 invalid_grant: Invalid grant: account not found" });

  const unreachable = await createFcmProvider({ serviceAccount: stranger.serviceAccount, url: server.url, ca: server.ca, tokenUrl: "https://127.0.0.1:1/token" });
  t.teardown(() => unreachable.close());
  const second = await unreachable.send(target(registrationToken()), sampleMessage());
  t.is(second.kind, "retry");
  t.regex(second.kind === "retry" ? second.reason : "", /fcm oauth network/);
  t.is(server.requests.length, 0);
});

test("FCM unreachable is a retry", async (t) => {
  const { server, account, clock } = await setup(t);
  const provider = await createFcmProvider({ serviceAccount: account.serviceAccount, url: "https://127.0.0.1:1", ca: server.ca, now: clock.now });
  t.teardown(() => provider.close());
  const verdict = await provider.send(target(registrationToken()), sampleMessage());
  t.is(verdict.kind, "retry");
  t.regex(verdict.kind === "retry" ? verdict.reason : "", /fcm network/);
});

test("a service-account file is checked for the fields the adapter needs", (t) => {
  t.throws(() => parseServiceAccount("{"), { message: "not valid JSON" });
  t.throws(() => parseServiceAccount(JSON.stringify({ project_id: "p", client_email: "e" })), { message: "missing private_key, token_uri" });
  const account = parseServiceAccount(fakeServiceAccount("https://oauth2.googleapis.com").json);
  t.is(account.token_uri, "https://oauth2.googleapis.com/token");
});
