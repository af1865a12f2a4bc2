// The RealtimeService RPCs. Subscribe opens a device stream in this order, so
// nothing published meanwhile is lost or sent twice: (1) subscribe to the
// user's live channel (items are held), (2) replay from the history or read
// the position, (3) mark the connection live for presence, (4) send `ready`
// and the replayed items, then the held live items through the offset rules.
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { RealtimeService, Rotate_Reason, SetPresenceRequest_Hint, type SubscribeRequest } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import { requirePrincipal, type CallContext } from "@aviary/runtime/context";
import { directServerStream, type DirectServerStream } from "@aviary/runtime/direct-stream";
import type { Logger } from "@aviary/runtime/log";
import { decodeEvent } from "@aviary/runtime/realtime/events";
import type { Replay, UserStreamHub } from "@aviary/runtime/realtime/user-streams";
import { DeviceStream } from "./streams/device-stream.ts";
import { tokenExpired, type StreamRegistry } from "./streams/registry.ts";
import type { HeartbeatWheel } from "./streams/heartbeats.ts";
import { presenceEvent, presenceMessage, type PresenceTracker } from "./presence/tracker.ts";
import type { VisibleUsers } from "./presence/visibility.ts";

export interface StreamSettings {
  heartbeatMs: number;
  /** Planned stream lifetime (below the edge's maximum stream duration); each stream gets up to 10 % less, spread. */
  maxStreamAgeMs: number;
  coalesceMs: number;
  queueLimit: number;
  /** A connection not refreshed for this long counts as gone (missed heartbeats). */
  connectionTtlMs: number;
  /** How long an away hint is kept. */
  hintTtlMs: number;
}

export interface RealtimeDeps {
  hub: UserStreamHub;
  registry: StreamRegistry;
  heartbeats: HeartbeatWheel;
  presence: PresenceTracker;
  visibleUsers: VisibleUsers;
  settings: StreamSettings;
  logger: Logger;
}

interface Subscription {
  stream: DeviceStream;
  close(): void;
}

export interface RealtimeHandlers {
  /** Every RPC, served by connect. */
  impl: ServiceImpl<typeof RealtimeService>;
  /** Subscribe's direct path for plain gRPC (the same stream logic). */
  directStreams: DirectServerStream[];
}

export function createRealtimeHandlers(deps: RealtimeDeps): RealtimeHandlers {
  const { hub, registry, presence, settings, logger } = deps;

  /** Redis (or whatever holds the streams) failing is a retryable condition for the client; the cause is logged, not sent. */
  async function store<T>(what: string, work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (e) {
      if (e instanceof ConnectError) throw e;
      logger.warn({ err: e, step: what }, "realtime store call failed");
      throw new ConnectError(`realtime store unavailable (${what})`, Code.Unavailable, undefined, undefined, e);
    }
  }

  /**
   * Opens a device stream for the caller: everything up to the `ready` frame
   * queued. `close` undoes what the opening did (registry, presence watch,
   * the connection's presence); a failed opening undoes itself.
   */
  async function openSubscription(request: SubscribeRequest, ctx: CallContext): Promise<Subscription> {
    const principal = requirePrincipal(ctx);
    const userId = principal.userId.toLowerCase();
    // The verifier allows for clock skew; a stream, which is ended at the
    // token's expiry, is not opened on a token already past it.
    if (principal.expiresAt.getTime() <= Date.now()) throw tokenExpired();
    const watched = await deps.visibleUsers(ctx, request.presenceUserIds);
    const stream = new DeviceStream({
      userId,
      sessionId: principal.sessionId,
      streamId: crypto.randomUUID(),
      queueLimit: settings.queueLimit,
      heartbeatMs: settings.heartbeatMs,
      heartbeats: deps.heartbeats,
      coalesceMs: settings.coalesceMs,
      fetchRange: (epoch, from, to) => hub.range(userId, epoch, from, to),
      decode: decodeEvent,
    });
    const connection = { userId, sessionId: principal.sessionId, connectionId: stream.streamId };
    const timers: NodeJS.Timeout[] = [];
    let connected = false;
    const close = () => {
      for (const timer of timers) clearTimeout(timer);
      registry.detach(stream);
      presence.unwatch(stream);
      if (connected) hub.disconnect(connection).catch((e: unknown) => logger.warn({ err: e, userId }, "presence disconnect failed"));
    };
    try {
      await store("listen", registry.attach(stream));
      const since = request.since;
      const replay: Replay = since
        ? await store("replay", hub.replay(userId, { epoch: since.epoch, offset: Number(since.offset) }))
        : { recovered: false, position: await store("position", hub.position(userId)) };
      // A new stream means the app is in front: this device's away hint ends.
      await store("presence", hub.hint(userId, principal.sessionId, false, settings.hintTtlMs));
      await store("presence", hub.connect(connection, settings.connectionTtlMs));
      connected = true;
      await store("presence", presence.watch(stream, watched));
      const current = await store("presence", hub.presence(watched));

      stream.start(
        { epoch: replay.position.epoch, offset: replay.position.offset, recovered: replay.recovered, heartbeatIntervalSeconds: Math.ceil(settings.heartbeatMs / 1000) },
        replay.recovered ? replay.items : [],
      );
      for (const status of current) stream.sendEphemeral(presenceEvent(status));

      // Rotation before the edge would cut the stream, spread so a fleet of
      // streams opened together does not reconnect together.
      const age = settings.maxStreamAgeMs * (0.9 + Math.random() * 0.1);
      timers.push(setTimeout(() => stream.rotate(Rotate_Reason.MAX_AGE), age));
      timers.push(setTimeout(() => stream.fail(tokenExpired()), Math.max(0, principal.expiresAt.getTime() - Date.now())));
      for (const timer of timers) timer.unref();
      logger.debug({ userId, streamId: stream.streamId, recovered: replay.recovered, offset: replay.position.offset }, "stream opened");
      return { stream, close };
    } catch (e) {
      close();
      throw e;
    }
  }

  // Subscribe through connect: Connect, gRPC-web and JSON clients straight
  // to the service, and HTTP/1.1.
  async function* subscribe(request: SubscribeRequest, ctx: HandlerContext) {
    const subscription = await openSubscription(request, ctx);
    try {
      yield* subscription.stream.frames(ctx.signal);
    } finally {
      subscription.close();
    }
  }

  // Subscribe over plain gRPC (everything through the edge): frames written
  // straight onto the HTTP/2 stream (runtime direct-stream.ts).
  const directSubscribe = directServerStream(RealtimeService.method.subscribe, async (request, ctx, out) => {
    const subscription = await openSubscription(request, ctx);
    try {
      await subscription.stream.pipeTo(out, ctx.signal);
    } finally {
      subscription.close();
    }
  });

  const impl: ServiceImpl<typeof RealtimeService> = {
    subscribe,

    async setPresence(request, ctx) {
      const principal = requirePrincipal(ctx);
      const away = request.hint === SetPresenceRequest_Hint.AWAY;
      const status = await store("presence", hub.hint(principal.userId.toLowerCase(), principal.sessionId, away, settings.hintTtlMs));
      return { presence: presenceMessage(status) };
    },

    async getPresence(request, ctx) {
      requirePrincipal(ctx);
      const visible = await deps.visibleUsers(ctx, request.userIds);
      const statuses = await store("presence", hub.presence(visible));
      return { presences: statuses.map(presenceMessage) };
    },
  };

  return { impl, directStreams: [directSubscribe] };
}
