// Wiring of the media service: configuration → adapters → domain → server.
// Everything else in this folder is plain functions this file connects.
import { fileURLToPath } from "node:url";
import { MediaService } from "@aviary/gen/aviary/media/v1/media_pb";
import { MediaInternalService } from "@aviary/gen/aviary/media/v1/media_internal_pb";
import { ConfigError, duration, int, loadConfig, optionalString, optionalUrl, port, string, type ConfigOf } from "@aviary/runtime/config";
import type { Logger } from "@aviary/runtime/log";
import { startServer, type RunningServer } from "@aviary/runtime/server";
import type { Database } from "@aviary/runtime/db/database";
import type { Cache } from "@aviary/runtime/cache/cache";
import { createMediaHandlers, type MediaDeps } from "./handlers.ts";
import { createMediaInternalHandlers, internalProcedures } from "./internal-handlers.ts";
import { startSweeper, type Sweeper } from "./domain/sweeper.ts";
import type { BlobStorage } from "./storage/storage.ts";
import type { DiskStorage } from "./storage/disk.ts";
import { bucketPattern, openBlobStorage, s3ConfigProblems, s3ConfigSpec } from "@aviary/runtime/blob/open";
import { deleteExpiredPending, expiredPendingMedia } from "./store/media.ts";
import { busConfigSpec, cacheConfigSpec, databaseConfigSpec, internalListener, internalPortConfigSpec, observabilityConfigSpec, serviceTokenConfigSpec, startServiceBase, userAndServiceTokenAuth, userTokenConfigSpec } from "@aviary/runtime/service-config";
import type { EventBus } from "@aviary/runtime/bus/bus";
import { accountsGroupOf, consumeAccountDeletions } from "@aviary/runtime/bus/account-deletions";
import { purgeOwnerMedia } from "./domain/purge.ts";

export const migrationsFolder = fileURLToPath(new URL("./store/migrations", import.meta.url));

const MiB = 1024 * 1024;

/** Every setting of the media service, from the environment (see services/media/README.md). */
export const mediaConfigSpec = {
  host: string("MEDIA_HOST", { default: "127.0.0.1" }),
  port: port("MEDIA_PORT", { default: 8083 }),
  ...internalPortConfigSpec("MEDIA"),
  /** Base URL clients reach this service at; the disk adapter's upload and read URLs point here. */
  publicUrl: string("MEDIA_PUBLIC_URL", { default: "http://127.0.0.1:8083" }),
  ...userTokenConfigSpec,
  /** Audience of service tokens, accepted on MediaInternalService only. */
  ...serviceTokenConfigSpec,
  maxImageBytes: int("MEDIA_MAX_IMAGE_BYTES", { default: 10 * MiB, min: 1, max: 5 * 1024 * MiB }),
  maxVideoBytes: int("MEDIA_MAX_VIDEO_BYTES", { default: 50 * MiB, min: 1, max: 5 * 1024 * MiB }),
  uploadUrlTtlMs: duration("MEDIA_UPLOAD_URL_TTL", { default: "15m", min: "1s", max: "7d" }),
  pendingTtlMs: duration("MEDIA_PENDING_TTL", { default: "1h", min: "1s", max: "7d" }),
  readUrlTtlMs: duration("MEDIA_READ_URL_TTL", { default: "1h", min: "1m", max: "7d" }),
  publicBaseUrl: optionalUrl("MEDIA_PUBLIC_BASE_URL", { protocols: ["http", "https"] }),
  sweepIntervalMs: duration("MEDIA_SWEEP_INTERVAL", { default: "1m", min: "100ms" }),
  ...s3ConfigSpec,
  s3Bucket: string("S3_BUCKET", { default: "aviary-media", pattern: bucketPattern }),
  diskDir: string("MEDIA_DISK_DIR", { default: ".dev/media" }),
  diskSecret: optionalString("MEDIA_DISK_SECRET", { minLength: 16 }),
  trustedProxyHops: int("TRUSTED_PROXY_HOPS", { default: 0, min: 0, max: 5 }),
  /** The consumer group prefix: account deletions (their uploads are removed) are read in `<group>-accounts`. */
  group: string("MEDIA_GROUP", { default: "media" }),
  ...databaseConfigSpec,
  ...cacheConfigSpec,
  ...busConfigSpec,
  ...observabilityConfigSpec,
};

