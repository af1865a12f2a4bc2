/**
 * The whole mesh behind a real Envoy, on the real infrastructure: auth, user,
 * media, post, feed, BFF, realtime, notification and chat (a database each on
 * the shared PostgreSQL, the shared Redis, Kafka and S3; every service
 * verifies tokens with this auth service's JWKS; the notification service
 * gets its service identity from it), all in this process, one Envoy in
 * front. Used by the tests that drive the edge as a client would
 * (tools/test/edge-rest.test.ts, tools/test/fuzz.test.ts) and by the soak
 * benchmark (bench/soak.ts). `close()` stops everything and drops the databases.
 */
import { createHash } from "node:crypto";
import { startTestAuth, type TestAuth } from "../../auth/test/harness.ts";
import { startTestUser, type TestUser } from "../../user/test/harness.ts";
import { startTestMedia, type TestMedia } from "../../media/test/harness.ts";
import { startTestFeed, type TestFeed } from "../../feed/test/harness.ts";
import { bffConfigFromEnv, startBffService, type RunningBffService } from "@aviary/bff";
import { realtimeConfigFromEnv, startRealtimeService, type RunningRealtimeService } from "@aviary/realtime";
import { notificationConfigFromEnv, startNotificationService, type RunningNotificationService } from "@aviary/notification";
import { chatConfigFromEnv, startChatService, type RunningChatService } from "@aviary/chat";
import { moderationConfigFromEnv, startModerationService, type RunningModerationService } from "@aviary/moderation";
import { auditConfigFromEnv, startAuditService, type RunningAuditService } from "@aviary/audit";
import { startEnvoy, type EnvoyOptions, type RunningEnvoy } from "./envoy.ts";
import { infra, uniqueName } from "./infra.ts";
import { freshDatabase } from "./database.ts";

export interface TestMesh {
  auth: TestAuth;
  user: TestUser;
  media: TestMedia;
  /** The feed service with its own post service (`feed.post`). */
  feed: TestFeed;
  bff: RunningBffService;
  realtime: RunningRealtimeService;
  notification: RunningNotificationService;
  chat: RunningChatService;
  moderation: RunningModerationService;
  audit: RunningAuditService;
  envoy: RunningEnvoy;
  /** Every service's URL by its edge cluster name (what `startEnvoy` was given). */
  upstreams: Record<string, string>;
  close(): Promise<void>;
}

export interface TestMeshOptions {
  /** Envoy options besides the upstreams (e.g. `discardOutput` for a benchmark). */
  envoy?: Omit<EnvoyOptions, "upstreams">;
  /** Extra environment per service, over the test defaults (e.g. `{ auth: { AUTH_ARGON2_PASSES: "2" } }`). */
  env?: Partial<Record<"auth" | "user" | "feed" | "bff" | "realtime" | "notification" | "chat", Record<string, string>>>;
}

/** The notification service's client secret; the auth service knows only its SHA-256. */
const notificationSecret = "test-mesh-notification-secret-0123456789abcdef";
const pageTokenSecret = "test-page-token-secret-0123456789";

