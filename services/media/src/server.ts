// Wiring of the media service: configuration → adapters → domain → server.
// Everything else in this folder is plain functions this file connects.
import { fileURLToPath } from "node:url";
import { MediaService } from "@aviary/gen/aviary/media/v1/media_pb";
import { bool, duration, int, loadConfig, optionalString, optionalUrl, port, string, url, type ConfigOf } from "@aviary/runtime/config";
import type { Logger } from "@aviary/runtime/log";
import { startServer, type RunningServer } from "@aviary/runtime/server";
import type { Database } from "@aviary/runtime/db/database";
import type { Cache } from "@aviary/runtime/cache/cache";
import { createMediaHandlers } from "./handlers.ts";
import { startSweeper, type Sweeper } from "./domain/sweeper.ts";
import type { BlobStorage } from "./storage/storage.ts";
import { openS3Storage } from "./storage/s3.ts";
import { openDiskStorage, type DiskStorage } from "./storage/disk.ts";
import { deleteExpiredPending, expiredPendingMedia } from "./store/media.ts";
import { cacheConfigSpec, databaseConfigSpec, observabilityConfigSpec, startServiceBase, userTokenAuth, userTokenConfigSpec } from "@aviary/runtime/service-config";

export const migrationsFolder = fileURLToPath(new URL("./store/migrations", import.meta.url));

const MiB = 1024 * 1024;

/** Every setting of the media service, from the environment (see services/media/README.md). */
export const mediaConfigSpec = {
  host: string("MEDIA_HOST", { default: "127.0.0.1" }),
  port: port("MEDIA_PORT", { default: 8083 }),
  /** Base URL clients reach this service at; the disk adapter's upload and read URLs point here. */
  publicUrl: string("MEDIA_PUBLIC_URL", { default: "http://127.0.0.1:8083" }),
  ...userTokenConfigSpec,
  maxImageBytes: int("MEDIA_MAX_IMAGE_BYTES", { default: 10 * MiB, min: 1, max: 5 * 1024 * MiB }),
  maxVideoBytes: int("MEDIA_MAX_VIDEO_BYTES", { default: 50 * MiB, min: 1, max: 5 * 1024 * MiB }),
  uploadUrlTtlMs: duration("MEDIA_UPLOAD_URL_TTL", { default: "15m", min: "1s", max: "7d" }),
  pendingTtlMs: duration("MEDIA_PENDING_TTL", { default: "1h", min: "1s", max: "7d" }),
  readUrlTtlMs: duration("MEDIA_READ_URL_TTL", { default: "1h", min: "1m", max: "7d" }),
  publicBaseUrl: optionalUrl("MEDIA_PUBLIC_BASE_URL", { protocols: ["http", "https"] }),
  sweepIntervalMs: duration("MEDIA_SWEEP_INTERVAL", { default: "1m", min: "100ms" }),
  s3Endpoint: optionalString("S3_ENDPOINT"),
  s3AccessKey: optionalString("S3_ACCESS_KEY"),
  s3SecretKey: optionalString("S3_SECRET_KEY"),
  s3Region: string("S3_REGION", { default: "us-east-1" }),
  s3Bucket: string("S3_BUCKET", { default: "aviary-media", pattern: /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/ }),
  s3ForcePathStyle: bool("S3_FORCE_PATH_STYLE", { default: true }),
  s3CreateBucket: bool("S3_CREATE_BUCKET", { default: false }),
  diskDir: string("MEDIA_DISK_DIR", { default: ".dev/media" }),
  diskSecret: optionalString("MEDIA_DISK_SECRET", { minLength: 16 }),
  trustedProxyHops: int("TRUSTED_PROXY_HOPS", { default: 0, min: 0, max: 5 }),
  ...databaseConfigSpec,
  ...cacheConfigSpec,
  ...observabilityConfigSpec,
};

export type MediaConfig = ConfigOf<typeof mediaConfigSpec>;

