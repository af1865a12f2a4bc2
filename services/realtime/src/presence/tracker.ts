// Presence on this instance: it keeps the connections of the streams it holds
// alive in the hub (one pipelined refresh per heartbeat interval), sweeps
// users whose connections expired without a goodbye (an instance died), and
// hands presence changes to the streams that asked about each user, over one
// watch per watched user.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { EventSchema, PresenceSchema, PresenceState, type Event, type Presence } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import type { PresenceStatus, UserStreamHub } from "@aviary/runtime/realtime/user-streams";
import type { Logger } from "@aviary/runtime/log";
import type { DeviceStream } from "../streams/device-stream.ts";
import type { StreamRegistry } from "../streams/registry.ts";

const STATE: Record<PresenceStatus["state"], PresenceState> = {
  offline: PresenceState.OFFLINE,
  online: PresenceState.ONLINE,
  away: PresenceState.AWAY,
};

export function presenceMessage(status: PresenceStatus): Presence {
  return create(PresenceSchema, {
    userId: status.userId,
    state: STATE[status.state],
    ...(status.lastSeenMs === undefined ? {} : { lastSeen: timestampFromMs(status.lastSeenMs) }),
  });
}

export function presenceEvent(status: PresenceStatus): Event {
  return create(EventSchema, {
    id: `presence:${status.userId}:${status.state}:${status.lastSeenMs ?? 0}`,
    time: timestampFromMs(Date.now()),
    payload: { case: "presence", value: { presence: presenceMessage(status) } },
  });
}

export interface PresenceTracker {
  /** Starts delivering `userIds`' changes to the stream (after their current state, which the caller sends). */
  watch(stream: DeviceStream, userIds: readonly string[]): Promise<void>;
  unwatch(stream: DeviceStream): void;
  close(): void;
}

export function startPresenceTracker(deps: {
  hub: UserStreamHub;
  registry: StreamRegistry;
  logger: Logger;
  /** Connection lifetime without a refresh (missed heartbeats → offline). */
  connectionTtlMs: number;
  refreshEveryMs: number;
  sweepEveryMs: number;
}): PresenceTracker {
  const watched = new Map<string, { streams: Set<DeviceStream>; watching: Promise<() => Promise<void>> }>();
  const byStream = new Map<DeviceStream, string[]>();

  const refresh = setInterval(() => {
    deps.hub.refresh(deps.registry.connections(), deps.connectionTtlMs).catch((e: unknown) => deps.logger.warn({ err: e }, "presence refresh failed"));
  }, deps.refreshEveryMs);
  refresh.unref();
  // Any instance may sweep; the hub announces each expired user once.
  const sweep = setInterval(() => {
    deps.hub.sweep(500).catch((e: unknown) => deps.logger.warn({ err: e }, "presence sweep failed"));
  }, deps.sweepEveryMs);
  sweep.unref();

  return {
    async watch(stream, userIds) {
      byStream.set(stream, [...userIds]);
      await Promise.all(
        userIds.map((userId) => {
          let entry = watched.get(userId);
          if (entry === undefined) {
            const streams = new Set<DeviceStream>();
            const watching = deps.hub.watchPresence(userId, (status) => {
              const event = presenceEvent(status);
              for (const s of streams) s.sendEphemeral(event);
            });
            entry = { streams, watching };
            watched.set(userId, entry);
          }
          entry.streams.add(stream);
          return entry.watching;
        }),
      );
    },

    unwatch(stream) {
      for (const userId of byStream.get(stream) ?? []) {
        const entry = watched.get(userId);
        if (entry === undefined) continue;
        entry.streams.delete(stream);
        if (entry.streams.size > 0) continue;
        watched.delete(userId);
        entry.watching.then((stop) => stop()).catch((e: unknown) => deps.logger.debug({ err: e }, "unwatch failed"));
      }
      byStream.delete(stream);
    },

    close() {
      clearInterval(refresh);
      clearInterval(sweep);
    },
  };
}
