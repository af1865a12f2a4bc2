// The streams this instance holds. One live-channel subscription per user
// (however many of their devices are here), all on the hub's one subscriber
// connection; each item is decoded once and handed to every stream of its
// user. Also the per-session index that revocation uses, and the list of
// connections that presence refreshes.
import { Code, ConnectError } from "@connectrpc/connect";
import { Rotate_Reason } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import type { Connection, LiveItem, UserStreamHub } from "@aviary/runtime/realtime/user-streams";
import type { Logger } from "@aviary/runtime/log";
import type { DeviceStream, DecodedItem } from "./device-stream.ts";
import type { Event } from "@aviary/gen/aviary/realtime/v1/realtime_pb";

interface HeldUser {
  streams: Set<DeviceStream>;
  /** The live subscription; every stream of the user waits for it before replaying. */
  listening: Promise<() => Promise<void>>;
}

export interface StreamRegistry {
  /** Adds a stream and resolves once its user's live channel is subscribed. */
  attach(stream: DeviceStream): Promise<void>;
  detach(stream: DeviceStream): void;
  /** Ends every stream of a session (revoked). */
  endSession(sessionId: string, error: ConnectError): number;
  /** Every stream gets a last rotate frame (shutdown). */
  rotateAll(reason: Rotate_Reason): void;
  connections(): Connection[];
  sessions(): string[];
  readonly size: number;
  /** Resolves once no stream is left, or after `ms`. */
  drained(ms: number): Promise<void>;
}

export function createStreamRegistry(deps: { hub: UserStreamHub; decode: (payload: Uint8Array) => Event; logger: Logger }): StreamRegistry {
  const users = new Map<string, HeldUser>();
  const bySession = new Map<string, Set<DeviceStream>>();
  let count = 0;
  const onEmpty: (() => void)[] = [];

  const dispatch = (userId: string) => (item: LiveItem) => {
    const held = users.get(userId);
    if (held === undefined || held.streams.size === 0) return;
    let decoded: DecodedItem;
    try {
      decoded = { item, event: deps.decode(item.payload) };
    } catch (error) {
      // A producer bug; a durable item that cannot be shown still holds its
      // offset, so the streams resync rather than skip it silently.
      deps.logger.error({ err: error, userId, id: item.id, offset: item.offset }, "undecodable stream item");
      if (item.offset > 0) for (const stream of held.streams) stream.rotate(Rotate_Reason.RESYNC);
      return;
    }
    for (const stream of held.streams) stream.deliver(decoded);
  };

  // After the subscriber connection comes back, every held user's streams
  // catch up from the history with what the channel missed meanwhile.
  deps.hub.onResume(() => {
    for (const [userId, held] of users) {
      deps.hub
        .position(userId)
        .then((position) => {
          for (const stream of held.streams) stream.catchUp(position);
        })
        .catch((e: unknown) => {
          deps.logger.warn({ err: e, userId }, "catch-up after a subscriber reconnect failed: streams resync");
          for (const stream of held.streams) stream.rotate(Rotate_Reason.RESYNC);
        });
    }
  });

  return {
    async attach(stream) {
      count++;
      let sessionStreams = bySession.get(stream.sessionId);
      if (sessionStreams === undefined) bySession.set(stream.sessionId, (sessionStreams = new Set()));
      sessionStreams.add(stream);
      let held = users.get(stream.userId);
      if (held === undefined) {
        const listening = deps.hub.listen(stream.userId, dispatch(stream.userId));
        held = { streams: new Set(), listening };
        users.set(stream.userId, held);
        const created = held;
        listening.catch(() => {
          if (users.get(stream.userId) === created && created.streams.size === 0) users.delete(stream.userId);
        });
      }
      held.streams.add(stream);
      await held.listening;
    },

    detach(stream) {
      const held = users.get(stream.userId);
      if (held?.streams.delete(stream)) {
        count--;
        if (held.streams.size === 0) {
          users.delete(stream.userId);
          held.listening.then((stop) => stop()).catch((e: unknown) => deps.logger.debug({ err: e }, "unlisten failed"));
        }
      }
      const sessionStreams = bySession.get(stream.sessionId);
      sessionStreams?.delete(stream);
      if (sessionStreams?.size === 0) bySession.delete(stream.sessionId);
      if (count === 0) for (const resolve of onEmpty.splice(0)) resolve();
    },

    endSession(sessionId, error) {
      const streams = [...(bySession.get(sessionId) ?? [])];
      for (const stream of streams) stream.fail(error);
      return streams.length;
    },

    rotateAll(reason) {
      for (const held of users.values()) for (const stream of held.streams) stream.rotate(reason);
    },

    connections() {
      const out: Connection[] = [];
      for (const held of users.values()) for (const s of held.streams) if (!s.ended) out.push({ userId: s.userId, sessionId: s.sessionId, connectionId: s.streamId });
      return out;
    },

    sessions: () => [...bySession.keys()],

    get size() {
      return count;
    },

    drained(ms) {
      if (count === 0) return Promise.resolve();
      return new Promise((resolve) => {
        const timer = setTimeout(resolve, ms);
        onEmpty.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

/** The error a revoked session's streams end with (the client signs in again). */
export const sessionRevoked = () => new ConnectError("session has ended; sign in again", Code.Unauthenticated);
/** The error a stream ends with when its access token expires (refresh, then resume). */
export const tokenExpired = () => new ConnectError("access token expired: refresh it and resume", Code.Unauthenticated);
