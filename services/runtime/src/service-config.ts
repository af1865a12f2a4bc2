// The settings and adapter wiring every service shares, so each service's
// server.ts lists only what is its own. Spread the spec fragments into a
// service's config spec; open each adapter from the parsed config.
import { int, oneOf, optionalString, type ConfigOf } from "./config.ts";
import { openDatabase } from "./db/open.ts";
import { openCache } from "./cache/open.ts";
import { openEventBus } from "./bus/open.ts";
import type { Database } from "./db/database.ts";
import type { Cache } from "./cache/cache.ts";
import type { EventBus } from "./bus/bus.ts";
import type { LogSink } from "./bus/log-sink.ts";

/** Logs and traces. */
export const observabilityConfigSpec = {
  otlpEndpoint: optionalString("OTEL_EXPORTER_OTLP_ENDPOINT"),
  logLevel: oneOf("LOG_LEVEL", ["trace", "debug", "info", "warn", "error", "fatal", "silent"], { default: "info" }),
};

/** For services clients reach through the edge. */
export const clientFacingConfigSpec = {
  pageTokenSecret: optionalString("PAGE_TOKEN_SECRET"),
  trustedProxyHops: int("TRUSTED_PROXY_HOPS", { default: 0, min: 0, max: 5 }),
};

/** PostgreSQL when DATABASE_URL is set, else PGlite (in memory, or in PGLITE_DIR). */
export const databaseConfigSpec = {
  databaseUrl: optionalString("DATABASE_URL"),
  pgliteDir: optionalString("PGLITE_DIR"),
};

/** Redis when REDIS_URL is set, else the in-memory cache. */
export const cacheConfigSpec = { redisUrl: optionalString("REDIS_URL") };

/** Kafka when KAFKA_BROKERS is set, else the in-process bus. */
export const busConfigSpec = { kafkaBrokers: optionalString("KAFKA_BROKERS") };

export function openDatabaseFrom(config: ConfigOf<typeof databaseConfigSpec>, logger: LogSink): Promise<Database> {
  return openDatabase({ ...(config.databaseUrl ? { url: config.databaseUrl } : {}), ...(config.pgliteDir ? { dataDir: config.pgliteDir } : {}), logger });
}

export function openCacheFrom(config: ConfigOf<typeof cacheConfigSpec>, logger: LogSink): Promise<Cache> {
  return openCache({ ...(config.redisUrl ? { url: config.redisUrl } : {}), logger });
}

export function openBusFrom(clientId: string, config: ConfigOf<typeof busConfigSpec>, logger: LogSink): Promise<EventBus> {
  return openEventBus({ clientId, ...(config.kafkaBrokers ? { brokers: config.kafkaBrokers.split(",") } : {}), logger });
}

/**
 * Adapters a service opened itself (not those handed in by the dev launcher or
 * a test, which their owner closes): closed in reverse order on shutdown.
 */
export function ownedResources(): { own<T extends { close(): Promise<void> }>(resource: T): T; closeAll(): Promise<void> } {
  const owned: Array<{ close(): Promise<void> }> = [];
  return {
    own(resource) {
      owned.push(resource);
      return resource;
    },
    async closeAll() {
      for (const resource of owned.reverse()) await resource.close();
    },
  };
}
