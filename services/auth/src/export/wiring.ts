// The data-export part of the auth service, wired from configuration, so
// server.ts only spreads the settings and starts it. The api role serves
// DataExportService (and needs the archive store to sign download links);
// the exporter role builds archives and sweeps expired ones; `all` does both.
import { DataExportService } from "@aviary/gen/aviary/auth/v1/data_export_pb";
import { DISK_OBJECT_PATH, type DiskStorage } from "@aviary/runtime/blob/disk";
import { bucketPattern, openBlobStorage, s3ConfigSpec, type S3Config } from "@aviary/runtime/blob/open";
import type { BlobStorage } from "@aviary/runtime/blob/storage";
import { startSweeper, type Sweeper } from "@aviary/runtime/blob/sweeper";
import type { EventBus } from "@aviary/runtime/bus/bus";
import { duration, int, optionalString, string, url, type ConfigOf } from "@aviary/runtime/config";
import type { Database } from "@aviary/runtime/db/database";
import type { Logger } from "@aviary/runtime/log";
import type { PageTokens } from "@aviary/runtime/pagination";
import type { HttpHandler } from "@aviary/runtime/server";
import { peerBase, peerUrl } from "@aviary/runtime/service-config";
import type { ServiceImpl } from "@connectrpc/connect";
import { createDataExportHandlers } from "../data-export-handlers.ts";
import type { ServiceTokenSettings } from "../domain/service-tokens.ts";
import type { KeyRing } from "../domain/signing-keys.ts";
import { dataExportsTopic } from "../events/data-export.ts";
import { expiredArchives, markExpired } from "../store/data-exports.ts";
import { connectExportPeers, type ExportPeers } from "./peers.ts";
import { exporterGroup, purgeUserExports, startExporter } from "./worker.ts";
import { accountsGroupOf, consumeAccountDeletions } from "@aviary/runtime/bus/account-deletions";

/** The data-export settings of the auth service (see README "Configuration (auth service)"). */
export const dataExportConfigSpec = {
  exportTopic: string("AUTH_EXPORT_TOPIC", { default: dataExportsTopic }),
  exporterGroup: string("AUTH_EXPORTER_GROUP", { default: exporterGroup }),
  /** How long a ready archive can be downloaded; then it is deleted. S3 signs GETs for at most 7 days. */
  exportTtlMs: duration("AUTH_EXPORT_TTL", { default: "24h", min: "1s", max: "7d" }),
  /** After a request (one that did not fail), how long before the same user may ask again. */
  exportCooldownMs: duration("AUTH_EXPORT_COOLDOWN", { default: "24h", min: "0s", max: "30d" }),
  exportMaxAttempts: int("AUTH_EXPORT_MAX_ATTEMPTS", { default: 5, min: 1, max: 20 }),
  /** Deadline of each export stream from a peer and of each media download. */
  exportCallTimeoutMs: duration("AUTH_EXPORT_CALL_TIMEOUT", { default: "2m", min: "1s", max: "30m" }),
  exportSweepIntervalMs: duration("AUTH_EXPORT_SWEEP_INTERVAL", { default: "5m", min: "100ms" }),
  ...s3ConfigSpec,
  exportBucket: string("AUTH_EXPORT_BUCKET", { default: "aviary-exports", pattern: bucketPattern }),
  exportDiskDir: string("AUTH_EXPORT_DISK_DIR", { default: ".dev/exports" }),
  exportDiskSecret: optionalString("AUTH_EXPORT_DISK_SECRET", { minLength: 16 }),
  /** The services that own a share of a user's data (the exporter role calls them with its service token). */
  userUrl: peerUrl("USER_URL", "http://127.0.0.1:8082"),
  mediaUrl: peerUrl("MEDIA_URL", "http://127.0.0.1:8083"),
  postUrl: peerUrl("POST_URL", "http://127.0.0.1:8084"),
  chatUrl: peerUrl("CHAT_URL", "http://127.0.0.1:8089"),
  notificationUrl: peerUrl("NOTIFICATION_URL", "http://127.0.0.1:8088"),
  moderationUrl: peerUrl("MODERATION_URL", "http://127.0.0.1:8091"),
};

export type DataExportConfig = ConfigOf<typeof dataExportConfigSpec> & S3Config & { publicUrl: string };

