// The REST contract table (tools/edge/rest-cases.ts) through a real Envoy in
// front of the real auth, user, media, post, feed, BFF, realtime,
// notification and chat services (real PostgreSQL — a database each —, Redis, Kafka
// and S3; every service verifies tokens with the test auth service's JWKS;
// the notification service gets its service identity from that auth service),
// one ava test per row, in order; plus the
// cases a table against a black box cannot show: what the service actually
// receives in x-aviary-claims, and the edge while the auth service is down.
import test from "ava";
import { createHash } from "node:crypto";
import { createServer, type IncomingHttpHeaders } from "node:http2";
import type { AddressInfo } from "node:net";
import { SignJWT, importJWK, type JWK } from "jose";
import { startTestAuth, uniqueEmail, password, type TestAuth } from "../../services/auth/test/harness.ts";
import { startEnvoy, type RunningEnvoy } from "../../services/runtime/test-support/envoy.ts";
import { startTestUser, type TestUser } from "../../services/user/test/harness.ts";
import { startTestMedia, type TestMedia } from "../../services/media/test/harness.ts";
import { startTestFeed, type TestFeed } from "../../services/feed/test/harness.ts";
import { bffConfigFromEnv, startBffService, type RunningBffService } from "@aviary/bff";
import { realtimeConfigFromEnv, startRealtimeService, type RunningRealtimeService } from "@aviary/realtime";
import { notificationConfigFromEnv, startNotificationService, type RunningNotificationService } from "@aviary/notification";
import { chatConfigFromEnv, startChatService, type RunningChatService } from "@aviary/chat";
import { infra, uniqueName } from "../../services/runtime/test-support/infra.ts";
import { freshDatabase } from "../../services/runtime/test-support/database.ts";
import { restCases } from "../edge/rest-cases.ts";
import { newRestContext, runRestCases } from "../edge/rest-runner.ts";
import type { RestContext } from "../edge/rest-cases.ts";

let auth: TestAuth;
let user: TestUser | undefined;
let media: TestMedia | undefined;
let feed: TestFeed | undefined;
let bff: RunningBffService | undefined;
let realtime: RunningRealtimeService | undefined;
let notification: RunningNotificationService | undefined;
let notificationDatabase: { drop(): Promise<void> } | undefined;
let chat: RunningChatService | undefined;
let chatDatabase: { url: string; drop(): Promise<void> } | undefined;
let envoy: RunningEnvoy;
let context: RestContext;

/** The notification service's client secret; the auth service knows only its SHA-256. */
const notificationSecret = "edge-rest-notification-secret-0123456789abcdef";

