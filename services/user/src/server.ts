// Wiring of the user service: configuration → adapters → domain → server.
// Everything else in this folder is plain functions this file connects.
import { fileURLToPath } from "node:url";
import { UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import { UserInternalService } from "@aviary/gen/aviary/user/v1/user_internal_pb";
import { MediaService } from "@aviary/gen/aviary/media/v1/media_pb";
import { createServiceClient } from "@aviary/runtime/interceptors/client";
import { loadConfig, port, string, url, type ConfigOf } from "@aviary/runtime/config";
import type { Logger } from "@aviary/runtime/log";
import { startServer, type RunningServer } from "@aviary/runtime/server";
import { startOutboxRelay } from "@aviary/runtime/outbox/relay";
import type { Database } from "@aviary/runtime/db/database";
import type { EventBus } from "@aviary/runtime/bus/bus";
import type { Cache } from "@aviary/runtime/cache/cache";
import { createUserHandlers } from "./handlers.ts";
import { createUserInternalHandlers, internalProcedures } from "./internal-handlers.ts";
import { consumeAuthEvents, profilesConsumer } from "./events/consume.ts";
import { outboxEvents } from "./store/schema.ts";
import { busConfigSpec, cacheConfigSpec, clientFacingConfigSpec, databaseConfigSpec, internalListener, internalPortConfigSpec, observabilityConfigSpec, pageTokensFor, peerBase, peerUrl, serviceTokenConfigSpec, startServiceBase, userAndServiceTokenAuth, userTokenConfigSpec } from "@aviary/runtime/service-config";

export const migrationsFolder = fileURLToPath(new URL("./store/migrations", import.meta.url));

/** Every setting of the user service, from the environment (see README "Configuration"). */
export const userConfigSpec = {
  host: string("USER_HOST", { default: "127.0.0.1" }),
  port: port("USER_PORT", { default: 8082 }),
  ...internalPortConfigSpec("USER"),
  ...userTokenConfigSpec,
  /** The media service, asked whether a media id may be an avatar. */
  mediaUrl: peerUrl("MEDIA_URL", "http://127.0.0.1:8083"),
  /** Audience of service tokens, accepted on UserInternalService only. */
  ...serviceTokenConfigSpec,
  profilesGroup: string("USER_PROFILES_GROUP", { default: profilesConsumer }),
  ...clientFacingConfigSpec,
  ...databaseConfigSpec,
  ...cacheConfigSpec,
  ...busConfigSpec,
  ...observabilityConfigSpec,
};

export type UserConfig = ConfigOf<typeof userConfigSpec>;

export function userConfigFromEnv(env: NodeJS.ProcessEnv = process.env): UserConfig {
  return loadConfig(userConfigSpec, env);
}

/** Adapters can be handed in (the dev launcher shares one PGlite, one bus and one cache across services). */
export interface UserAdapters {
  database?: Database;
  cache?: Cache;
  bus?: EventBus;
  logger?: Logger;
}

export interface RunningUserService extends RunningServer {
  readonly database: Database;
  readonly cache: Cache;
  readonly bus: EventBus;
  /** Resolves once every committed event has been handed to the bus. */
  eventsFlushed(timeoutMs?: number): Promise<void>;
}

export async function startUserService(config: UserConfig, adapters: UserAdapters = {}): Promise<RunningUserService> {
  const base = startServiceBase("user", config, adapters);
  const { logger, telemetry } = base;

  const database = await base.database(config, adapters.database);
  const cache = await base.cache(config, adapters.cache);
  const bus = await base.bus(config, adapters.bus);
  await database.migrate(migrationsFolder, { schema: "users" });

  const relay = await startOutboxRelay({ database, bus, tables: { outboxEvents }, logger, telemetry });
  const profilesSubscription = await consumeAuthEvents({ database, cache, bus, groupId: config.profilesGroup });
  const tokens = pageTokensFor(UserService.typeName, config, logger);

  const handlers = createUserHandlers({
    database,
    cache,
    // Calls carry the caller's deadline (asCaller); the default bounds those that have none.
    media: createServiceClient(MediaService, peerBase(config.mediaUrl), { defaultTimeoutMs: 5_000 }),
    pageTokens: { followers: tokens("ListFollowers"), following: tokens("ListFollowing"), devices: tokens("ListDevices"), search: tokens("SearchUsers") },
  });

  const server = await startServer({
    name: "user",
    host: config.host,
    port: config.port,
    ...internalListener(config),
    logger,
    telemetry,
    trustedProxyHops: config.trustedProxyHops,
    routes: (router) => {
      router.service(UserService, handlers);
      router.service(UserInternalService, createUserInternalHandlers({ database }));
    },
    readiness: [
      { name: "database", check: () => database.ping() },
      { name: "cache", check: () => cache.ping() },
      { name: "events", check: () => bus.ping() },
    ],
    // Service tokens (other services, no user behind the call) on the internal procedures only.
    auth: userAndServiceTokenAuth(config, cache, internalProcedures),
  });
  logger.info({ url: server.url, database: database.kind, cache: cache.kind, bus: bus.kind }, "user service listening");

  return {
    ...server,
    database,
    cache,
    bus,
    eventsFlushed: (timeoutMs) => relay.flushed(timeoutMs),
    async close() {
      await server.close();
      await profilesSubscription.stop();
      await relay.stop();
      await base.close();
    },
  };
}
