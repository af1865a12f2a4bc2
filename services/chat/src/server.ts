// Wiring of the chat service: configuration → adapters → the RPC server
// and/or the delivery consumer. Everything else in this folder is plain
// functions this file connects.
import { fileURLToPath } from "node:url";
import { ChatService } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { ChatInternalService } from "@aviary/gen/aviary/chat/v1/chat_internal_pb";
import { MediaService } from "@aviary/gen/aviary/media/v1/media_pb";
import { UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import { bool, duration, int, loadConfig, oneOf, port, string, url, type ConfigOf } from "@aviary/runtime/config";
import type { Logger } from "@aviary/runtime/log";
import { startServer, type RunningServer } from "@aviary/runtime/server";
import { createServiceClient } from "@aviary/runtime/interceptors/client";
import { startOutboxRelay, type OutboxRelay } from "@aviary/runtime/outbox/relay";
import type { Database } from "@aviary/runtime/db/database";
import type { EventBus, Subscription } from "@aviary/runtime/bus/bus";
import type { Cache } from "@aviary/runtime/cache/cache";
import { MAX_ANSWER_SECONDS } from "@aviary/runtime/cache/reach-versions";
import type { ReadinessCheck } from "@aviary/runtime/health";
import { openUserStreams, userStreamsConfigSpec } from "@aviary/runtime/realtime/open";
import { tracedUserStreams } from "@aviary/runtime/realtime/traced";
import type { UserStreamPublisher } from "@aviary/runtime/realtime/user-streams";
import { busConfigSpec, cacheConfigSpec, clientFacingConfigSpec, databaseConfigSpec, internalListener, internalPortConfigSpec, observabilityConfigSpec, pageTokensFor, peerBase, peerUrl, serviceTokenConfigSpec, startServiceBase, userAndServiceTokenAuth, userTokenConfigSpec } from "@aviary/runtime/service-config";
import { sendRatePattern, type SendRate } from "./domain/send-rate.ts";
import { windowRateSetting } from "@aviary/runtime/window-limit";
import { typingCoalescer } from "./domain/typing.ts";
import { chatGroup, consumeChatEvents } from "./events/deliver.ts";
import { fastDelivery } from "./events/fast-path.ts";
import { purgeUserChat } from "./write/purge.ts";
import { accountsGroupOf, consumeAccountDeletions } from "@aviary/runtime/bus/account-deletions";
import { chatEvents, chatEventsTopic } from "./events/publish.ts";
import { createChatHandlers, type ChatDeps } from "./handlers.ts";
import { createChatInternalHandlers, internalProcedures } from "./internal-handlers.ts";
import { chatMediaOver, chatUsersOver, type ChatMedia, type ChatUsers } from "./peers.ts";
import { keptReachAnswers } from "./reach-answers.ts";
import { sendLimiter } from "./write/limit.ts";
import type { SendDeps } from "./write/send.ts";
import { sendSnapshots } from "./write/send-snapshots.ts";
import { outboxEvents } from "./store/schema.ts";

export const migrationsFolder = fileURLToPath(new URL("./store/migrations", import.meta.url));

export const chatRoles = ["all", "api", "delivery"] as const;

/** CHAT_FAILPOINT values (test-only). */
export const chatFailpoints = ["none", "exit-after-send-commit"] as const;

/** Every setting of the chat service, from the environment (see services/chat/README.md). */
export const chatConfigSpec = {
  host: string("CHAT_HOST", { default: "127.0.0.1" }),
  port: port("CHAT_PORT", { default: 8089 }),
  ...internalPortConfigSpec("CHAT"),
  /** all: everything in one process; api: the RPCs (and the outbox relay); delivery: chat events → members' streams (health endpoints always served). */
  role: oneOf("CHAT_ROLE", chatRoles, { default: "all" }),
  ...userTokenConfigSpec,
  /** Audience of service tokens, accepted on ChatInternalService only. */
  ...serviceTokenConfigSpec,
  /** Existence and blocks are asked of the user service as the caller. */
  userUrl: peerUrl("USER_URL", "http://127.0.0.1:8082"),
  /** Attachments and group avatars are checked with the media service as the caller (BatchGetMedia). */
  mediaUrl: peerUrl("MEDIA_URL", "http://127.0.0.1:8083"),
  group: string("CHAT_GROUP", { default: chatGroup }),
  eventsTopic: string("CHAT_EVENTS_TOPIC", { default: chatEventsTopic }),
  /** COUNT/WINDOW: sends per user per fixed window (counted in the cache). */
  sendRate: string("CHAT_SEND_RATE", { default: "30/10s", pattern: sendRatePattern }),
  /** How long a typing indicator lasts unless repeated (SetTyping's expires_in_seconds). */
  typingSeconds: int("CHAT_TYPING_SECONDS", { default: 5, min: 1, max: 60 }),
  /** How long after sending the sender may edit a message (EditMessage). */
  editWindowMs: duration("CHAT_EDIT_WINDOW", { default: "15m", min: "1s", max: "7d" }),
  /**
   * How long the user service's "may write" answer for a pair is kept while
   * neither user's reach version changed (reach-answers.ts); 0 asks on every
   * write. Needs the user service on the same cache (REDIS_URL), as the
   * session denylist does.
   */
  reachKeepSeconds: int("CHAT_REACH_KEEP_SECONDS", { default: 60, min: 0, max: MAX_ANSWER_SECONDS }),
  deliveryConcurrency: int("CHAT_DELIVERY_CONCURRENCY", { default: 6, min: 1, max: 64 }),
  /**
   * Publish a sent message to its members' streams right after it commits
   * (events/fast-path.ts), ahead of the outbox → Kafka → consumer path that
   * stays the durable one. Needs the members' streams in the API process.
   */
  fastDelivery: bool("CHAT_FAST_DELIVERY", { default: true }),
  /** While the outbox relay is busy, its passes start at least this many ms apart (events committed meanwhile share a pass; messages mostly go by the fast path, so 50, not 20: docs/decisions.md). */
  relayLingerMs: int("CHAT_RELAY_LINGER_MS", { default: 50, min: 0, max: 1_000 }),
  /**
   * TEST-ONLY failpoint, never set in production. `exit-after-send-commit`:
   * the process SIGKILLs itself right after a SendMessage transaction commits,
   * before answering (services/chat/test/failures.test.ts).
   */
  failpoint: oneOf("CHAT_FAILPOINT", chatFailpoints, { default: "none" }),
  /** Members' streams (REALTIME_REDIS_URL, else REDIS_URL, else memory): must match the realtime service. */
  ...userStreamsConfigSpec,
  ...clientFacingConfigSpec,
  ...databaseConfigSpec,
  ...cacheConfigSpec,
  ...busConfigSpec,
  ...observabilityConfigSpec,
};

export type ChatConfig = ConfigOf<typeof chatConfigSpec>;

export function chatConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ChatConfig {
  const config = loadConfig(chatConfigSpec, env);
  sendRateOf(config);
  return config;
}

/** The user service as the caller, its allowing answers kept while the reach versions stand (CHAT_REACH_KEEP_SECONDS). */
function usersOver(config: ChatConfig, cache: Cache): ChatUsers {
  // `URL.href` ends in "/"; Connect base URLs join paths themselves.
  const users = chatUsersOver(createServiceClient(UserService, peerBase(config.userUrl), { defaultTimeoutMs: 5_000 }));
  return config.reachKeepSeconds === 0 ? users : keptReachAnswers(users, cache, { keepMs: config.reachKeepSeconds * 1000, capacity: REACH_ANSWERS_KEPT });
}

/** A pair's kept answer is a few dozen bytes: 100,000 of them is a few MB. */
const REACH_ANSWERS_KEPT = 100_000;

function sendRateOf(config: ChatConfig): SendRate {
  return windowRateSetting("CHAT_SEND_RATE", config.sendRate);
}

/** Adapters can be handed in (the dev launcher shares one PGlite, bus, cache and stream hub; tests hand in a user peer). */
export interface ChatAdapters {
  database?: Database;
  cache?: Cache;
  bus?: EventBus;
  userStreams?: UserStreamPublisher;
  /** Who exists for a caller; by default the user service's BatchGetProfiles as the caller. */
  users?: ChatUsers;
  /** Which uploads a caller may attach; by default the media service's BatchGetMedia as the caller. */
  media?: ChatMedia;
  logger?: Logger;
}

export interface RunningChatService extends RunningServer {
  readonly database: Database;
  readonly cache: Cache;
  readonly bus: EventBus;
  /** Resolves once every committed event has been handed to the bus. */
  eventsFlushed(timeoutMs?: number): Promise<void>;
}

export async function startChatService(config: ChatConfig, adapters: ChatAdapters = {}): Promise<RunningChatService> {
  const base = startServiceBase("chat", config, adapters);
  const { logger, telemetry } = base;
  const serves = config.role === "all" || config.role === "api";
  const delivers = config.role === "all" || config.role === "delivery";

  const database = await base.database(config, adapters.database);
  const cache = await base.cache(config, adapters.cache);
  const bus = await base.bus(config, adapters.bus);
  // Not a readiness check: a realtime Redis outage delays delivery (the consumer retries), it must not take the API out of rotation.
  const userStreams = tracedUserStreams(adapters.userStreams ?? base.own(await openUserStreams(config, logger)), telemetry);
  await database.migrate(migrationsFolder, { schema: "chat" });

  // The API writes the outbox, so it relays it (one relay at a time publishes, under the relay's lock).
  const relay: OutboxRelay | undefined = serves ? await startOutboxRelay({ database, bus, tables: { outboxEvents }, logger, telemetry, lingerMs: config.relayLingerMs }) : undefined;
  // Only an API process sends; what it published is remembered only where this process's consumer can take it.
  const fast = serves && config.fastDelivery ? fastDelivery({ streams: userStreams, remember: delivers, logger }) : undefined;
  const subscriptions: Subscription[] = [];
  if (delivers) {
    subscriptions.push(
      await consumeChatEvents({ bus, topic: config.eventsTopic, groupId: config.group, streams: userStreams, partitionsConcurrently: config.deliveryConcurrency, telemetry, ...(fast === undefined ? {} : { fast }) }),
    );
    // The consumer role also purges deleted accounts (nothing of it needs the API).
    subscriptions.push(
      await consumeAccountDeletions({
        bus,
        groupId: accountsGroupOf(config.group),
        telemetry,
        purge: ({ userId, deletedAt }) => database.db.transaction((tx) => purgeUserChat(tx, userId, deletedAt)),
      }),
    );
  }

  // The handlers hand these deps to sendMessage as they are, so the send's test-only failpoint hook rides along.
  const handlerDeps: ChatDeps & Pick<SendDeps, "afterCommit"> = {
    database,
    // `URL.href` ends in "/"; Connect base URLs join paths themselves.
    users: adapters.users ?? usersOver(config, cache),
    media: adapters.media ?? chatMediaOver(createServiceClient(MediaService, peerBase(config.mediaUrl), { defaultTimeoutMs: 5_000 })),
    events: chatEvents(config.eventsTopic),
    limiter: sendLimiter(cache, sendRateOf(config), logger),
    snapshots: sendSnapshots(),
    streams: userStreams,
    typing: typingCoalescer(),
    typingExpiresInSeconds: config.typingSeconds,
    editWindowMs: config.editWindowMs,
    pageTokens: pageTokensFor(ChatService.typeName, config, logger)("ListConversations"),
    logger,
    ...(fast === undefined ? {} : { fast }),
    // TEST-ONLY (CHAT_FAILPOINT): die as if SIGKILLed between the commit and the answer.
    ...(config.failpoint === "exit-after-send-commit" ? { afterCommit: () => void process.kill(process.pid, "SIGKILL") } : {}),
  };
  const handlers = createChatHandlers(handlerDeps);

  const readiness: ReadinessCheck[] = [
    { name: "database", check: () => database.ping() },
    { name: "cache", check: () => cache.ping() },
    { name: "events", check: () => bus.ping() },
  ];

  const server = await startServer({
    name: "chat",
    host: config.host,
    port: config.port,
    ...internalListener(config),
    logger,
    telemetry,
    trustedProxyHops: config.trustedProxyHops,
    routes: (router) => {
      if (!serves) return;
      router.service(ChatService, handlers);
      router.service(ChatInternalService, createChatInternalHandlers({ database }));
    },
    readiness,
    // Service tokens (the data exporter, no user behind the call) on the internal procedures only.
    auth: userAndServiceTokenAuth(config, cache, internalProcedures),
  });
  logger.info({ url: server.url, role: config.role, database: database.kind, cache: cache.kind, bus: bus.kind }, "chat service listening");

  return {
    ...server,
    database,
    cache,
    bus,
    eventsFlushed: (timeoutMs) => relay?.flushed(timeoutMs) ?? Promise.resolve(),
    async close() {
      await server.close();
      for (const subscription of subscriptions) await subscription.stop();
      await relay?.stop();
      await base.close();
    },
  };
}