test.before(async () => {
  const urls = await infra();
  // The notification service trades this secret for service tokens (UserInternalService: who follows whom, devices).
  auth = await startTestAuth({
    AUTH_SERVICE_CLIENTS: `notification:user.devices.read+user.devices.write+user.profiles.read:${createHash("sha256").update(notificationSecret).digest("hex")}`,
  });
  // The user and media services verify tokens of this one auth service; the
  // user service asks this media service about avatars.
  media = await startTestMedia({}, auth);
  user = await startTestUser({}, auth, media);
  // The feed harness brings its own post service, which calls this user and media service.
  feed = await startTestFeed({}, { deps: { auth, user, media } });
  // The notification service (role all, no push provider: pushes are recorded as skipped) consumes
  // the post and user events in its own group and publishes to the realtime service's streams.
  const realtimePrefix = `${uniqueName("rtrest")}:`;
  const database = await freshDatabase(urls.databaseUrl, "notification_rest");
  notificationDatabase = database;
  notification = await startNotificationService(
    notificationConfigFromEnv({
      NOTIFICATION_PORT: "0",
      DATABASE_URL: database.url,
      REDIS_URL: urls.redisUrl,
      KAFKA_BROKERS: urls.kafkaBrokers.join(","),
      AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
      AUTH_URL: auth.service.url,
      USER_URL: user.service.url,
      NOTIFICATION_CLIENT_SECRET: notificationSecret,
      NOTIFICATION_GROUP: uniqueName("notification_rest"),
      NOTIFICATION_PUSH_GROUP: uniqueName("notification_push_rest"),
      NOTIFICATION_EVENTS_TOPIC: uniqueName("notification_events_rest"),
      REALTIME_REDIS_PREFIX: realtimePrefix,
      TRUSTED_PROXY_HOPS: "1",
      PAGE_TOKEN_SECRET: "test-page-token-secret-0123456789",
      LOG_LEVEL: "silent",
    }),
  );
  // The chat service (role all): its own database and delivery group, delivering to the realtime service's streams.
  chatDatabase = await freshDatabase(urls.databaseUrl, "chat_rest");
  chat = await startChatService(
    chatConfigFromEnv({
      CHAT_PORT: "0",
      CHAT_ROLE: "all",
      DATABASE_URL: chatDatabase.url,
      REDIS_URL: urls.redisUrl,
      KAFKA_BROKERS: urls.kafkaBrokers.join(","),
      AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
      USER_URL: user.service.url,
      // Attachments and group avatars are checked with this media service.
      MEDIA_URL: media.service.url,
      CHAT_GROUP: uniqueName("chat_rest"),
      REALTIME_REDIS_PREFIX: realtimePrefix,
      TRUSTED_PROXY_HOPS: "1",
      PAGE_TOKEN_SECRET: "test-page-token-secret-0123456789",
      LOG_LEVEL: "silent",
    }),
  );
  bff = await startBffService(
    bffConfigFromEnv({
      BFF_PORT: "0",
      AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
      USER_URL: user.service.url,
      FEED_URL: feed.service.url,
      NOTIFICATION_URL: notification.url,
      CHAT_URL: chat.url,
      REDIS_URL: urls.redisUrl,
      LOG_LEVEL: "silent",
    }),
  );
  realtime = await startRealtimeService(
    realtimeConfigFromEnv({
      REALTIME_PORT: "0",
      AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
      USER_URL: user.service.url,
      REDIS_URL: urls.redisUrl,
      REALTIME_REDIS_PREFIX: realtimePrefix,
      LOG_LEVEL: "silent",
    }),
  );
  envoy = await startEnvoy({
    upstreams: {
      realtime: realtime.url,
      auth: auth.service.url,
      user: user.service.url,
      media: media.service.url,
      post: feed.post.service.url,
      feed: feed.service.url,
      bff: bff.url,
      notification: notification.url,
      chat: chat.url,
    },
  });
  context = await newRestContext(envoy.url, { expiredToken: await mintExpiredToken(auth) });
});

test.after.always(async () => {
  await envoy?.stop();
  await realtime?.close();
  await bff?.close();
  await notification?.close();
  await notificationDatabase?.drop();
  await chat?.close();
  await chatDatabase?.drop();
  await feed?.close();
  await Promise.all([user?.close(), media?.close()]);
  await auth?.close();
});

for (const row of restCases) {
  test.serial(`REST contract: ${row.name}`, async (t) => {
    const [result] = await runRestCases(envoy.url, context, [row]);
    if (result?.outcome === "skipped") t.fail(`skipped: ${result.problems.join("; ")}`);
    t.deepEqual(result?.problems, [], envoy.output().split("\n").slice(-5).join("\n"));
  });
}

/** A token genuinely signed with the issuer's key, expired an hour ago (the key is read from the auth schema). */
async function mintExpiredToken(service: TestAuth): Promise<string> {
  const [key] = await service.query<{ kid: string; private_jwk: JWK }>(
    "SELECT kid, private_jwk FROM auth.signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
  );
  if (!key) throw new Error("the auth service has no signing key");
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sid: crypto.randomUUID() })
    .setProtectedHeader({ alg: "ES256", kid: key.kid, typ: "at+jwt" })
    .setIssuer("aviary-auth")
    .setAudience("aviary")
    .setSubject(crypto.randomUUID())
    .setIssuedAt(now - 7200)
    .setNotBefore(now - 7200)
    .setExpirationTime(now - 3600)
    .sign(await importJWK(key.private_jwk, "ES256"));
}