export type MediaConfig = ConfigOf<typeof mediaConfigSpec>;

export function mediaConfigFromEnv(env: NodeJS.ProcessEnv = process.env): MediaConfig {
  const config = loadConfig(mediaConfigSpec, env);
  const problems = s3ConfigProblems(config);
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** Adapters can be handed in (the dev launcher shares one PGlite across services). */
export interface MediaAdapters {
  database?: Database;
  cache?: Cache;
  storage?: BlobStorage;
  bus?: EventBus;
  logger?: Logger;
}

export interface RunningMediaService extends RunningServer {
  readonly database: Database;
  readonly storage: BlobStorage;
  /** Runs one sweep of expired pending uploads now (normally on a timer). */
  sweepNow(): Promise<number>;
}

function openStorage(config: MediaConfig, logger: Logger): Promise<BlobStorage> {
  return openBlobStorage(
    config,
    {
      bucket: config.s3Bucket,
      disk: { dir: config.diskDir, baseUrl: config.publicUrl, secret: config.diskSecret, secretVariable: "MEDIA_DISK_SECRET", maxUploadBytes: Math.max(config.maxImageBytes, config.maxVideoBytes) },
    },
    logger,
  );
}

export async function startMediaService(config: MediaConfig, adapters: MediaAdapters = {}): Promise<RunningMediaService> {
  const base = startServiceBase("media", config, adapters);
  const { logger, telemetry } = base;

  const database = await base.database(config, adapters.database);
  const cache = await base.cache(config, adapters.cache);
  const storage = adapters.storage ?? base.own(await openStorage(config, logger));
  await database.migrate(migrationsFolder, { schema: "media" });
  const bus = await base.bus(config, adapters.bus);

  const deps: MediaDeps = {
    database,
    storage,
    settings: {
      limits: { maxImageBytes: config.maxImageBytes, maxVideoBytes: config.maxVideoBytes },
      uploadUrlTtlMs: config.uploadUrlTtlMs,
      pendingTtlMs: config.pendingTtlMs,
      readUrlTtlMs: config.readUrlTtlMs,
      ...(config.publicBaseUrl ? { publicBaseUrl: config.publicBaseUrl.toString() } : {}),
    },
  };
  const handlers = createMediaHandlers(deps);

  const sweeper: Sweeper = startSweeper(
    {
      expired: (limit) => expiredPendingMedia(database.db, limit),
      deleteObject: (key) => storage.delete(key),
      deleteRows: (ids) => deleteExpiredPending(database.db, ids),
      onError: (err) => logger.warn({ err }, "media sweep failed"),
    },
    { intervalMs: config.sweepIntervalMs },
  );

  const accountDeletions = await consumeAccountDeletions({
    bus,
    groupId: accountsGroupOf(config.group),
    telemetry,
    purge: ({ userId }) => purgeOwnerMedia(database, storage, userId),
  });

  const server = await startServer({
    name: "media",
    host: config.host,
    port: config.port,
    ...internalListener(config),
    logger,
    telemetry,
    trustedProxyHops: config.trustedProxyHops,
    routes: (router) => {
      router.service(MediaService, handlers);
      router.service(MediaInternalService, createMediaInternalHandlers(deps));
    },
    // The disk adapter's stand-in for the bucket's POST and GET endpoints.
    ...(storage.kind === "disk" ? { httpRoutes: (storage as DiskStorage).httpRoutes } : {}),
    readiness: [
      { name: "database", check: () => database.ping() },
      { name: "cache", check: () => cache.ping() },
      { name: "storage", check: () => storage.ping() },
      { name: "events", check: () => bus.ping() },
    ],
    // Service tokens (the data exporter, no user behind the call) on the internal procedures only.
    auth: userAndServiceTokenAuth(config, cache, internalProcedures),
  });
  logger.info({ url: server.url, database: database.kind, storage: storage.kind }, "media service listening");

  return {
    ...server,
    database,
    storage,
    sweepNow: () => sweeper.sweepNow(),
    async close() {
      sweeper.stop();
      await server.close();
      await accountDeletions.stop();
      await base.close();
    },
  };
}
