import pg from "pg";
import type { LogSink } from "../bus/log-sink.ts";
import type { ListenOptions } from "./database.ts";

/**
 * LISTEN/NOTIFY over one dedicated connection that survives connection loss.
 *
 * Pooled connections cannot LISTEN (the pool hands them to other queries), so
 * notifications get their own client. When it drops (server restart, idle
 * kill, pg_terminate_backend), it reconnects with backoff and re-issues LISTEN
 * for every channel that still has handlers. Notifications sent while the
 * connection is down are lost — callers that must not miss work (the outbox
 * relay) also poll slowly as a safety net, and callers that cache what
 * notifications invalidate are told through `onListening`.
 */
export interface PgListener {
  listen(channel: string, onNotify: (payload: string) => void, options?: ListenOptions): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;

interface Connection {
  client: pg.Client;
  /** Channels LISTENed on this very connection (a new connection starts empty). */
  listening: Set<string>;
  /** One statement at a time: pg deprecates overlapping queries on a client. */
  queue: Promise<unknown>;
}

function run(connection: Connection, statement: string): Promise<unknown> {
  const next = connection.queue.then(() => connection.client.query(statement));
  connection.queue = next.catch(() => undefined);
  return next;
}

interface Handler {
  onNotify: (payload: string) => void;
  onListening?: ((listening: boolean) => void) | undefined;
}

export function createPgListener(config: pg.ClientConfig, log: LogSink): PgListener {
  const handlers = new Map<string, Set<Handler>>();
  let current: Connection | null = null;
  let connecting: Promise<Connection> | null = null;
  let reconnectTimer: NodeJS.Timeout | null = null;
  let reconnectDelay = RECONNECT_MIN_MS;
  let closed = false;
  /** A connection was lost since the last one listened: the next one to listen tells the handlers. */
  let lost = false;

  function dispatch(message: pg.Notification): void {
    for (const handler of handlers.get(message.channel) ?? []) {
      try {
        handler.onNotify(message.payload ?? "");
      } catch (error) {
        log.error({ err: error, channel: message.channel }, "notification handler threw");
      }
    }
  }

  async function listenOn(connection: Connection, channel: string): Promise<void> {
    if (connection.listening.has(channel)) return;
    await run(connection, `LISTEN ${connection.client.escapeIdentifier(channel)}`);
    connection.listening.add(channel);
  }

  function tellListening(listening: boolean): void {
    for (const set of handlers.values()) {
      for (const handler of set) {
        try {
          handler.onListening?.(listening);
        } catch (error) {
          log.error({ err: error }, "listening-state handler threw");
        }
      }
    }
  }

  function onLost(connection: Connection, error?: Error): void {
    if (current !== connection) return; // already replaced
    current = null;
    connection.client.end().catch(() => undefined);
    if (closed) return;
    log.warn({ err: error }, "LISTEN connection lost; reconnecting");
    lost = true;
    tellListening(false);
    scheduleReconnect();
  }

  function scheduleReconnect(): void {
    if (closed || reconnectTimer || handlers.size === 0) return;
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null;
      ensureConnected().then(
        () => {
          reconnectDelay = RECONNECT_MIN_MS;
        },
        (error: unknown) => {
          log.warn({ err: error, retryInMs: reconnectDelay }, "LISTEN reconnect failed");
          reconnectDelay = Math.min(reconnectDelay * 2, RECONNECT_MAX_MS);
          scheduleReconnect();
        },
      );
    }, reconnectDelay);
    reconnectTimer.unref();
  }

  async function connect(): Promise<Connection> {
    const client = new pg.Client({ ...config, keepAlive: true });
    const connection: Connection = { client, listening: new Set(), queue: Promise.resolve() };
    // An 'error' listener must exist before connecting, or a dropped socket
    // crashes the process.
    client.on("error", (error) => onLost(connection, error));
    client.on("end", () => onLost(connection));
    client.on("notification", dispatch);
    try {
      await client.connect();
      for (const channel of handlers.keys()) await listenOn(connection, channel);
    } catch (error) {
      client.end().catch(() => undefined);
      throw error;
    }
    current = connection;
    if (lost) {
      lost = false;
      tellListening(true);
    }
    return connection;
  }

  function ensureConnected(): Promise<Connection> {
    if (closed) return Promise.reject(new Error("listener is closed"));
    if (current) return Promise.resolve(current);
    connecting ??= connect().finally(() => {
      connecting = null;
    });
    return connecting;
  }

  async function unlisten(channel: string, handler: Handler): Promise<void> {
    const set = handlers.get(channel);
    if (!set?.delete(handler) || set.size > 0) return;
    handlers.delete(channel);
    const connection = current;
    if (!connection?.listening.delete(channel)) return;
    // Best effort: if this fails the connection is going away anyway.
    await run(connection, `UNLISTEN ${connection.client.escapeIdentifier(channel)}`).catch(() => undefined);
  }

  return {
    async listen(channel, onNotify, options) {
      let set = handlers.get(channel);
      if (!set) handlers.set(channel, (set = new Set()));
      // An entry of its own, so two listens of one function stay distinct.
      const handler: Handler = { onNotify, onListening: options?.onListening };
      set.add(handler);
      try {
        await listenOn(await ensureConnected(), channel);
      } catch (error) {
        await unlisten(channel, handler);
        throw error;
      }
      return () => unlisten(channel, handler);
    },

    async close() {
      closed = true;
      if (reconnectTimer) clearTimeout(reconnectTimer);
      handlers.clear();
      const connection = current ?? (await connecting?.catch(() => null)) ?? null;
      current = null;
      await connection?.client.end().catch(() => undefined);
    },
  };
}
