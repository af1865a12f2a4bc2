// `make dev`: the services on one machine with embedded defaults — one PGlite
// database (persisted in .dev/pglite), one in-process event bus and one
// in-memory cache shared by every service in this process, as the real
// PostgreSQL, Kafka and Redis would be shared. Setting DATABASE_URL,
// KAFKA_BROKERS or REDIS_URL switches that part to the real thing. With Envoy
// installed, the rate-limit service runs here too (on the same cache) and the
// edge asks it about every request.
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import { openDatabase } from "@aviary/runtime/db/open";
import { openEventBus } from "@aviary/runtime/bus/open";
import { openCache } from "@aviary/runtime/cache/open";
import { createLogger } from "@aviary/runtime/log";
import { runService } from "@aviary/runtime/server";
import { authConfigFromEnv, startAuthService } from "@aviary/auth";
import { rateLimitConfigFromEnv, startRateLimitService, type RunningRateLimitService } from "@aviary/ratelimit";
import { startUserService, userConfigFromEnv } from "@aviary/user";
import { mediaConfigFromEnv, startMediaService } from "@aviary/media";
import { postConfigFromEnv, startPostService } from "@aviary/post";
import { feedConfigFromEnv, startFeedService } from "@aviary/feed";
import { bffConfigFromEnv, startBffService } from "@aviary/bff";
import { realtimeConfigFromEnv, startRealtimeService } from "@aviary/realtime";
import { notificationConfigFromEnv, startNotificationService } from "@aviary/notification";
import { chatConfigFromEnv, startChatService } from "@aviary/chat";
import { moderationConfigFromEnv, startModerationService } from "@aviary/moderation";
import { auditConfigFromEnv, startAuditService } from "@aviary/audit";
import { loadConfig } from "@aviary/runtime/config";
import { openUserStreams, userStreamsConfigSpec } from "@aviary/runtime/realtime/open";
import { edgeUpstreams, envoyBinary, startEnvoy, type RunningEnvoy } from "../services/runtime/test-support/envoy.ts";
import { internalPortSettings } from "../deploy/envoy/routes.ts";
import { buildWebApp } from "../clients/web/build.ts";

const devDir = resolve(import.meta.dirname, "../.dev");

