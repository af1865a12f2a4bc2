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
import { createHash, randomBytes } from "node:crypto";
import type { S3Client } from "@aws-sdk/client-s3";
import { startTestAuth, testServiceClient, type TestAuth } from "../../auth/test/harness.ts";
import { startTestUser, type TestUser } from "../../user/test/harness.ts";
import { dropBucket, s3Client, startTestMedia, type TestMedia } from "../../media/test/harness.ts";
import type { Database } from "../src/db/database.ts";
import { lateExportPeers } from "./export-peers.ts";
import { startTestFeed, type TestFeed } from "../../feed/test/harness.ts";
import { bffConfigFromEnv, startBffService, type RunningBffService } from "@aviary/bff";
import { realtimeConfigFromEnv, startRealtimeService, type RunningRealtimeService } from "@aviary/realtime";
import { notificationConfigFromEnv, startNotificationService, type RunningNotificationService } from "@aviary/notification";
import { chatConfigFromEnv, startChatService, type RunningChatService } from "@aviary/chat";
import { moderationConfigFromEnv, startModerationService, type RunningModerationService } from "@aviary/moderation";
import { auditConfigFromEnv, startAuditService, type RunningAuditService } from "@aviary/audit";
import { edgeUpstreams, startEnvoy, type EnvoyOptions, type RunningEnvoy } from "./envoy.ts";
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
  /** The auth service's data-export bucket (archives are built from the mesh's own services). */
  exports: { s3: S3Client; bucket: string };
  /** Every service's database, and every bucket: where a user's data can be (the leftovers check scans these). */
  stores(): { databases: Database[]; buckets: Array<{ s3: S3Client; bucket: string }> };
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
/** A service client whose one scope no RPC asks for: its tokens are valid, and refused by every internal RPC (the authorization matrix). */
export const unscopedClient = testServiceClient("matrix-unscoped", ["matrix.nothing"]);
const pageTokenSecret = "test-page-token-secret-0123456789";

export async function startTestMesh(options: TestMeshOptions = {}): Promise<TestMesh> {
  const urls = await infra();
  // Stopped in reverse start order however far the start got.
  const stops: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const stop of stops.reverse()) await stop();
  };
  try {
    // Data-export archives in a bucket of the mesh's own, built from the services started below.
    const exportPeers = lateExportPeers();
    const exports = { s3: s3Client(urls.s3), bucket: `aviary-exports-${randomBytes(6).toString("hex")}` };
    stops.push(async () => {
      await dropBucket(exports.s3, exports.bucket);
      exports.s3.destroy();
    });
    const auth = await startTestAuth({
      S3_ENDPOINT: urls.s3.endpoint,
      S3_ACCESS_KEY: urls.s3.accessKey,
      S3_SECRET_KEY: urls.s3.secretKey,
      S3_REGION: urls.s3.region,
      S3_CREATE_BUCKET: "true",
      AUTH_EXPORT_BUCKET: exports.bucket,
      // The notification service trades its secret for service tokens (UserInternalService: who follows whom, devices).
      AUTH_SERVICE_CLIENTS: [
        exportPeers.clientEntry,
        `notification:user.devices.read+user.devices.write+user.profiles.read:${createHash("sha256").update(notificationSecret).digest("hex")}`,
        unscopedClient.entry,
      ].join(","),
      ...options.env?.auth,
    }, { exportPeers: exportPeers.peers });
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
        NOTIFICATION_INTERNAL_PORT: "0",
        DATABASE_URL: notificationDatabase.url,
        REDIS_URL: urls.redisUrl,
        KAFKA_BROKERS: urls.kafkaBrokers.join(","),
        AUTH_JWKS_URL: jwks,
        AUTH_URL: auth.service.peerUrl,
        USER_URL: user.service.peerUrl,
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
        CHAT_INTERNAL_PORT: "0",
        CHAT_ROLE: "all",
        DATABASE_URL: chatDatabase.url,
        REDIS_URL: urls.redisUrl,
        KAFKA_BROKERS: urls.kafkaBrokers.join(","),
        AUTH_JWKS_URL: jwks,
        USER_URL: user.service.peerUrl,
        // Attachments and group avatars are checked with this media service.
        MEDIA_URL: media.service.peerUrl,
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
        BFF_INTERNAL_PORT: "0",
        AUTH_JWKS_URL: jwks,
        USER_URL: user.service.peerUrl,
        FEED_URL: feed.service.peerUrl,
        NOTIFICATION_URL: notification.peerUrl,
        CHAT_URL: chat.peerUrl,
        REDIS_URL: urls.redisUrl,
        LOG_LEVEL: "silent",
        ...options.env?.bff,
      }),
    );
    stops.push(() => bff.close());
    const realtime = await startRealtimeService(
      realtimeConfigFromEnv({
        REALTIME_PORT: "0",
        REALTIME_INTERNAL_PORT: "0",
        AUTH_JWKS_URL: jwks,
        USER_URL: user.service.peerUrl,
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
        MODERATION_INTERNAL_PORT: "0",
        MODERATION_GROUP: uniqueName("moderation_mesh"),
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
    // The audit log: reads the auth and moderation topics in a group of its own, and anchors its chain in a bucket of its own.
    const auditDatabase = await freshDatabase(urls.databaseUrl, "audit_mesh");
    stops.push(() => auditDatabase.drop());
    const anchors = { s3: s3Client(urls.s3), bucket: `aviary-audit-${randomBytes(6).toString("hex")}` };
    stops.push(async () => {
      await dropBucket(anchors.s3, anchors.bucket);
      anchors.s3.destroy();
    });
    const audit = await startAuditService(
      auditConfigFromEnv({
        AUDIT_PORT: "0",
        AUDIT_INTERNAL_PORT: "0",
        DATABASE_URL: auditDatabase.url,
        S3_ENDPOINT: urls.s3.endpoint,
        S3_ACCESS_KEY: urls.s3.accessKey,
        S3_SECRET_KEY: urls.s3.secretKey,
        S3_REGION: urls.s3.region,
        S3_CREATE_BUCKET: "true",
        AUDIT_ANCHOR_BUCKET: anchors.bucket,
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
    exportPeers.connect(auth.service.peerUrl, {
      user: user.service.peerUrl,
      post: feed.post.service.peerUrl,
      media: media.service.peerUrl,
      chat: chat.peerUrl,
      notification: notification.peerUrl,
      moderation: moderation.peerUrl,
    });
    // gRPC, gRPC-web and REST through the edge reach the services' internal listeners, as deployed.
    const { upstreams, internalUpstreams } = edgeUpstreams({
      realtime,
      auth: auth.service,
      user: user.service,
      media: media.service,
      post: feed.post.service,
      feed: feed.service,
      bff,
      notification,
      chat,
      moderation,
      audit,
    });
    const envoy = await startEnvoy({ ...options.envoy, upstreams, internalUpstreams });
    stops.push(() => envoy.stop());
    const stores = () => ({
      databases: [auth.service.database, user.service.database, media.service.database, feed.post.service.database, feed.service.database, notification.database, chat.database, moderation.database, audit.database],
      buckets: [{ s3: media.s3, bucket: media.bucket }, exports],
    });
    return { auth, user, media, feed, bff, realtime, notification, chat, moderation, audit, exports, stores, envoy, upstreams, close };
  } catch (error) {
    await close();
    throw error;
  }
}
