// Wiring of the notification service: configuration → adapters → consumers,
// push workers and/or the RPC server. Everything else in this folder is
// plain functions this file connects.
import { fileURLToPath } from "node:url";
import { NotificationService } from "@aviary/gen/aviary/notification/v1/notification_pb";
import { NotificationInternalService } from "@aviary/gen/aviary/notification/v1/notification_internal_pb";
import { UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import { ConfigError, duration, int, loadConfig, oneOf, optionalString, port, string, url, type ConfigOf } from "@aviary/runtime/config";
import type { Logger } from "@aviary/runtime/log";
import { startServer, type RunningServer } from "@aviary/runtime/server";
import { createServiceClient } from "@aviary/runtime/interceptors/client";
import { startOutboxRelay } from "@aviary/runtime/outbox/relay";
import type { Database } from "@aviary/runtime/db/database";
import type { EventBus, Subscription } from "@aviary/runtime/bus/bus";
import type { Cache } from "@aviary/runtime/cache/cache";
import type { ReadinessCheck } from "@aviary/runtime/health";
import { openUserStreams, userStreamsConfigSpec } from "@aviary/runtime/realtime/open";
import { tracedUserStreams } from "@aviary/runtime/realtime/traced";
import type { UserStreamPublisher } from "@aviary/runtime/realtime/user-streams";
import { busConfigSpec, cacheConfigSpec, clientFacingConfigSpec, databaseConfigSpec, internalListener, internalPortConfigSpec, observabilityConfigSpec, pageTokensFor, peerBase, peerUrl, serviceTokenConfigSpec, startServiceBase, userAndServiceTokenAuth, userTokenConfigSpec } from "@aviary/runtime/service-config";
import { createNotificationHandlers } from "./handlers.ts";
import { createNotificationInternalHandlers, internalProcedures } from "./internal-handlers.ts";
import { chatEventsTopic, consumeChatMessages, consumeNotificationEvents, moderationEventsTopic, notificationGroup } from "./events/consume.ts";
import { purgeUserNotifications } from "./store/purge.ts";
import { accountsGroupOf, consumeAccountDeletions } from "@aviary/runtime/bus/account-deletions";
import { notificationEventsTopic } from "./events/publish.ts";
import { createLiveUpdates } from "./events/live.ts";
import { connectUserInternal, type DeviceRegistry, type UserDirectory } from "./peers.ts";
import { consumePushRequests, pushGroup } from "./push/worker.ts";
import { openPushProviders, pushProvidersConfigSpec } from "./push/providers.ts";
import type { PushPlatform, PushProvider } from "./push/provider.ts";
import { outboxEvents } from "./store/schema.ts";

export const migrationsFolder = fileURLToPath(new URL("./store/migrations", import.meta.url));

export const notificationRoles = ["all", "api", "consumer", "push"] as const;

/** Every setting of the notification service, from the environment (see services/notification/README.md). */
export const notificationConfigSpec = {
  host: string("NOTIFICATION_HOST", { default: "127.0.0.1" }),
  port: port("NOTIFICATION_PORT", { default: 8088 }),
  ...internalPortConfigSpec("NOTIFICATION"),
  /** all: everything in one process; api: the RPCs; consumer: post/user events → notifications, chat messages → push requests; push: push delivery (health endpoints always served). */
  role: oneOf("NOTIFICATION_ROLE", notificationRoles, { default: "all" }),
  ...userTokenConfigSpec,
  /** Audience of service tokens, accepted on NotificationInternalService only (the data exporter). */
  ...serviceTokenConfigSpec,
  userUrl: peerUrl("USER_URL", "http://127.0.0.1:8082"),
  /** Where service tokens come from (the consumer and push roles call UserInternalService). */
  authUrl: peerUrl("AUTH_URL", "http://127.0.0.1:8081"),
  clientId: string("NOTIFICATION_CLIENT_ID", { default: "notification" }),
  /** The client secret registered for clientId in the auth service's AUTH_SERVICE_CLIENTS; required by the consumer and push roles. */
  clientSecret: optionalString("NOTIFICATION_CLIENT_SECRET"),
  group: string("NOTIFICATION_GROUP", { default: notificationGroup }),
  pushGroup: string("NOTIFICATION_PUSH_GROUP", { default: pushGroup }),
  /**
   * The push requests' topic. Its own per deployment: every worker reading it
   * pushes what it reads to the devices it knows, so two deployments sharing a
   * Kafka cluster (or two test suites) must not share it.
   */
  eventsTopic: string("NOTIFICATION_EVENTS_TOPIC", { default: notificationEventsTopic }),
  /** The chat service's topic (its CHAT_EVENTS_TOPIC), read for message pushes. */
  chatEventsTopic: string("CHAT_EVENTS_TOPIC", { default: chatEventsTopic }),
  /** The moderation service's topic (its MODERATION_EVENTS_TOPIC): a suspended user's likes, follows, comments and mentions leave others' lists until lifted. */
  moderationTopic: string("MODERATION_EVENTS_TOPIC", { default: moderationEventsTopic }),
  /** Follows within one window of this length share a group. */
  followWindowMs: duration("NOTIFICATION_FOLLOW_GROUP_WINDOW", { default: "1d", min: "1m", max: "30d" }),
  /** An unfollow this soon after the follow takes its notification back. */
  unfollowWindowMs: duration("NOTIFICATION_UNFOLLOW_WINDOW", { default: "10m", min: "0s", max: "7d" }),
  consumerConcurrency: int("NOTIFICATION_CONSUMER_CONCURRENCY", { default: 6, min: 1, max: 64 }),
  pushConcurrency: int("PUSH_PARTITION_CONCURRENCY", { default: 6, min: 1, max: 64 }),
  pushDeviceConcurrency: int("PUSH_DEVICE_CONCURRENCY", { default: 16, min: 1, max: 256 }),
  pushMaxAttempts: int("PUSH_MAX_ATTEMPTS", { default: 5, min: 1, max: 20 }),
  pushRetryInitialMs: duration("PUSH_RETRY_INITIAL", { default: "500ms", min: "1ms", max: "1m" }),
  pushRetryMaxMs: duration("PUSH_RETRY_MAX", { default: "30s", min: "1ms", max: "10m" }),
  pushTitle: string("PUSH_TITLE", { default: "Aviary" }),
  /** Push requests older than this when the worker reads them are not pushed (a backlog after an outage). */
  pushMaxAgeMs: duration("PUSH_MAX_AGE", { default: "1h", min: "1s", max: "7d" }),
  ...pushProvidersConfigSpec,
  /** Live updates go to users' streams here (REALTIME_REDIS_URL, else REDIS_URL, else memory): must match the realtime service. */
  ...userStreamsConfigSpec,
  ...clientFacingConfigSpec,
  ...databaseConfigSpec,
  ...cacheConfigSpec,
  ...busConfigSpec,
  ...observabilityConfigSpec,
};

export type NotificationConfig = ConfigOf<typeof notificationConfigSpec>;

export function notificationConfigFromEnv(env: NodeJS.ProcessEnv = process.env): NotificationConfig {
  return loadConfig(notificationConfigSpec, env);
}

/** Adapters can be handed in (the dev launcher shares one PGlite, bus, cache and stream hub; tests hand in push providers). */
export interface NotificationAdapters {
  database?: Database;
  cache?: Cache;
  bus?: EventBus;
  userStreams?: UserStreamPublisher;
  /** The user service's internal side; by default over UserInternalService with a service token. */
  users?: { directory: UserDirectory; devices: DeviceRegistry };
  providers?: ReadonlyMap<PushPlatform, PushProvider>;
  logger?: Logger;
}

export interface RunningNotificationService extends RunningServer {
  readonly database: Database;
  readonly cache: Cache;
  readonly bus: EventBus;
  /** Resolves once every committed push request has been handed to the bus. */
  eventsFlushed(timeoutMs?: number): Promise<void>;
}

export async function startNotificationService(config: NotificationConfig, adapters: NotificationAdapters = {}): Promise<RunningNotificationService> {
  const base = startServiceBase("notification", config, adapters);
  const { logger, telemetry } = base;
  const consumes = config.role === "all" || config.role === "consumer";
  const pushes = config.role === "all" || config.role === "push";
  const serves = config.role === "all" || config.role === "api";

  const database = await base.database(config, adapters.database);
  const cache = await base.cache(config, adapters.cache);
  const bus = await base.bus(config, adapters.bus);
  // Not a readiness check: a realtime Redis outage degrades live updates, it must not take the service out of rotation.
  const userStreams = tracedUserStreams(adapters.userStreams ?? base.own(await openUserStreams(config, logger)), telemetry);
  await database.migrate(migrationsFolder, { schema: "notification" });
  const users = consumes || pushes ? (adapters.users ?? internalUsers(config)) : undefined;
  const live = createLiveUpdates({ streams: userStreams, database, logger });

  // Every role relays the outbox: ingest writes push requests to it, and any
  // instance may publish them (one at a time, under the relay's lock).
  const relay = await startOutboxRelay({ database, bus, tables: { outboxEvents }, logger, telemetry });
  const subscriptions: Subscription[] = [];
  if (consumes && users) {
    const consume = {
      bus,
      groupId: config.group,
      moderationTopic: config.moderationTopic,
      database,
      users: users.directory,
      pushTopic: config.eventsTopic,
      followWindowMs: config.followWindowMs,
      unfollowWindowMs: config.unfollowWindowMs,
      live,
      logger,
      partitionsConcurrently: config.consumerConcurrency,
      telemetry,
    };
    subscriptions.push(await consumeNotificationEvents(consume));
    subscriptions.push(
      await consumeAccountDeletions({
        bus,
        groupId: accountsGroupOf(config.group),
        telemetry,
        purge: ({ userId }) => database.db.transaction((tx) => purgeUserNotifications(tx, userId)),
      }),
    );
    // Chat messages → pushes, on their own subscription (group NOTIFICATION_GROUP + "-chat").
    subscriptions.push(await consumeChatMessages({ ...consume, chatTopic: config.chatEventsTopic }));
  }
  if (pushes && users) {
    const providers = adapters.providers ?? ownAll(base, await openPushProviders(config));
    if (providers.size === 0) logger.warn("no push provider is configured: push requests are recorded as skipped (see services/notification/README.md)");
    subscriptions.push(
      await consumePushRequests(
        {
          database,
          devices: users.devices,
          users: users.directory,
          providers,
          streams: userStreams,
          bus,
          topic: config.eventsTopic,
          groupId: config.pushGroup,
          retry: { maxAttempts: config.pushMaxAttempts, initialBackoffMs: config.pushRetryInitialMs, maxBackoffMs: config.pushRetryMaxMs },
          title: config.pushTitle,
          deviceConcurrency: config.pushDeviceConcurrency,
          maxAgeMs: config.pushMaxAgeMs,
          logger,
          telemetry,
        },
        { partitionsConcurrently: config.pushConcurrency },
      ),
    );
  }

  const handlers = createNotificationHandlers({
    database,
    users: createServiceClient(UserService, peerBase(config.userUrl), { defaultTimeoutMs: 5_000 }),
    pageTokens: pageTokensFor(NotificationService.typeName, config, logger)("ListNotifications"),
    live,
  });

  const readiness: ReadinessCheck[] = [
    { name: "database", check: () => database.ping() },
    { name: "cache", check: () => cache.ping() },
    { name: "events", check: () => bus.ping() },
  ];

  const server = await startServer({
    name: "notification",
    host: config.host,
    port: config.port,
    ...internalListener(config),
    logger,
    telemetry,
    trustedProxyHops: config.trustedProxyHops,
    routes: (router) => {
      if (!serves) return;
      router.service(NotificationService, handlers);
      router.service(NotificationInternalService, createNotificationInternalHandlers({ database }));
    },
    readiness,
    // Service tokens (the data exporter, no user behind the call) on the internal procedures only.
    auth: userAndServiceTokenAuth(config, cache, internalProcedures),
  });
  logger.info({ url: server.url, role: config.role, database: database.kind, cache: cache.kind, bus: bus.kind }, "notification service listening");

  return {
    ...server,
    database,
    cache,
    bus,
    eventsFlushed: (timeoutMs) => relay.flushed(timeoutMs),
    async close() {
      await server.close();
      for (const subscription of subscriptions) await subscription.stop();
      await relay.stop();
      await base.close();
    },
  };
}

function internalUsers(config: NotificationConfig): { directory: UserDirectory; devices: DeviceRegistry } {
  if (config.clientSecret === undefined) {
    throw new ConfigError([
      { variable: "NOTIFICATION_CLIENT_SECRET", problem: `required for the ${config.role} role: the secret of client "${config.clientId}" in the auth service's AUTH_SERVICE_CLIENTS` },
    ]);
  }
  return connectUserInternal({ userUrl: peerBase(config.userUrl), authUrl: peerBase(config.authUrl), clientId: config.clientId, clientSecret: config.clientSecret });
}

function ownAll(base: { own<T extends { close(): Promise<void> }>(resource: T): T }, providers: Map<PushPlatform, PushProvider>): Map<PushPlatform, PushProvider> {
  for (const provider of providers.values()) base.own(provider);
  return providers;
}