await runService(
  async () => {
    await mkdir(devDir, { recursive: true });
    const env = process.env;
    const logger = createLogger("dev", "info");
    const database = await openDatabase(env["DATABASE_URL"] ? { url: env["DATABASE_URL"], logger } : { dataDir: resolve(devDir, "pglite"), logger });
    const cache = await openCache(env["REDIS_URL"] ? { url: env["REDIS_URL"], logger } : {});
    const bus = await openEventBus({ clientId: "aviary-dev", logger, ...(env["KAFKA_BROKERS"] ? { brokers: env["KAFKA_BROKERS"].split(",") } : {}) });
    // Users' live streams: one hub for the realtime service and its producers (the feed), in memory unless REALTIME_REDIS_URL / REDIS_URL.
    const userStreams = await openUserStreams({ ...loadConfig(userStreamsConfigSpec, env), redisUrl: env["REDIS_URL"] }, logger);

    // The notification service's identity (it asks the user service's internal API for names and
    // devices with service tokens): a secret made up at each start, unless NOTIFICATION_CLIENT_SECRET
    // is set; the auth service learns its SHA-256. Setting AUTH_SERVICE_CLIENTS replaces the whole
    // list (then it must hold the notification client with the digest of NOTIFICATION_CLIENT_SECRET).
    const notificationSecret = env["NOTIFICATION_CLIENT_SECRET"] ?? randomBytes(32).toString("base64url");
    const serviceClients = `notification:user.devices.read+user.devices.write+user.profiles.read:${createHash("sha256").update(notificationSecret).digest("hex")}`;

    const codeSink = resolve(devDir, "codes.jsonl");
    // Services call each other on their internal grpc-js listeners (9081–9091, as in
    // deploy/: routes.ts); the edge sends them all but Connect (docs/decisions.md, "Internal transport").
    const internalPorts = internalPortSettings;
    const auth = await startAuthService(authConfigFromEnv({ AUTH_CODE_SINK: codeSink, AUTH_EXPORT_DISK_DIR: resolve(devDir, "exports"), PAGE_TOKEN_SECRET: "dev-only-page-token-secret-0123456789", AUTH_SERVICE_CLIENTS: serviceClients, ...internalPorts, ...env }), {
      database,
      cache,
      bus,
    });
    const devSecret = "dev-only-page-token-secret-0123456789";
    const jwks = `${auth.url}/.well-known/jwks.json`;
    // Blobs on local disk unless S3_ENDPOINT is set; the service serves the upload form itself.
    const media = await startMediaService(
      mediaConfigFromEnv({ AUTH_JWKS_URL: jwks, MEDIA_DISK_DIR: resolve(devDir, "media"), MEDIA_DISK_SECRET: devSecret, ...internalPorts, ...env }),
      { database, cache, bus },
    );
    // The user service checks avatars with the media service, as the caller.
    const user = await startUserService(userConfigFromEnv({ AUTH_JWKS_URL: jwks, PAGE_TOKEN_SECRET: devSecret, MEDIA_URL: media.peerUrl, ...internalPorts, ...env }), { database, cache, bus });
    // Posts check media and visibility by calling media and user as the poster;
    // the feed reads posts and profiles the same way; the BFF reads user and feed.
    const post = await startPostService(postConfigFromEnv({ AUTH_JWKS_URL: jwks, PAGE_TOKEN_SECRET: devSecret, USER_URL: user.peerUrl, MEDIA_URL: media.peerUrl, ...internalPorts, ...env }), {
      database,
      cache,
      bus,
    });
    // Timelines in the shared dev cache's place: memory, or REDIS_URL.
    const feed = await startFeedService(feedConfigFromEnv({ AUTH_JWKS_URL: jwks, PAGE_TOKEN_SECRET: devSecret, POST_URL: post.peerUrl, USER_URL: user.peerUrl, ...internalPorts, ...env }), {
      database,
      cache,
      bus,
      userStreams,
    });
    // The realtime stream: feed hints, notifications and chat.
    const realtime = await startRealtimeService(realtimeConfigFromEnv({ AUTH_JWKS_URL: jwks, USER_URL: user.peerUrl, ...env }), { cache, userStreams });
    // Notifications: API, event consumer and push worker in one process (role all), publishing to
    // the same stream hub as the feed. No push provider is configured unless APNS_*/FCM_*/WEBPUSH_*
    // are set, so pushes are recorded as skipped.
    const notification = await startNotificationService(
      notificationConfigFromEnv({
        NOTIFICATION_ROLE: "all",
        AUTH_JWKS_URL: jwks,
        AUTH_URL: auth.peerUrl,
        USER_URL: user.peerUrl,
        PAGE_TOKEN_SECRET: devSecret,
        NOTIFICATION_CLIENT_SECRET: notificationSecret,
        ...internalPorts,
        ...env,
      }),
      { database, cache, bus, userStreams },
    );
    // Chat: the RPCs and the delivery to members' streams in one process (role all), on the same stream
    // hub as the realtime service; the notification service above pushes its messages to offline devices.
    const chat = await startChatService(chatConfigFromEnv({ CHAT_ROLE: "all", AUTH_JWKS_URL: jwks, USER_URL: user.peerUrl, MEDIA_URL: media.peerUrl, PAGE_TOKEN_SECRET: devSecret, ...internalPorts, ...env }), { database, cache, bus, userStreams });
    // Reports and moderation; the auth and post services above apply its events from the same bus.
    const moderation = await startModerationService(moderationConfigFromEnv({ AUTH_JWKS_URL: jwks, PAGE_TOKEN_SECRET: devSecret, ...internalPorts, ...env }), { database, cache, bus });
    // The audit log of the auth and moderation events on the same bus (admins: AUTH_BOOTSTRAP_ADMINS).
    const audit = await startAuditService(auditConfigFromEnv({ AUTH_JWKS_URL: jwks, PAGE_TOKEN_SECRET: devSecret, ...env }), { database, cache, bus });
    // The BFF's unread section asks the notification and chat services, as the caller.
    const bff = await startBffService(bffConfigFromEnv({ AUTH_JWKS_URL: jwks, USER_URL: user.peerUrl, FEED_URL: feed.peerUrl, NOTIFICATION_URL: notification.peerUrl, CHAT_URL: chat.peerUrl, ...env }), { cache });

    // The edge, when Envoy is installed (`make dev` installs it first): the same generated config
    // as the tests, on EDGE_PORT (admin on EDGE_ADMIN_PORT, loopback only).
    // Global rate limiting rides along: the rate-limit service in this process,
    // counting in the shared dev cache (memory, or REDIS_URL), RATELIMIT_* as in deploy.
    let edge: RunningEnvoy | undefined;
    let ratelimit: RunningRateLimitService | undefined;
    if (existsSync(envoyBinary)) {
      // The web app is built before the edge starts: Envoy reads its files when it loads the config.
      const appDir = await buildWebApp();
      ratelimit = await startRateLimitService(rateLimitConfigFromEnv(env), { cache });
      edge = await startEnvoy({
        // gRPC, gRPC-web and REST to the internal listeners (9081…), as deployed.
        ...edgeUpstreams({ auth, user, media, post, feed, bff, realtime, notification, chat, moderation, audit }),
        rateLimitService: ratelimit.url,
        listenPort: Number(env["EDGE_PORT"] ?? 8080),
        adminPort: Number(env["EDGE_ADMIN_PORT"] ?? 9901),
        appDir,
        echo: true,
      });
    } else {
      logger.info("Envoy is not installed (make dev installs it when python3 with venv is present; see above): no edge; the services are reachable directly");
    }

    const register = `-H 'content-type: application/json' -d '{"email":"ada@example.org","password":"violet-harbour-teapot-42"}'`;
    logger.info(
      { web: edge ? `${edge.url}/` : undefined, auth: auth.url, user: user.url, media: media.url, post: post.url, feed: feed.url, bff: bff.url, realtime: realtime.url, notification: notification.url, chat: chat.url, moderation: moderation.url, audit: audit.url, edge: edge?.url, ratelimit: ratelimit?.url, database: database.kind, cache: cache.kind, bus: bus.kind, codes: codeSink },
      edge
        ? `Aviary dev is up. The web app: ${edge.url}/ (verification codes: tail -f .dev/codes.jsonl). Try REST through the edge: curl -s ${edge.url}/v1/auth/register ${register}`
        : `Aviary dev is up. Try: curl -s ${auth.url}/aviary.auth.v1.AuthService/Register ${register}`,
    );
    return {
      async close() {
        await edge?.stop();
        await ratelimit?.close();
        await bff.close();
        await audit.close();
        await moderation.close();
        await chat.close();
        await notification.close();
        await realtime.close();
        await feed.close();
        await post.close();
        await media.close();
        await user.close();
        await auth.close();
        await bus.close();
        await userStreams.close();
        await cache.close();
        await database.close();
      },
    };
  },
  { name: "dev" },
);
