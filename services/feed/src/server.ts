// Wiring of the feed service: configuration → adapters → consumers and/or
// the RPC server. Everything else in this folder is plain functions this
// file connects.
import { fileURLToPath } from "node:url";
import { FeedService } from "@aviary/gen/aviary/feed/v1/feed_pb";
import { PostService } from "@aviary/gen/aviary/post/v1/post_pb";
import { UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import { bool, int, loadConfig, oneOf, optionalString, port, string, url, type ConfigOf } from "@aviary/runtime/config";
import type { Logger } from "@aviary/runtime/log";
import { startServer, type RunningServer } from "@aviary/runtime/server";
import { createServiceClient } from "@aviary/runtime/interceptors/client";
import type { Database } from "@aviary/runtime/db/database";
import type { EventBus, Subscription } from "@aviary/runtime/bus/bus";
import type { Cache } from "@aviary/runtime/cache/cache";
import type { ReadinessCheck } from "@aviary/runtime/health";
import { openUserStreams, userStreamsConfigSpec } from "@aviary/runtime/realtime/open";
import { tracedUserStreams } from "@aviary/runtime/realtime/traced";
import type { UserStreamPublisher } from "@aviary/runtime/realtime/user-streams";
import { busConfigSpec, cacheConfigSpec, clientFacingConfigSpec, databaseConfigSpec, internalListener, internalPortConfigSpec, observabilityConfigSpec, pageTokensFor, peerBase, peerUrl, startServiceBase, userTokenAuth, userTokenConfigSpec } from "@aviary/runtime/service-config";
import { createFeedHandlers } from "./handlers.ts";
import { createViewCache } from "./read/view-cache.ts";
import { consumeFeedEvents, feedGroup } from "./events/consume.ts";
import { applyAccountDeleted } from "./events/apply.ts";
import { accountsGroupOf, consumeAccountDeletions } from "@aviary/runtime/bus/account-deletions";
import { createFeedHints } from "./events/live-hints.ts";
import { fanoutThreshold } from "./domain/threshold.ts";
import { startMergedAuthors } from "./read/merged-authors.ts";
import { readStatements } from "./store/read-statements.ts";
import type { TimelineStore } from "./store/timelines.ts";
import { openTimelineStore } from "./store/timelines-open.ts";

export const migrationsFolder = fileURLToPath(new URL("./store/migrations", import.meta.url));

/** Every setting of the feed service, from the environment (see services/feed/README.md). */
export const feedConfigSpec = {
  host: string("FEED_HOST", { default: "127.0.0.1" }),
  port: port("FEED_PORT", { default: 8085 }),
  ...internalPortConfigSpec("FEED"),
  /** all: API and consumers in one process; api: GetHomeFeed only; consumer: the event consumers only (health endpoints still served). */
  role: oneOf("FEED_ROLE", ["all", "api", "consumer"], { default: "all" }),
  ...userTokenConfigSpec,
  postUrl: peerUrl("POST_URL", "http://127.0.0.1:8084"),
  userUrl: peerUrl("USER_URL", "http://127.0.0.1:8082"),
  group: string("FEED_GROUP", { default: feedGroup }),
  timelineCap: int("FEED_TIMELINE_CAP", { default: 800, min: 1, max: 100_000 }),
  fanoutBatch: int("FEED_FANOUT_BATCH", { default: 1000, min: 1, max: 100_000 }),
  fanoutThreshold: fanoutThreshold("FEED_FANOUT_THRESHOLD", { default: 10_000 }),
  backfill: int("FEED_BACKFILL", { default: 50, min: 0, max: 100_000 }),
  /** How long a hydrated page is reused for an unchanged timeline (0: never; see read/view-cache.ts). */
  viewCacheSeconds: int("FEED_VIEW_CACHE_SECONDS", { default: 10, min: 0, max: 300 }),
  /** Partitions the consumer applies at once (each partition stays in order). */
  consumerConcurrency: int("FEED_CONSUMER_CONCURRENCY", { default: 6, min: 1, max: 64 }),
  /** Where timelines live; REDIS_URL when unset. A separate instance can be sized (and evicted) for timelines alone. */
  timelinesRedisUrl: optionalString("FEED_REDIS_URL"),
  redisPrefix: string("FEED_REDIS_PREFIX", { default: "" }),
  /** The consumer tells readers holding a live stream that their feed has new posts (realtime FeedUpdated). */
  liveHints: bool("FEED_LIVE_HINTS", { default: true }),
  /** Where those hints go (REALTIME_REDIS_URL, else REDIS_URL, else memory): must match the realtime service. */
  ...userStreamsConfigSpec,
  ...clientFacingConfigSpec,
  ...databaseConfigSpec,
  ...cacheConfigSpec,
  ...busConfigSpec,
  ...observabilityConfigSpec,
};

export type FeedConfig = ConfigOf<typeof feedConfigSpec>;

export function feedConfigFromEnv(env: NodeJS.ProcessEnv = process.env): FeedConfig {
  return loadConfig(feedConfigSpec, env);
}

/** Adapters can be handed in (the dev launcher shares one PGlite, one bus and one cache across services). */
export interface FeedAdapters {
  database?: Database;
  cache?: Cache;
  bus?: EventBus;
  timelines?: TimelineStore;
  /** Where live hints are published (the dev launcher shares one in-memory hub with the realtime service). */
  userStreams?: UserStreamPublisher;
  logger?: Logger;
}

export interface RunningFeedService extends RunningServer {
  readonly database: Database;
  readonly cache: Cache;
  readonly timelines: TimelineStore;
  /** Undefined in the api role. */
  readonly bus: EventBus | undefined;
}

export async function startFeedService(config: FeedConfig, adapters: FeedAdapters = {}): Promise<RunningFeedService> {
  const base = startServiceBase("feed", config, adapters);
  const { logger, telemetry } = base;
  const consumes = config.role !== "api";
  const serves = config.role !== "consumer";

  const database = await base.database(config, adapters.database);
  const cache = await base.cache(config, adapters.cache);
  const timelinesUrl = config.timelinesRedisUrl ?? config.redisUrl;
  const timelines =
    adapters.timelines ?? base.own(await openTimelineStore({ cap: config.timelineCap, prefix: config.redisPrefix, ...(timelinesUrl ? { url: timelinesUrl } : {}) }));
  const bus = consumes ? await base.bus(config, adapters.bus) : undefined;
  // Only the consumer sends hints. Not a readiness check: hints are optional,
  // a realtime Redis outage must not take the feed out of rotation.
  const userStreams = bus && config.liveHints ? tracedUserStreams(adapters.userStreams ?? base.own(await openUserStreams(config, logger)), telemetry) : undefined;
  await database.migrate(migrationsFolder, { schema: "feed" });

  // Readers who follow no author merged at read time skip the merge query (read/merged-authors.ts).
  const mergedAuthors = serves ? await startMergedAuthors({ database, query: (readerId) => readStatements(database.db).followsMergedAuthor(readerId) }) : undefined;

  let subscription: Subscription | undefined;
  let accountDeletions: Subscription | undefined;
  if (bus) {
    const projector = {
      database,
      timelines,
      fanoutBatch: config.fanoutBatch,
      fanoutThreshold: config.fanoutThreshold,
      backfill: config.backfill,
      ...(mergedAuthors ? { mergedAuthors } : {}),
      ...(userStreams ? { hints: createFeedHints({ streams: userStreams, logger }) } : {}),
    };
    subscription = await consumeFeedEvents({
      bus,
      groupId: config.group,
      ...projector,
      partitionsConcurrently: config.consumerConcurrency,
      telemetry,
    });
    accountDeletions = await consumeAccountDeletions({
      bus,
      groupId: accountsGroupOf(config.group),
      telemetry,
      purge: ({ userId }) => applyAccountDeleted(projector, userId),
    });
  }

  const handlers = createFeedHandlers({
    database,
    timelines,
    cap: config.timelineCap,
    logger,
    posts: createServiceClient(PostService, peerBase(config.postUrl), { defaultTimeoutMs: 5_000 }),
    users: createServiceClient(UserService, peerBase(config.userUrl), { defaultTimeoutMs: 5_000 }),
    pageTokens: pageTokensFor(FeedService.typeName, config, logger)("GetHomeFeed"),
    ...(mergedAuthors ? { mergedAuthors } : {}),
    ...(config.viewCacheSeconds > 0 ? { views: createViewCache({ cache, ttlSeconds: config.viewCacheSeconds, prefix: config.redisPrefix, logger }) } : {}),
  });

  const readiness: ReadinessCheck[] = [
    { name: "database", check: () => database.ping() },
    { name: "cache", check: () => cache.ping() },
    { name: "timelines", check: () => timelines.ping() },
  ];
  if (bus) readiness.push({ name: "events", check: () => bus.ping() });

  const server = await startServer({
    name: "feed",
    host: config.host,
    port: config.port,
    ...internalListener(config),
    logger,
    telemetry,
    trustedProxyHops: config.trustedProxyHops,
    // The consumer role serves only health, readiness and metrics.
    routes: (router) => {
      if (serves) router.service(FeedService, handlers);
    },
    readiness,
    auth: userTokenAuth(config, cache),
  });
  logger.info({ url: server.url, role: config.role, database: database.kind, cache: cache.kind, timelines: timelines.kind, bus: bus?.kind, liveHints: userStreams !== undefined }, "feed service listening");

  return {
    ...server,
    database,
    cache,
    timelines,
    bus,
    async close() {
      await server.close();
      await subscription?.stop();
      await accountDeletions?.stop();
      await mergedAuthors?.stop();
      await base.close();
    },
  };
}