export async function startTestMesh(options: TestMeshOptions = {}): Promise<TestMesh> {
  const urls = await infra();
  // Stopped in reverse start order however far the start got.
  const stops: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const stop of stops.reverse()) await stop();
  };
  try {
    // The notification service trades this secret for service tokens (UserInternalService: who follows whom, devices).
    const auth = await startTestAuth({
      AUTH_SERVICE_CLIENTS: `notification:user.devices.read+user.devices.write+user.profiles.read:${createHash("sha256").update(notificationSecret).digest("hex")}`,
      ...options.env?.auth,
    });
    stops.push(() => auth.close());
    const jwks = `${auth.service.url}/.well-known/jwks.json`;
    // The user and media services verify tokens of this one auth service; the user service asks this media service about avatars.
    const media = await startTestMedia({}, auth);
    stops.push(() => media.close());
    const user = await startTestUser(options.env?.user ?? {}, auth, media);
    stops.push(() => user.close());
    // Every publisher to the realtime service's streams shares its Redis prefix.
    const realtimePrefix = `${uniqueName("rtmesh")}:`;
    // The feed harness brings its own post service, which calls this user and media service;
    // its live "new posts" hints go to the realtime streams.
    const feed = await startTestFeed({ REALTIME_REDIS_PREFIX: realtimePrefix, ...options.env?.feed }, { deps: { auth, user, media } });
    stops.push(() => feed.close());
    // The notification service (role all, no push provider: pushes are recorded as skipped) consumes
    // the post and user events in its own group and publishes to the realtime service's streams.
    const notificationDatabase = await freshDatabase(urls.databaseUrl, "notification_mesh");
    stops.push(() => notificationDatabase.drop());
    const notification = await startNotificationService(
      notificationConfigFromEnv({
        NOTIFICATION_PORT: "0",
        DATABASE_URL: notificationDatabase.url,
        REDIS_URL: urls.redisUrl,
        KAFKA_BROKERS: urls.kafkaBrokers.join(","),
        AUTH_JWKS_URL: jwks,
        AUTH_URL: auth.service.url,
        USER_URL: user.service.url,
        NOTIFICATION_CLIENT_SECRET: notificationSecret,
        NOTIFICATION_GROUP: uniqueName("notification_mesh"),
        NOTIFICATION_PUSH_GROUP: uniqueName("notification_push_mesh"),
        NOTIFICATION_EVENTS_TOPIC: uniqueName("notification_events_mesh"),
        REALTIME_REDIS_PREFIX: realtimePrefix,
        TRUSTED_PROXY_HOPS: "1",
        PAGE_TOKEN_SECRET: pageTokenSecret,
        LOG_LEVEL: "silent",
        ...options.env?.notification,
      }),
    );
    stops.push(() => notification.close());
    // The chat service (role all): its own database and delivery group, delivering to the realtime service's streams.
    const chatDatabase = await freshDatabase(urls.databaseUrl, "chat_mesh");
    stops.push(() => chatDatabase.drop());
    const chat = await startChatService(
      chatConfigFromEnv({
        CHAT_PORT: "0",
        CHAT_ROLE: "all",
        DATABASE_URL: chatDatabase.url,
        REDIS_URL: urls.redisUrl,
        KAFKA_BROKERS: urls.kafkaBrokers.join(","),
        AUTH_JWKS_URL: jwks,
        USER_URL: user.service.url,
        // Attachments and group avatars are checked with this media service.
        MEDIA_URL: media.service.url,
        CHAT_GROUP: uniqueName("chat_mesh"),
        REALTIME_REDIS_PREFIX: realtimePrefix,
        TRUSTED_PROXY_HOPS: "1",
        PAGE_TOKEN_SECRET: pageTokenSecret,
        LOG_LEVEL: "silent",
        ...options.env?.chat,
      }),
    );
    stops.push(() => chat.close());
    const bff = await startBffService(
      bffConfigFromEnv({
        BFF_PORT: "0",
        AUTH_JWKS_URL: jwks,
        USER_URL: user.service.url,
        FEED_URL: feed.service.url,
        NOTIFICATION_URL: notification.url,
        CHAT_URL: chat.url,
        REDIS_URL: urls.redisUrl,
        LOG_LEVEL: "silent",
        ...options.env?.bff,
      }),
    );
    stops.push(() => bff.close());
    const realtime = await startRealtimeService(
      realtimeConfigFromEnv({
        REALTIME_PORT: "0",
        AUTH_JWKS_URL: jwks,
        USER_URL: user.service.url,
        REDIS_URL: urls.redisUrl,
        REALTIME_REDIS_PREFIX: realtimePrefix,
        LOG_LEVEL: "silent",
        ...options.env?.realtime,
      }),
    );
    stops.push(() => realtime.close());
    // The moderation service: its events reach the post service (hidden and removed content) and auth (suspensions).
    const moderationDatabase = await freshDatabase(urls.databaseUrl, "moderation_mesh");
    stops.push(() => moderationDatabase.drop());
    const moderation = await startModerationService(
      moderationConfigFromEnv({
        MODERATION_PORT: "0",
        DATABASE_URL: moderationDatabase.url,
        REDIS_URL: urls.redisUrl,
        KAFKA_BROKERS: urls.kafkaBrokers.join(","),
        AUTH_JWKS_URL: jwks,
        TRUSTED_PROXY_HOPS: "1",
        PAGE_TOKEN_SECRET: pageTokenSecret,
        LOG_LEVEL: "silent",
      }),
    );
    stops.push(() => moderation.close());
    // The audit log: reads the auth and moderation topics in a group of its own.
    const auditDatabase = await freshDatabase(urls.databaseUrl, "audit_mesh");
    stops.push(() => auditDatabase.drop());
    const audit = await startAuditService(
      auditConfigFromEnv({
        AUDIT_PORT: "0",
        DATABASE_URL: auditDatabase.url,
        REDIS_URL: urls.redisUrl,
        KAFKA_BROKERS: urls.kafkaBrokers.join(","),
        AUTH_JWKS_URL: jwks,
        AUDIT_GROUP: uniqueName("audit_mesh"),
        TRUSTED_PROXY_HOPS: "1",
        PAGE_TOKEN_SECRET: pageTokenSecret,
        LOG_LEVEL: "silent",
      }),
    );
    stops.push(() => audit.close());
    const upstreams = {
      realtime: realtime.url,
      auth: auth.service.url,
      user: user.service.url,
      media: media.service.url,
      post: feed.post.service.url,
      feed: feed.service.url,
      bff: bff.url,
      notification: notification.url,
      chat: chat.url,
      moderation: moderation.url,
      audit: audit.url,
    };
    const envoy = await startEnvoy({ ...options.envoy, upstreams });
    stops.push(() => envoy.stop());
    return { auth, user, media, feed, bff, realtime, notification, chat, moderation, audit, envoy, upstreams, close };
  } catch (error) {
    await close();
    throw error;
  }
}
