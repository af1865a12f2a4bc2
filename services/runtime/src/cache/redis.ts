import { Redis } from "ioredis";
import type { Cache } from "./cache.ts";
import { consoleSink, type LogSink } from "../bus/log-sink.ts";
import { ttlMilliseconds } from "./ttl.ts";
import { redisChannels } from "./redis-channels.ts";
import { closeConnection, connectionOptions, reportOutages } from "./redis-connection.ts";

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

export function openRedisCache(options: RedisCacheOptions): Cache {
  const log = options.logger ?? consoleSink;
  const client = new Redis(options.url, connectionOptions());
  reportOutages(client, "redis", log);

  // Pub/sub on a connection of its own (redis-channels.ts).
  const channels = redisChannels(options.url, log);

  return {
    kind: "redis",

    get: (key) => client.get(key),

    getMany: (keys) => (keys.length === 0 ? Promise.resolve([]) : client.mget(...keys)),

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

    subscribe: (channel, onMessage) => channels.subscribe(channel, (message) => onMessage(message.toString("utf8"))),

    async ping() {
      await client.ping();
    },

    async close() {
      await Promise.all([closeConnection(client), channels.close()]);
    },
  };
}