async function login(baseUrl: string, email: string): Promise<{ userId: string; accessToken: string }> {
  const json = { "content-type": "application/json" };
  await fetch(`${baseUrl}/v1/auth/register`, { method: "POST", headers: json, body: JSON.stringify({ email, password }) });
  const response = await fetch(`${baseUrl}/v1/auth/login`, { method: "POST", headers: json, body: JSON.stringify({ email, password }) });
  const body = (await response.json()) as { userId: string; tokens: { accessToken: string } };
  return { userId: body.userId, accessToken: body.tokens.accessToken };
}

/**
 * A gRPC upstream that records the headers it receives, behind the edge in
 * place of the auth service (the JWKS still comes from the real one). It
 * answers health checks SERVING and every other call with an empty message.
 */
async function startRecorder(): Promise<{ url: string; seen: IncomingHttpHeaders[]; close(): Promise<void> }> {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    const health = req.url === "/grpc.health.v1.Health/Check";
    if (!health) seen.push(req.headers);
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/grpc" });
      // One length-prefixed frame: HealthCheckResponse{status: SERVING} (field 1 = 1), or an empty message.
      res.write(Buffer.from(health ? [0, 0, 0, 0, 2, 0x08, 0x01] : [0, 0, 0, 0, 0]));
      res.addTrailers({ "grpc-status": "0" });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

test.serial("x-aviary-claims: a client's copy never reaches the service; the verified payload does", async (t) => {
  const recorder = await startRecorder();
  const edge = await startEnvoy({ upstreams: { auth: recorder.url, auth_jwks: auth.service.url } });
  t.teardown(async () => {
    await edge.stop();
    await recorder.close();
  });
  const user = await login(envoy.url, uniqueEmail("claims"));
  const forged = Buffer.from(JSON.stringify({ sub: "00000000-0000-4000-8000-000000000000" })).toString("base64url");

  // Protected route, valid token plus a forged header: exactly the verified payload arrives.
  const me = await fetch(`${edge.url}/v1/auth/me`, { headers: { authorization: `Bearer ${user.accessToken}`, "x-aviary-claims": forged } });
  t.is(me.status, 200);
  const protectedCall = recorder.seen.at(-1);
  const claims = protectedCall?.["x-aviary-claims"];
  t.is(typeof claims, "string", "exactly one x-aviary-claims value");
  t.is((JSON.parse(Buffer.from(String(claims), "base64url").toString("utf8")) as { sub: string }).sub, user.userId);
  t.is(protectedCall?.[":path"], "/aviary.auth.v1.AuthService/GetMe");

  // Public route (no JWT verified): the forged header is removed, nothing replaces it.
  const publicCall = await fetch(`${edge.url}/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-aviary-claims": forged },
    body: JSON.stringify({ email: "x@example.org", password }),
  });
  t.is(publicCall.status, 200);
  t.is(recorder.seen.at(-1)?.["x-aviary-claims"], undefined);
  t.is(recorder.seen.at(-1)?.[":path"], "/aviary.auth.v1.AuthService/Login");
});

test.serial("auth service down: public routes answer 503 JSON; valid tokens still pass jwt_authn from the cached JWKS", async (t) => {
  const second = await startTestAuth();
  const edge = await startEnvoy({ upstreams: { auth: second.service.url } });
  t.teardown(async () => {
    await edge.stop();
    await second.close();
  });
  const user = await login(edge.url, uniqueEmail("outage"));
  await second.stopService();

  const loginDown = await fetch(`${edge.url}/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "x@example.org", password }),
  });
  t.is(loginDown.status, 503);
  t.like(await loginDown.json(), { code: 14 });

  // 503, not 401: the token was verified against the cached keys and the request went on to the (dead) upstream.
  const meDown = await fetch(`${edge.url}/v1/auth/me`, { headers: { authorization: `Bearer ${user.accessToken}` } });
  t.is(meDown.status, 503);
  t.like(await meDown.json(), { code: 14 });

  // Verification itself still works: a bad token is still refused at the edge.
  const bad = await fetch(`${edge.url}/v1/auth/me`, { headers: { authorization: `Bearer ${context.forgedToken}` } });
  t.is(bad.status, 401);
});
