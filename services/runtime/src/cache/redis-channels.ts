// One Redis subscriber connection shared by every channel a process listens
// to (a subscribed connection can run nothing but (un)subscribe commands).
// Handlers are per channel; the first handler subscribes, the last one to
// leave unsubscribes. ioredis re-subscribes after reconnects. Messages arrive
// as Buffers, so binary payloads survive.
import { Redis } from "ioredis";
import type { LogSink } from "../bus/log-sink.ts";
import { closeConnection, connectionOptions, reportOutages, type ConnectionBudget } from "./redis-connection.ts";

export type ChannelHandler = (message: Buffer) => void;

export interface RedisChannels {
  /** Resolves once SUBSCRIBE is confirmed; the returned function unsubscribes this handler. */
  subscribe(channel: string, onMessage: ChannelHandler): Promise<() => Promise<void>>;
  /**
   * Called each time the connection is back after a drop (ioredis has
   * re-subscribed): messages published meanwhile were missed, and whoever
   * needs every one must catch up.
   */
  onReconnect(listener: () => void): void;
  close(): Promise<void>;
}

export function redisChannels(url: string, log: LogSink, name = "redis subscriber", options: ConnectionBudget = {}): RedisChannels {
  let connection: Redis | null = null;
  const reconnectListeners: (() => void)[] = [];
  /** Per channel: its handlers, and the SUBSCRIBE every caller waits for. */
  const channels = new Map<string, { handlers: Set<ChannelHandler>; subscribed: Promise<unknown> }>();

  function open(): Redis {
    if (connection) return connection;
    // No handshake commands on this connection: ioredis 5.8.2+ can send its
    // CLIENT SETINFO / INFO ready check after a SUBSCRIBE issued while
    // connecting, and the server then refuses them ("Connection in subscriber
    // mode, only subscriber commands may be used"; redis/ioredis#2037). That
    // failed SUBSCRIBEs at stream open in fresh-clone runs.
    const created = new Redis(url, { ...connectionOptions(options), disableClientInfo: true, enableReadyCheck: false, enableAutoPipelining: false });
    reportOutages(created, name, log);
    let connectedBefore = false;
    created.on("ready", () => {
      if (connectedBefore) for (const listener of reconnectListeners) listener();
      connectedBefore = true;
    });
    created.on("messageBuffer", (channel: Buffer, message: Buffer) => {
      const key = channel.toString("utf8");
      for (const handler of channels.get(key)?.handlers ?? []) {
        try {
          handler(message);
        } catch (error) {
          log.error({ err: error, channel: key }, "subscription handler threw");
        }
      }
    });
    return (connection = created);
  }

  return {
    async subscribe(channel, onMessage) {
      const subscriber = open();
      let entry = channels.get(channel);
      if (!entry) {
        const created = { handlers: new Set<ChannelHandler>(), subscribed: subscriber.subscribe(channel) };
        channels.set(channel, (entry = created));
        created.subscribed.catch(() => {
          if (channels.get(channel) === created) channels.delete(channel);
        });
      }
      await entry.subscribed;
      const current = entry;
      current.handlers.add(onMessage);
      return async () => {
        if (!current.handlers.delete(onMessage) || current.handlers.size > 0 || channels.get(channel) !== current) return;
        channels.delete(channel);
        await subscriber.unsubscribe(channel);
      };
    },
    onReconnect(listener) {
      reconnectListeners.push(listener);
    },
    async close() {
      if (connection) await closeConnection(connection);
    },
  };
}
