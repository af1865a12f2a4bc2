import { Redis, type RedisOptions } from "ioredis";
import type { Cache } from "./cache.ts";
import { consoleSink, type LogSink } from "../bus/log-sink.ts";
import { ttlMilliseconds } from "./ttl.ts";

export interface RedisCacheOptions {
  url: string;
  logger?: LogSink;
}

/**
 * INCR, and set the window's expiry when the key has none — on the first
 * increment, and also if an expiry was ever lost — atomically, so a counter
 * can never outlive its window.
 */
const INCR_WINDOW = `
local value = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return value`;

/**
 * Redis must never make a request hang: the connection is opened on first use,
 * reconnects forever in the background with capped backoff, but each command
 * fails after one reconnect attempt or 2 s. Callers treat a failure as a miss
 * (the cache only holds what can be lost and rebuilt).
 */
function connectionOptions(): RedisOptions {
  return {
    lazyConnect: true,
    connectTimeout: 2_000,
    commandTimeout: 2_000,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  };
}

export function openRedisCache(options: RedisCacheOptions): Cache {
  const log = options.logger ?? consoleSink;
  const client = new Redis(options.url, connectionOptions());
  reportOutages(client, "redis", log);

  // Pub/sub needs its own connection: a subscribed connection can run
  // nothing but (un)subscribe commands. ioredis re-subscribes after reconnects.
  let subscriber: Redis | null = null;
  /** Per channel: its handlers, and the SUBSCRIBE every caller waits for. */
  const channels = new Map<string, { handlers: Set<(message: string) => void>; subscribed: Promise<unknown> }>();
  function subscriberConnection(): Redis {
    if (subscriber) return subscriber;
    const connection = new Redis(options.url, connectionOptions());
    reportOutages(connection, "redis subscriber", log);
    connection.on("message", (channel: string, message: string) => {
      for (const handler of channels.get(channel)?.handlers ?? []) {
        try {
          handler(message);
        } catch (error) {
          log.error({ err: error, channel }, "cache subscription handler threw");
        }
      }
    });
    return (subscriber = connection);
  }

  return {
    kind: "redis",

    get: (key) => client.get(key),

    async set(key, value, setOptions) {
      const ttl = ttlMilliseconds(setOptions?.ttlSeconds);
      if (ttl === undefined) await client.set(key, value);
      else await client.set(key, value, "PX", ttl);
    },

    async setIfAbsent(key, value, setOptions) {
      const ttl = ttlMilliseconds(setOptions?.ttlSeconds);
      const reply = ttl === undefined ? await client.set(key, value, "NX") : await client.set(key, value, "PX", ttl, "NX");
      return reply === "OK";
    },

    async del(...keys) {
      return keys.length === 0 ? 0 : client.del(...keys);
    },

    async exists(key) {
      return (await client.exists(key)) === 1;
    },

    async incrWindow(key, windowSeconds) {
      const window = ttlMilliseconds(windowSeconds)!;
      const reply = await client.eval(INCR_WINDOW, 1, key, String(window));
      return Number(reply);
    },

    ttl: (key) => client.ttl(key),

    async publish(channel, message) {
      await client.publish(channel, message);
    },

    async subscribe(channel, onMessage) {
      const connection = subscriberConnection();
      let entry = channels.get(channel);
      if (!entry) {
        const created = { handlers: new Set<(message: string) => void>(), subscribed: connection.subscribe(channel) };
        channels.set(channel, (entry = created));
        created.subscribed.catch(() => {
          if (channels.get(channel) === created) channels.delete(channel);
        });
      }
      await entry.subscribed;
      const { handlers } = entry;
      handlers.add(onMessage);
      return async () => {
        if (!handlers.delete(onMessage) || handlers.size > 0 || channels.get(channel) !== entry) return;
        channels.delete(channel);
        await connection.unsubscribe(channel);
      };
    },

    async ping() {
      await client.ping();
    },

    async close() {
      await Promise.all([client, subscriber].map((connection) => connection && closeConnection(connection)));
    },
  };
}

/** QUIT lets pending replies arrive; a connection never opened (lazy) just drops. */
async function closeConnection(connection: Redis): Promise<void> {
  if (connection.status === "wait" || connection.status === "end") {
    connection.disconnect();
    return;
  }
  await connection.quit().catch(() => connection.disconnect());
}

/**
 * ioredis emits an error for every failed reconnect attempt; while Redis is
 * down that is one every 2 s per connection. Log the first, then the recovery.
 */
function reportOutages(connection: Redis, name: string, log: LogSink): void {
  let down = false;
  connection.on("error", (error: Error) => {
    if (down) return;
    down = true;
    log.warn({ err: error }, `${name} connection failed; retrying in the background`);
  });
  connection.on("ready", () => {
    if (!down) return;
    down = false;
    log.warn({}, `${name} connection restored`);
  });
}