export interface DataExportAdapters {
  /** The archive store; by default S3 (S3_ENDPOINT) or disk. */
  exportStorage?: BlobStorage;
  /** The owning services; by default service-token clients of USER_URL, POST_URL, MEDIA_URL, CHAT_URL, NOTIFICATION_URL and MODERATION_URL. */
  exportPeers?: ExportPeers;
  /** Test seam of the exporter (export/worker.ts). */
  exportAfterUpload?: (exportId: string, stopping: AbortSignal) => Promise<void>;
}

export interface DataExports {
  storage: BlobStorage;
  /** For the api role's router. */
  handlers: ServiceImpl<typeof DataExportService>;
  /** The disk adapter's read endpoint (download links in `make dev`); none with S3. */
  httpRoutes: Record<string, HttpHandler>;
  /** Runs one sweep of expired archives now (normally on a timer); resolves to how many were deleted. */
  sweepNow(): Promise<number>;
  close(): Promise<void>;
}

export async function startDataExports(options: {
  config: DataExportConfig;
  roles: { serves: boolean; exports: boolean };
  database: Database;
  bus: EventBus;
  keys: KeyRing;
  tokens: ServiceTokenSettings;
  pageTokens: PageTokens;
  logger: Logger;
  adapters: DataExportAdapters;
}): Promise<DataExports | undefined> {
  const { config, database, logger, adapters } = options;
  // The sender role has no part in exports (and needs no archive store).
  if (!options.roles.serves && !options.roles.exports) return undefined;
  const owned = adapters.exportStorage === undefined;
  const storage =
    adapters.exportStorage ??
    (await openBlobStorage(
      config,
      // maxUploadBytes 0: archives are written by the exporter itself, never uploaded through a form.
      { bucket: config.exportBucket, disk: { dir: config.exportDiskDir, baseUrl: config.publicUrl, secret: config.exportDiskSecret, secretVariable: "AUTH_EXPORT_DISK_SECRET", maxUploadBytes: 0 } },
      logger,
    ));
  const stops: Array<() => Promise<void> | void> = [];
  let sweeper: Sweeper | undefined;
  if (options.roles.exports) {
    // Both groups join at once: each first join is a Kafka rebalance, and they need not wait for each other.
    const [subscription, accountDeletions] = await Promise.all([
      startExporter({
        database,
        bus: options.bus,
        storage,
        peers:
          adapters.exportPeers ??
          connectExportPeers({
            keys: options.keys,
            tokens: options.tokens,
            urls: {
              user: peerBase(config.userUrl),
              post: peerBase(config.postUrl),
              media: peerBase(config.mediaUrl),
              chat: peerBase(config.chatUrl),
              notification: peerBase(config.notificationUrl),
              moderation: peerBase(config.moderationUrl),
            },
          }),
        topic: config.exportTopic,
        groupId: config.exporterGroup,
        ttlMs: config.exportTtlMs,
        maxAttempts: config.exportMaxAttempts,
        callTimeoutMs: config.exportCallTimeoutMs,
        logger,
        ...(adapters.exportAfterUpload ? { afterUpload: adapters.exportAfterUpload } : {}),
      }),
      consumeAccountDeletions({
        bus: options.bus,
        groupId: accountsGroupOf(config.exporterGroup),
        purge: ({ userId }) => purgeUserExports(database, storage, userId),
      }),
    ]);
    stops.push(() => subscription.stop(), () => accountDeletions.stop());
    sweeper = startSweeper(
      {
        expired: (limit) => expiredArchives(database.db, limit),
        deleteObject: (key) => storage.delete(key),
        deleteRows: (ids) => markExpired(database.db, ids),
        onError: (err) => logger.warn({ err }, "data export sweep failed"),
      },
      { intervalMs: config.exportSweepIntervalMs },
    );
    stops.push(() => sweeper?.stop());
  }
  const read = storage.kind === "disk" ? (storage as DiskStorage).httpRoutes[DISK_OBJECT_PATH] : undefined;
  return {
    storage,
    handlers: createDataExportHandlers({ database, storage, pageTokens: options.pageTokens, settings: { topic: config.exportTopic, cooldownMs: config.exportCooldownMs } }),
    httpRoutes: options.roles.serves && read !== undefined ? { [DISK_OBJECT_PATH]: read } : {},
    sweepNow: () => sweeper?.sweepNow() ?? Promise.resolve(0),
    async close() {
      for (const stop of stops) await stop();
      if (owned) await storage.close();
    },
  };
}
