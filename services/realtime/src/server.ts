// Wiring of the realtime service: configuration → the user-stream hub, the
// cache (session denylist), the user service client (presence visibility) →
// stream registry, presence tracker, revocation watch → the RPC server.
import { RealtimeService, Rotate_Reason } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import { UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import { duration, int, loadConfig, port, string, url, type ConfigOf } from "@aviary/runtime/config";
import type { Logger } from "@aviary/runtime/log";
import { startServer, type RunningServer } from "@aviary/runtime/server";
import { createServiceClient } from "@aviary/runtime/interceptors/client";
import type { Cache } from "@aviary/runtime/cache/cache";
import { decodeEvent } from "@aviary/runtime/realtime/events";
import { realtimeInstruments } from "@aviary/runtime/metrics";
import { openUserStreams, userStreamsConfigSpec } from "@aviary/runtime/realtime/open";
import type { UserStreamHub } from "@aviary/runtime/realtime/user-streams";
import { cacheConfigSpec, clientFacingConfigSpec, internalListener, internalPortConfigSpec, observabilityConfigSpec, peerBase, peerUrl, startServiceBase, userTokenAuth, userTokenConfigSpec } from "@aviary/runtime/service-config";
import { createRealtimeHandlers } from "./handlers.ts";
import { createStreamRegistry, type StreamRegistry } from "./streams/registry.ts";
import { watchRevocations } from "./streams/revocation.ts";
import { createHeartbeatWheel, heartbeatTickMs } from "./streams/heartbeats.ts";
import { startPresenceTracker } from "./presence/tracker.ts";
import { visibleUsersVia } from "./presence/visibility.ts";

/** Every setting of the realtime service, from the environment (services/realtime/README.md). */
export const realtimeConfigSpec = {
  host: string("REALTIME_HOST", { default: "127.0.0.1" }),
  port: port("REALTIME_PORT", { default: 8087 }),
  ...internalPortConfigSpec("REALTIME"),
  ...userTokenConfigSpec,
  userUrl: peerUrl("USER_URL", "http://127.0.0.1:8082"),
  /** Below every idle timeout on the way (the edge's stream_idle_timeout is 300 s; mobile NATs and load balancers often 60 s). */
  heartbeatMs: duration("REALTIME_HEARTBEAT", { default: "25s", min: "100ms", max: "5m" }),
  /** Planned stream lifetime; must stay below the edge's max_stream_duration (1 h). */
  maxStreamAgeMs: duration("REALTIME_MAX_STREAM_AGE", { default: "50m", min: "1s", max: "24h" }),
  /** Heartbeats a connection may miss before its user counts as offline. */
  missedHeartbeats: int("REALTIME_MISSED_HEARTBEATS", { default: 3, min: 1, max: 20 }),
  /** Ephemeral items (presence, feed hints) of one kind: at most one per window per stream. */
  coalesceMs: duration("REALTIME_COALESCE", { default: "3s", min: "0ms", max: "1m" }),
  /** Frames a slow client may fall behind by before its stream is rotated; at least the history length. */
  queueLimit: int("REALTIME_QUEUE_LIMIT", { default: 2000, min: 16, max: 1_000_000 }),
  sweepMs: duration("REALTIME_PRESENCE_SWEEP", { default: "5s", min: "50ms", max: "5m" }),
  hintTtlMs: duration("REALTIME_AWAY_HINT_TTL", { default: "24h", min: "1s", max: "30d" }),
  /** Safety net behind the revocation announcements: held sessions re-checked against the denylist. */
  revocationRecheckMs: duration("REALTIME_REVOCATION_RECHECK", { default: "5m", min: "100ms", max: "1h" }),
  /** How long shutdown waits for clients to leave after the rotate frame before cutting streams. */
  drainMs: duration("REALTIME_DRAIN", { default: "2s", min: "0ms", max: "1m" }),
  ...userStreamsConfigSpec,
  trustedProxyHops: clientFacingConfigSpec.trustedProxyHops,
  ...cacheConfigSpec,
  ...observabilityConfigSpec,
};

export type RealtimeConfig = ConfigOf<typeof realtimeConfigSpec>;

export function realtimeConfigFromEnv(env: NodeJS.ProcessEnv = process.env): RealtimeConfig {
  return loadConfig(realtimeConfigSpec, env);
}

/** Adapters can be handed in (the dev launcher shares one in-memory hub with the feed). */
export interface RealtimeAdapters {
  cache?: Cache;
  userStreams?: UserStreamHub;
  logger?: Logger;
}

export interface RunningRealtimeService extends RunningServer {
  readonly hub: UserStreamHub;
  readonly registry: StreamRegistry;
}

export async function startRealtimeService(config: RealtimeConfig, adapters: RealtimeAdapters = {}): Promise<RunningRealtimeService> {
  const base = startServiceBase("realtime", config, adapters);
  const { logger, telemetry } = base;
  const cache = await base.cache(config, adapters.cache);
  const hub = adapters.userStreams ?? base.own(await openUserStreams(config, logger));

  const registry = createStreamRegistry({ hub, decode: decodeEvent, logger });
  // realtime_streams_open: read from the registry when Prometheus scrapes.
  realtimeInstruments(telemetry.meter).open.addCallback((result) => result.observe(registry.size));
  const presence = startPresenceTracker({
    hub,
    registry,
    logger,
    connectionTtlMs: config.heartbeatMs * config.missedHeartbeats,
    refreshEveryMs: config.heartbeatMs,
    sweepEveryMs: config.sweepMs,
  });
  const revocations = await watchRevocations({ cache, registry, logger, recheckMs: config.revocationRecheckMs });
  const users = createServiceClient(UserService, peerBase(config.userUrl), { defaultTimeoutMs: 5_000 });

  const heartbeats = createHeartbeatWheel(heartbeatTickMs(config.heartbeatMs));
  const handlers = createRealtimeHandlers({
    hub,
    registry,
    heartbeats,
    presence,
    visibleUsers: visibleUsersVia(users),
    settings: {
      heartbeatMs: config.heartbeatMs,
      maxStreamAgeMs: config.maxStreamAgeMs,
      coalesceMs: config.coalesceMs,
      // A full replay must fit, with room for what arrives meanwhile.
      queueLimit: Math.max(config.queueLimit, config.historyMaxItems + 64),
      connectionTtlMs: config.heartbeatMs * config.missedHeartbeats,
      hintTtlMs: config.hintTtlMs,
    },
    logger,
  });

  const server = await startServer({
    name: "realtime",
    host: config.host,
    port: config.port,
    ...internalListener(config),
    logger,
    telemetry,
    trustedProxyHops: config.trustedProxyHops,
    routes: (router) => router.service(RealtimeService, handlers.impl),
    directStreams: handlers.directStreams,
    readiness: [
      { name: "cache", check: () => cache.ping() },
      { name: "streams", check: () => hub.ping() },
    ],
    auth: userTokenAuth(config, cache),
    // Every client is told to reconnect (to another instance) and resume:
    // nothing is lost, the history has everything after their offset.
    endStreams: async () => {
      registry.rotateAll(Rotate_Reason.SHUTDOWN);
      await registry.drained(config.drainMs);
    },
  });
  logger.info({ url: server.url, streams: hub.kind, cache: cache.kind }, "realtime service listening");

  return {
    ...server,
    hub,
    registry,
    async close() {
      await server.close();
      heartbeats.close();
      presence.close();
      await revocations.stop();
      await base.close();
    },
  };
}