export function mediaConfigFromEnv(env: NodeJS.ProcessEnv = process.env): MediaConfig {
  const config = loadConfig(mediaConfigSpec, env);
  if (config.s3Endpoint !== undefined && (config.s3AccessKey === undefined || config.s3SecretKey === undefined)) {
    throw new Error("S3_ENDPOINT is set: S3_ACCESS_KEY and S3_SECRET_KEY must be set too");
  }
  return config;
}

/** Adapters can be handed in (the dev launcher shares one PGlite across services). */
export interface MediaAdapters {
  database?: Database;
  cache?: Cache;
  storage?: BlobStorage;
  logger?: Logger;
}

export interface RunningMediaService extends RunningServer {
  readonly database: Database;
  readonly storage: BlobStorage;
  /** Runs one sweep of expired pending uploads now (normally on a timer). */
  sweepNow(): Promise<number>;
}

async function openStorage(config: MediaConfig, logger: Logger): Promise<BlobStorage> {
  if (config.s3Endpoint !== undefined) {
    return openS3Storage({
      endpoint: config.s3Endpoint,
      region: config.s3Region,
      accessKeyId: config.s3AccessKey ?? "",
      secretAccessKey: config.s3SecretKey ?? "",
      bucket: config.s3Bucket,
      forcePathStyle: config.s3ForcePathStyle,
      createBucket: config.s3CreateBucket,
    });
  }
  if (config.diskSecret === undefined) {
    logger.warn("MEDIA_DISK_SECRET is not set: upload forms and read URLs are signed with a random key and die with the process");
  }
  return openDiskStorage({
    dir: config.diskDir,
    baseUrl: config.publicUrl,
    secret: config.diskSecret ?? crypto.randomUUID() + crypto.randomUUID(),
    maxUploadBytes: Math.max(config.maxImageBytes, config.maxVideoBytes),
  });
}

export async function startMediaService(config: MediaConfig, adapters: MediaAdapters = {}): Promise<RunningMediaService> {
  const base = startServiceBase("media", config, adapters);
  const { logger, telemetry } = base;

  const database = await base.database(config, adapters.database);
  const cache = await base.cache(config, adapters.cache);
  const storage = adapters.storage ?? base.own(await openStorage(config, logger));
  await database.migrate(migrationsFolder, { schema: "media" });

  const handlers = createMediaHandlers({
    database,
    storage,
    settings: {
      limits: { maxImageBytes: config.maxImageBytes, maxVideoBytes: config.maxVideoBytes },
      uploadUrlTtlMs: config.uploadUrlTtlMs,
      pendingTtlMs: config.pendingTtlMs,
      readUrlTtlMs: config.readUrlTtlMs,
      ...(config.publicBaseUrl ? { publicBaseUrl: config.publicBaseUrl.toString() } : {}),
    },
  });

  const sweeper: Sweeper = startSweeper(
    {
      expired: (limit) => expiredPendingMedia(database.db, limit),
      deleteObject: (key) => storage.delete(key),
      deleteRows: (ids) => deleteExpiredPending(database.db, ids),
      onError: (err) => logger.warn({ err }, "media sweep failed"),
    },
    { intervalMs: config.sweepIntervalMs },
  );

  const server = await startServer({
    name: "media",
    host: config.host,
    port: config.port,
    logger,
    telemetry,
    trustedProxyHops: config.trustedProxyHops,
    routes: (router) => router.service(MediaService, handlers),
    // The disk adapter's stand-in for the bucket's POST and GET endpoints.
    ...(storage.kind === "disk" ? { httpRoutes: (storage as DiskStorage).httpRoutes } : {}),
    readiness: [
      { name: "database", check: () => database.ping() },
      { name: "cache", check: () => cache.ping() },
      { name: "storage", check: () => storage.ping() },
    ],
    auth: userTokenAuth(config, cache),
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
      await base.close();
    },
  };
}
