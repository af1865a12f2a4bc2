// Wiring of the audit service: configuration → adapters → the consumer that
// appends to the chain and the RPC server that reads it. Everything else in
// this folder is plain functions this file connects.
import { fileURLToPath } from "node:url";
import { AuditService } from "@aviary/gen/aviary/audit/v1/audit_pb";
import { loadConfig, port, string, type ConfigOf } from "@aviary/runtime/config";
import type { Logger } from "@aviary/runtime/log";
import { startServer, type RunningServer } from "@aviary/runtime/server";
import type { Database } from "@aviary/runtime/db/database";
import type { EventBus, Subscription } from "@aviary/runtime/bus/bus";
import type { Cache } from "@aviary/runtime/cache/cache";
import { busConfigSpec, cacheConfigSpec, clientFacingConfigSpec, databaseConfigSpec, observabilityConfigSpec, pageTokensFor, startServiceBase, userTokenAuth, userTokenConfigSpec } from "@aviary/runtime/service-config";
import { authEventsTopic, consumeSecurityEvents } from "./events/consume.ts";
import { createAuditHandlers } from "./handlers.ts";

export const migrationsFolder = fileURLToPath(new URL("./store/migrations", import.meta.url));

/** The moderation service's topic (services/moderation/src/events/publish.ts). */
const moderationEventsTopic = "aviary.moderation.events";

/** Every setting of the audit service, from the environment (see services/audit/README.md). */
export const auditConfigSpec = {
  host: string("AUDIT_HOST", { default: "127.0.0.1" }),
  port: port("AUDIT_PORT", { default: 8092 }),
  ...userTokenConfigSpec,
  /** The consumer group that reads the auth and moderation topics. */
  group: string("AUDIT_GROUP", { default: "audit" }),
  moderationTopic: string("MODERATION_EVENTS_TOPIC", { default: moderationEventsTopic }),
  ...clientFacingConfigSpec,
  ...databaseConfigSpec,
  ...cacheConfigSpec,
  ...busConfigSpec,
  ...observabilityConfigSpec,
};

export type AuditConfig = ConfigOf<typeof auditConfigSpec>;

export function auditConfigFromEnv(env: NodeJS.ProcessEnv = process.env): AuditConfig {
  return loadConfig(auditConfigSpec, env);
}

/** Adapters can be handed in (the dev launcher shares one PGlite, bus and cache). */
export interface AuditAdapters {
  database?: Database;
  cache?: Cache;
  bus?: EventBus;
  logger?: Logger;
}

export interface RunningAuditService extends RunningServer {
  readonly database: Database;
  readonly bus: EventBus;
}

export async function startAuditService(config: AuditConfig, adapters: AuditAdapters = {}): Promise<RunningAuditService> {
  const base = startServiceBase("audit", config, adapters);
  const { logger, telemetry } = base;

  const database = await base.database(config, adapters.database);
  const cache = await base.cache(config, adapters.cache);
  const bus = await base.bus(config, adapters.bus);
  await database.migrate(migrationsFolder, { schema: "audit" });

  const subscription: Subscription = await consumeSecurityEvents({ database, bus, topics: [authEventsTopic, config.moderationTopic], groupId: config.group, telemetry });
  const handlers = createAuditHandlers({ database, pageTokens: pageTokensFor(AuditService.typeName, config, logger)("ListAuditEntries") });

  const server = await startServer({
    name: "audit",
    host: config.host,
    port: config.port,
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
    ],
    auth: userTokenAuth(config, cache),
  });
  logger.info({ url: server.url, database: database.kind, cache: cache.kind, bus: bus.kind }, "audit service listening");

  return {
    ...server,
    database,
    bus,
    async close() {
      await server.close();
      await subscription.stop();
      await base.close();
    },
  };
}
