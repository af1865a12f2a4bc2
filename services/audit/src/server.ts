// Wiring of the audit service: configuration → adapters → the consumer that
// appends to the chain and the RPC server that reads it. Everything else in
// this folder is plain functions this file connects.
import { fileURLToPath } from "node:url";
import { AuditService } from "@aviary/gen/aviary/audit/v1/audit_pb";
import { randomUUID } from "node:crypto";
import { ConfigError, duration, loadConfig, port, string, type ConfigOf } from "@aviary/runtime/config";
import { bucketPattern, openBlobStorage, s3ConfigProblems, s3ConfigSpec } from "@aviary/runtime/blob/open";
import type { BlobStorage } from "@aviary/runtime/blob/storage";
import type { Logger } from "@aviary/runtime/log";
import { startServer, type RunningServer } from "@aviary/runtime/server";
import type { Database } from "@aviary/runtime/db/database";
import type { EventBus, Subscription } from "@aviary/runtime/bus/bus";
import type { Cache } from "@aviary/runtime/cache/cache";
import { busConfigSpec, cacheConfigSpec, clientFacingConfigSpec, databaseConfigSpec, internalListener, internalPortConfigSpec, observabilityConfigSpec, pageTokensFor, startServiceBase, userTokenAuth, userTokenConfigSpec } from "@aviary/runtime/service-config";
import { authEventsTopic, consumeSecurityEvents } from "./events/consume.ts";
import { createAuditHandlers } from "./handlers.ts";
import { startAnchoring, type Anchoring } from "./anchoring.ts";
import { blobAnchorStore } from "./store/anchors.ts";

export const migrationsFolder = fileURLToPath(new URL("./store/migrations", import.meta.url));

/** The moderation service's topic (services/moderation/src/events/publish.ts). */
const moderationEventsTopic = "aviary.moderation.events";
/** The auth service's data-export topic (services/auth/src/events/data-export.ts): each DataExportRequested is a security event too. */
const dataExportsTopic = "aviary.auth.data-exports";

/** Every setting of the audit service, from the environment (see services/audit/README.md). */
export const auditConfigSpec = {
  host: string("AUDIT_HOST", { default: "127.0.0.1" }),
  port: port("AUDIT_PORT", { default: 8092 }),
  ...internalPortConfigSpec("AUDIT"),
  ...userTokenConfigSpec,
  /** The consumer group that reads the auth and moderation topics. */
  group: string("AUDIT_GROUP", { default: "audit" }),
  moderationTopic: string("MODERATION_EVENTS_TOPIC", { default: moderationEventsTopic }),
  /** The same variable as the auth service's: the topic its exporter reads. */
  exportTopic: string("AUTH_EXPORT_TOPIC", { default: dataExportsTopic }),
  /** How often the chain head is anchored outside the database (docs/decisions.md, "Audit log"): a rewrite of the entries since the last anchor is what the chain alone cannot show. */
  anchorIntervalMs: duration("AUDIT_ANCHOR_INTERVAL", { default: "5m", min: "100ms", max: "24h" }),
  ...s3ConfigSpec,
  /** The anchors' bucket: in production one the database's owners cannot write (another account, object lock). */
  anchorBucket: string("AUDIT_ANCHOR_BUCKET", { default: "aviary-audit-anchors", pattern: bucketPattern }),
  /** Where `make dev` (no S3_ENDPOINT) keeps them instead. */
  anchorDiskDir: string("AUDIT_ANCHOR_DISK_DIR", { default: ".dev/audit-anchors" }),
  ...clientFacingConfigSpec,
  ...databaseConfigSpec,
  ...cacheConfigSpec,
  ...busConfigSpec,
  ...observabilityConfigSpec,
};

export type AuditConfig = ConfigOf<typeof auditConfigSpec>;

export function auditConfigFromEnv(env: NodeJS.ProcessEnv = process.env): AuditConfig {
  const config = loadConfig(auditConfigSpec, env);
  const problems = s3ConfigProblems(config);
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** Adapters can be handed in (the dev launcher shares one PGlite, bus and cache). */
export interface AuditAdapters {
  database?: Database;
  cache?: Cache;
  bus?: EventBus;
  logger?: Logger;
  /** Where anchors go; by default S3 (S3_ENDPOINT) or disk. */
  anchorStorage?: BlobStorage;
}

export interface RunningAuditService extends RunningServer {
  readonly database: Database;
  readonly bus: EventBus;
  /** Anchors the chain head now (normally every AUDIT_ANCHOR_INTERVAL). */
  readonly anchorNow: Anchoring["anchorNow"];
}

export async function startAuditService(config: AuditConfig, adapters: AuditAdapters = {}): Promise<RunningAuditService> {
  const base = startServiceBase("audit", config, adapters);
  const { logger, telemetry } = base;

  const database = await base.database(config, adapters.database);
  const cache = await base.cache(config, adapters.cache);
  const bus = await base.bus(config, adapters.bus);
  await database.migrate(migrationsFolder, { schema: "audit" });

  const ownStorage = adapters.anchorStorage === undefined;
  const storage =
    adapters.anchorStorage ??
    (await openBlobStorage(
      config,
      // No forms and no read URLs: only the service writes and reads anchors, so the disk adapter's signing key can be a throwaway.
      { bucket: config.anchorBucket, disk: { dir: config.anchorDiskDir, baseUrl: `http://${config.host}:${config.port}`, secret: randomUUID(), secretVariable: "", maxUploadBytes: 0 } },
      logger,
    ));
  const anchors = blobAnchorStore(storage);
  const anchoring = startAnchoring({ database, anchors, intervalMs: config.anchorIntervalMs, logger });

  const subscription: Subscription = await consumeSecurityEvents({ database, bus, topics: [authEventsTopic, config.moderationTopic, config.exportTopic], groupId: config.group, telemetry });
  const handlers = createAuditHandlers({ database, pageTokens: pageTokensFor(AuditService.typeName, config, logger)("ListAuditEntries"), anchors });

  const server = await startServer({
    name: "audit",
    host: config.host,
    port: config.port,
    ...internalListener(config),
    logger,
    telemetry,
    trustedProxyHops: config.trustedProxyHops,
    routes: (router) => {
      router.service(AuditService, handlers);
    },
    readiness: [
      { name: "database", check: () => database.ping() },
      { name: "cache", check: () => cache.ping() },
      { name: "events", check: () => bus.ping() },
      { name: "anchors", check: () => storage.ping() },
    ],
    auth: userTokenAuth(config, cache),
  });
  logger.info({ url: server.url, database: database.kind, cache: cache.kind, bus: bus.kind }, "audit service listening");

  return {
    ...server,
    database,
    bus,
    anchorNow: anchoring.anchorNow,
    async close() {
      await server.close();
      await anchoring.stop();
      if (ownStorage) await storage.close();
      await subscription.stop();
      await base.close();
    },
  };
}
