// Wiring of the BFF: configuration → clients of the services it reads (user,
// feed, notification, chat) → server.
// It owns no data: no database, no events; the cache is only for the session
// denylist every client-facing service checks.
import { BffService } from "@aviary/gen/aviary/bff/v1/bff_pb";
import { UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import { FeedService } from "@aviary/gen/aviary/feed/v1/feed_pb";
import { NotificationService } from "@aviary/gen/aviary/notification/v1/notification_pb";
import { ChatService } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { duration, int, loadConfig, port, string, url, type ConfigOf } from "@aviary/runtime/config";
import type { Logger } from "@aviary/runtime/log";
import { startServer, type RunningServer } from "@aviary/runtime/server";
import { createServiceClient } from "@aviary/runtime/interceptors/client";
import type { Cache } from "@aviary/runtime/cache/cache";
import { cacheConfigSpec, clientFacingConfigSpec, internalListener, internalPortConfigSpec, observabilityConfigSpec, peerBase, peerUrl, startServiceBase, userTokenAuth, userTokenConfigSpec } from "@aviary/runtime/service-config";
import { createBffHandlers } from "./handlers.ts";
import type { UnreadSource } from "./domain/unread.ts";
import { serviceUnread } from "./peers.ts";

/** Every setting of the BFF, from the environment (see README "Configuration"). */
export const bffConfigSpec = {
  host: string("BFF_HOST", { default: "127.0.0.1" }),
  port: port("BFF_PORT", { default: 8086 }),
  ...internalPortConfigSpec("BFF"),
  ...userTokenConfigSpec,
  userUrl: peerUrl("USER_URL", "http://127.0.0.1:8082"),
  feedUrl: peerUrl("FEED_URL", "http://127.0.0.1:8085"),
  /** The notification service: the unread section (GetUnreadCount, as the caller). */
  notificationUrl: peerUrl("NOTIFICATION_URL", "http://127.0.0.1:8088"),
  /** The chat service: the unread section's chats (GetUnreadCount, as the caller). */
  chatUrl: peerUrl("CHAT_URL", "http://127.0.0.1:8089"),
  /** Each section's time budget: past it, the section is reported as failed and the rest is answered. */
  sectionBudgetMs: duration("BFF_SECTION_TIMEOUT", { default: "3s", min: "10ms", max: "30s" }),
  feedPageSize: int("BFF_FEED_PAGE_SIZE", { default: 20, min: 1, max: 50 }),
  // It issues no page tokens of its own (the feed's next-page token passes through).
  trustedProxyHops: clientFacingConfigSpec.trustedProxyHops,
  ...cacheConfigSpec,
  ...observabilityConfigSpec,
};

export type BffConfig = ConfigOf<typeof bffConfigSpec>;

export function bffConfigFromEnv(env: NodeJS.ProcessEnv = process.env): BffConfig {
  return loadConfig(bffConfigSpec, env);
}

export interface BffAdapters {
  cache?: Cache;
  logger?: Logger;
  /** Unread counts; by default from the notification service at NOTIFICATION_URL and the chat service at CHAT_URL. */
  unread?: UnreadSource;
}

export interface RunningBffService extends RunningServer {
  readonly cache: Cache;
}

export async function startBffService(config: BffConfig, adapters: BffAdapters = {}): Promise<RunningBffService> {
  const base = startServiceBase("bff", config, adapters);
  const { logger, telemetry } = base;
  const cache = await base.cache(config, adapters.cache);

  const handlers = createBffHandlers({
    users: createServiceClient(UserService, peerBase(config.userUrl)),
    feed: createServiceClient(FeedService, peerBase(config.feedUrl)),
    unread: adapters.unread ?? serviceUnread(createServiceClient(NotificationService, peerBase(config.notificationUrl)), createServiceClient(ChatService, peerBase(config.chatUrl))),
    sectionBudgetMs: config.sectionBudgetMs,
    feedPageSize: config.feedPageSize,
  });

  const server = await startServer({
    name: "bff",
    host: config.host,
    port: config.port,
    ...internalListener(config),
    logger,
    telemetry,
    trustedProxyHops: config.trustedProxyHops,
    routes: (router) => router.service(BffService, handlers),
    // Ready when it can check sessions; its dependencies' health is theirs to report,
    // and a missing one costs a section, not the service.
    readiness: [{ name: "cache", check: () => cache.ping() }],
    auth: userTokenAuth(config, cache),
  });
  logger.info({ url: server.url }, "bff listening");

  return {
    ...server,
    cache,
    async close() {
      await server.close();
      await base.close();
    },
  };
}
