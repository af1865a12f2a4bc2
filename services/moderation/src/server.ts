// Wiring of the moderation service: configuration → adapters → the RPC
// server and its outbox relay. Everything else in this folder is plain
// functions this file connects.
import { fileURLToPath } from "node:url";
import { ModerationService } from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import { ModerationInternalService } from "@aviary/gen/aviary/moderation/v1/moderation_internal_pb";
import { loadConfig, port, string, type ConfigOf } from "@aviary/runtime/config";
import type { Logger } from "@aviary/runtime/log";
import { startServer, type RunningServer } from "@aviary/runtime/server";
import { startOutboxRelay } from "@aviary/runtime/outbox/relay";
import type { Database } from "@aviary/runtime/db/database";
import type { EventBus } from "@aviary/runtime/bus/bus";
import type { Cache } from "@aviary/runtime/cache/cache";
import { cacheWindowLimiter, windowRatePattern, windowRateSetting, type WindowRate } from "@aviary/runtime/window-limit";
import { busConfigSpec, cacheConfigSpec, clientFacingConfigSpec, databaseConfigSpec, internalListener, internalPortConfigSpec, observabilityConfigSpec, pageTokensFor, serviceTokenConfigSpec, startServiceBase, userAndServiceTokenAuth, userTokenConfigSpec } from "@aviary/runtime/service-config";
import { moderationEvents, moderationEventsTopic } from "./events/publish.ts";
import { createModerationHandlers } from "./handlers.ts";
import { createModerationInternalHandlers, internalProcedures } from "./internal-handlers.ts";
import { outboxEvents } from "./store/schema.ts";
import { purgeUserModeration } from "./write/purge.ts";
import { accountsGroupOf, consumeAccountDeletions } from "@aviary/runtime/bus/account-deletions";

export const migrationsFolder = fileURLToPath(new URL("./store/migrations", import.meta.url));

/** Every setting of the moderation service, from the environment (see services/moderation/README.md). */
export const moderationConfigSpec = {
  host: string("MODERATION_HOST", { default: "127.0.0.1" }),
  port: port("MODERATION_PORT", { default: 8091 }),
  ...internalPortConfigSpec("MODERATION"),
  ...userTokenConfigSpec,
  /** Audience of service tokens, accepted on ModerationInternalService only (the data exporter). */
  ...serviceTokenConfigSpec,
  eventsTopic: string("MODERATION_EVENTS_TOPIC", { default: moderationEventsTopic }),
  /** The consumer group prefix: AccountDeleted is read in `<group>-accounts`. */
  group: string("MODERATION_GROUP", { default: "moderation" }),
  /** COUNT/WINDOW: reports per reporter per fixed window (counted in the cache). */
  reportRate: string("MODERATION_REPORT_RATE", { default: "10/1h", pattern: windowRatePattern }),
  ...clientFacingConfigSpec,
  ...databaseConfigSpec,
  ...cacheConfigSpec,
  ...busConfigSpec,
  ...observabilityConfigSpec,
};

export type ModerationConfig = ConfigOf<typeof moderationConfigSpec>;

export function moderationConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ModerationConfig {
  const config = loadConfig(moderationConfigSpec, env);
  reportRateOf(config);
  return config;
}

function reportRateOf(config: ModerationConfig): WindowRate {
  return windowRateSetting("MODERATION_REPORT_RATE", config.reportRate);
}

/** Adapters can be handed in (the dev launcher shares one PGlite, bus and cache). */
export interface ModerationAdapters {
  database?: Database;
  cache?: Cache;
  bus?: EventBus;
  /** The clock of actions and reports (tests). */
  now?: () => Date;
  logger?: Logger;
}

export interface RunningModerationService extends RunningServer {
  readonly database: Database;
  readonly cache: Cache;
  readonly bus: EventBus;
  /** Resolves once every committed event has been handed to the bus. */
  eventsFlushed(timeoutMs?: number): Promise<void>;
}

export async function startModerationService(config: ModerationConfig, adapters: ModerationAdapters = {}): Promise<RunningModerationService> {
  const base = startServiceBase("moderation", config, adapters);
  const { logger, telemetry } = base;

  const database = await base.database(config, adapters.database);
  const cache = await base.cache(config, adapters.cache);
  const bus = await base.bus(config, adapters.bus);
  await database.migrate(migrationsFolder, { schema: "moderation" });

  const relay = await startOutboxRelay({ database, bus, tables: { outboxEvents }, logger, telemetry });
  // A deleted account's reports go, reports about it and its moderator actions stay without naming it.
  const accountDeletions = await consumeAccountDeletions({
    bus,
    groupId: accountsGroupOf(config.group),
    telemetry,
    purge: ({ userId, deletedAt }) => database.db.transaction((tx) => purgeUserModeration(tx, userId, deletedAt)),
  });
  const handlers = createModerationHandlers({
    database,
    events: moderationEvents(config.eventsTopic),
    reportLimiter: cacheWindowLimiter(cache, { keyPrefix: "moderation:report-rate", rate: reportRateOf(config), actions: "reports", logger }),
    pageTokens: pageTokensFor(ModerationService.typeName, config, logger)("ListReports"),
    ...(adapters.now === undefined ? {} : { now: adapters.now }),
  });

  const server = await startServer({
    name: "moderation",
    host: config.host,
    port: config.port,
    ...internalListener(config),
    logger,
    telemetry,
    trustedProxyHops: config.trustedProxyHops,
    routes: (router) => {
      router.service(ModerationService, handlers);
      router.service(ModerationInternalService, createModerationInternalHandlers({ database }));
    },
    readiness: [
      { name: "database", check: () => database.ping() },
      { name: "cache", check: () => cache.ping() },
      { name: "events", check: () => bus.ping() },
    ],
    // Service tokens (the data exporter, no user behind the call) on the internal procedures only.
    auth: userAndServiceTokenAuth(config, cache, internalProcedures),
  });
  logger.info({ url: server.url, database: database.kind, cache: cache.kind, bus: bus.kind }, "moderation service listening");

  return {
    ...server,
    database,
    cache,
    bus,
    eventsFlushed: (timeoutMs) => relay.flushed(timeoutMs),
    async close() {
      await server.close();
      await accountDeletions.stop();
      await relay.stop();
      await base.close();
    },
  };
}
