// Wiring of the post service: configuration → adapters → domain → server.
// Everything else in this folder is plain functions this file connects.
import { fileURLToPath } from "node:url";
import { PostService } from "@aviary/gen/aviary/post/v1/post_pb";
import { PostInternalService } from "@aviary/gen/aviary/post/v1/post_internal_pb";
import { int, loadConfig, port, string, url, type ConfigOf } from "@aviary/runtime/config";
import type { Logger } from "@aviary/runtime/log";
import { startServer, type RunningServer } from "@aviary/runtime/server";
import { startOutboxRelay } from "@aviary/runtime/outbox/relay";
import type { Database } from "@aviary/runtime/db/database";
import type { EventBus } from "@aviary/runtime/bus/bus";
import type { Cache } from "@aviary/runtime/cache/cache";
import { busConfigSpec, cacheConfigSpec, clientFacingConfigSpec, databaseConfigSpec, internalListener, internalPortConfigSpec, observabilityConfigSpec, pageTokensFor, peerBase, peerUrl, serviceTokenConfigSpec, startServiceBase, userAndServiceTokenAuth, userTokenConfigSpec } from "@aviary/runtime/service-config";
import { createPostHandlers } from "./handlers.ts";
import { createPostInternalHandlers, internalProcedures } from "./internal-handlers.ts";
import { connectPeers, withSuspensions, type Peers } from "./peers.ts";
import { consumeModerationEvents, moderationEventsTopic } from "./events/moderation.ts";
import { postReadStatements } from "./store/read-statements.ts";
import { outboxEvents } from "./store/schema.ts";
import { purgeUserPosts } from "./store/purge.ts";
import { accountsGroupOf, consumeAccountDeletions } from "@aviary/runtime/bus/account-deletions";

export const migrationsFolder = fileURLToPath(new URL("./store/migrations", import.meta.url));

/** Every setting of the post service, from the environment. */
export const postConfigSpec = {
  host: string("POST_HOST", { default: "127.0.0.1" }),
  port: port("POST_PORT", { default: 8084 }),
  ...internalPortConfigSpec("POST"),
  ...userTokenConfigSpec,
  /** The user service: who may see whom (blocks). */
  userUrl: peerUrl("USER_URL", "http://127.0.0.1:8082"),
  /** The media service: which uploads are confirmed, and their read URLs. */
  mediaUrl: peerUrl("MEDIA_URL", "http://127.0.0.1:8083"),
  /** The consumer group prefix: account deletions are read in `<group>-accounts`. */
  group: string("POST_GROUP", { default: "post" }),
  /** The moderation service's topic: suspensions hide a user's posts, removals tombstone content (read in `<group>-moderation`). */
  moderationTopic: string("MODERATION_EVENTS_TOPIC", { default: moderationEventsTopic }),
  /**
   * While the outbox relay is busy, its passes start at least this many ms
   * apart, so the posts committed meanwhile share one transaction and one
   * Kafka request (and the feed one fetch); after a quiet spell a post goes
   * out at once.
   */
  relayLingerMs: int("POST_RELAY_LINGER_MS", { default: 10, min: 0, max: 1_000 }),
  /** Audience of service tokens, accepted on PostInternalService only. */
  ...serviceTokenConfigSpec,
  ...clientFacingConfigSpec,
  ...databaseConfigSpec,
  ...cacheConfigSpec,
  ...busConfigSpec,
  ...observabilityConfigSpec,
};

export type PostConfig = ConfigOf<typeof postConfigSpec>;

export function postConfigFromEnv(env: NodeJS.ProcessEnv = process.env): PostConfig {
  return loadConfig(postConfigSpec, env);
}

/** Adapters can be handed in (the dev launcher shares one PGlite, one bus and one cache across services). */
export interface PostAdapters {
  database?: Database;
  cache?: Cache;
  bus?: EventBus;
  logger?: Logger;
  /** The user and media services; by default Connect clients to USER_URL and MEDIA_URL. */
  peers?: Peers;
}

export interface RunningPostService extends RunningServer {
  readonly database: Database;
  readonly cache: Cache;
  readonly bus: EventBus;
  /** Resolves once every committed event has been handed to the bus. */
  eventsFlushed(timeoutMs?: number): Promise<void>;
}

export async function startPostService(config: PostConfig, adapters: PostAdapters = {}): Promise<RunningPostService> {
  const base = startServiceBase("post", config, adapters);
  const { logger, telemetry } = base;

  const database = await base.database(config, adapters.database);
  const cache = await base.cache(config, adapters.cache);
  const bus = await base.bus(config, adapters.bus);
  await database.migrate(migrationsFolder, { schema: "posts" });

  const relay = await startOutboxRelay({ database, bus, tables: { outboxEvents }, logger, telemetry, lingerMs: config.relayLingerMs });
  const accountDeletions = await consumeAccountDeletions({
    bus,
    groupId: accountsGroupOf(config.group),
    telemetry,
    purge: ({ userId }) => database.db.transaction((tx) => purgeUserPosts(tx, userId)),
  });
  const moderation = await consumeModerationEvents({ database, bus, topic: config.moderationTopic, groupId: `${config.group}-moderation` });
  const tokens = pageTokensFor(PostService.typeName, config, logger);

  const handlers = createPostHandlers({
    database,
    peers: withSuspensions(
      adapters.peers ?? connectPeers({ userUrl: peerBase(config.userUrl), mediaUrl: peerBase(config.mediaUrl) }),
      (ids) => postReadStatements(database.db).suspendedAmong(ids),
    ),
    pageTokens: { byAuthor: tokens("ListPostsByAuthor"), comments: tokens("ListComments"), search: tokens("SearchPosts") },
  });

  const server = await startServer({
    name: "post",
    host: config.host,
    port: config.port,
    ...internalListener(config),
    logger,
    telemetry,
    trustedProxyHops: config.trustedProxyHops,
    routes: (router) => {
      router.service(PostService, handlers);
      router.service(PostInternalService, createPostInternalHandlers({ database }));
    },
    // The user and media services are not readiness checks: a post service
    // that cannot reach them still serves the caller's own posts, and fails
    // only the calls that need them (UNAVAILABLE).
    readiness: [
      { name: "database", check: () => database.ping() },
      { name: "cache", check: () => cache.ping() },
      { name: "events", check: () => bus.ping() },
    ],
    // Service tokens (the data exporter, no user behind the call) on the internal procedures only.
    auth: userAndServiceTokenAuth(config, cache, internalProcedures),
  });
  logger.info({ url: server.url, database: database.kind, cache: cache.kind, bus: bus.kind }, "post service listening");

  return {
    ...server,
    database,
    cache,
    bus,
    eventsFlushed: (timeoutMs) => relay.flushed(timeoutMs),
    async close() {
      await server.close();
      await accountDeletions.stop();
      await moderation.stop();
      await relay.stop();
      await base.close();
    },
  };
}
