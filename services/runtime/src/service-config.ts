// The settings and adapter wiring every service shares, so each service's
// server.ts lists only what is its own. Spread the spec fragments into a
// service's config spec; open each adapter from the parsed config.
import { duration, int, oneOf, optionalInt, optionalString, string, url, type ConfigOf, type Var } from "./config.ts";
import { createServiceTokenVerifier, createTokenVerifier } from "./auth/verifier.ts";
import { reusedRevocationCheck } from "./auth/denylist.ts";
import { createPageTokens, type PageTokens } from "./pagination.ts";
import type { AuthOptions } from "./interceptors/auth.ts";
import { createLogger, type Logger } from "./log.ts";
import { startTelemetry, type Telemetry } from "./telemetry.ts";
import { openDatabase } from "./db/open.ts";
import { openCache } from "./cache/open.ts";
import { meteredCache } from "./cache/metered.ts";
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

/**
 * The listener a service's peers call it on: every RPC of the service again,
 * served by @grpc/grpc-js (grpc-js/server.ts) beside the connect-node port
 * the edge and browsers use. Internal hops cost a quarter of connect-node's
 * CPU there (docs/decisions.md, "Internal transport"). Unset: not served, and
 * peers reach the service on its main port. 0 picks a free port.
 */
export function internalPortConfigSpec(prefix: string): { internalPort: Var<number | undefined> } {
  return { internalPort: optionalInt(`${prefix}_INTERNAL_PORT`, { min: 0, max: 65535 }) };
}

/** startServer's options for the internal listener, from internalPortConfigSpec's setting. */
export function internalListener(config: { internalPort: number | undefined }): { grpcJsPort?: number } {
  return config.internalPort === undefined ? {} : { grpcJsPort: config.internalPort };
}

/**
 * Where a peer service is: "http://user:8082" calls its main port over
 * connect-node, "grpc://user:9082" its internal listener over grpc-js
 * (interceptors/client.ts).
 */
export function peerUrl(variable: string, defaultUrl: string): Var<URL> {
  return url(variable, { default: defaultUrl, protocols: ["http", "https", "grpc"] });
}

/** A peer URL setting as createServiceClient takes it (no trailing slash; `origin` is "null" for grpc:). */
export function peerBase(peer: URL): string {
  return peer.href.replace(/\/$/, "");
}

/** Where the auth service publishes its keys, and what its user access tokens must say. */
export const userTokenConfigSpec = {
  authJwksUrl: url("AUTH_JWKS_URL", { default: "http://127.0.0.1:8081/.well-known/jwks.json", protocols: ["http", "https"] }),
  issuer: string("AUTH_ISSUER", { default: "aviary-auth" }),
  audience: string("AUTH_AUDIENCE", { default: "aviary" }),
  /** How long a "not revoked" answer of the session denylist is reused per session (reusedRevocationCheck); 0s asks on every call. */
  revocationReuseMs: duration("AUTH_REVOCATION_REUSE", { default: "1s", min: 0, max: "10s" }),
};

/**
 * Authentication of a service that does not issue tokens: user access tokens
 * verified against the auth service's key set (fetched, cached, refetched on
 * an unknown kid), and revoked sessions read from the cache denylist the auth
 * service writes (a cache error fails closed), each session's "not revoked"
 * reused for AUTH_REVOCATION_REUSE once revocation announcements reach the process.
 */
export function userTokenAuth(config: ConfigOf<typeof userTokenConfigSpec>, cache: Cache): AuthOptions {
  return {
    verifier: createTokenVerifier({ issuer: config.issuer, audience: config.audience, jwks: config.authJwksUrl, typ: "at+jwt" }),
    publicProcedures: [],
    isSessionRevoked: reusedRevocationCheck(cache, { reuseMs: config.revocationReuseMs }),
  };
}

/** The audience of service tokens (must differ from AUTH_AUDIENCE), for services with internal procedures. */
export const serviceTokenConfigSpec = {
  internalAudience: string("AUTH_INTERNAL_AUDIENCE", { default: "aviary-internal" }),
};

/** Every procedure of an internal service (`<type name>/<method>`), the ones that take service tokens. */
export function proceduresOf(service: { typeName: string; methods: ReadonlyArray<{ name: string }> }): string[] {
  return service.methods.map((method) => `${service.typeName}/${method.name}`);
}

/**
 * User-token authentication (userTokenAuth) plus service tokens (other
 * services, no user behind the call) on `procedures` only; a valid service
 * token anywhere else is PERMISSION_DENIED.
 */
export function userAndServiceTokenAuth(
  config: ConfigOf<typeof userTokenConfigSpec> & ConfigOf<typeof serviceTokenConfigSpec>,
  cache: Cache,
  procedures: readonly string[],
): AuthOptions {
  return {
    ...userTokenAuth(config, cache),
    serviceTokens: {
      verifier: createServiceTokenVerifier({ issuer: config.issuer, audience: config.internalAudience, jwks: config.authJwksUrl }),
      procedures: [...procedures],
    },
  };
}

/**
 * Page tokens for `serviceTypeName`'s list methods, each bound to its method.
 * Without PAGE_TOKEN_SECRET a random key is used (and a warning logged): page
 * tokens then die with the process and do not cross instances.
 */
export function pageTokensFor(
  serviceTypeName: string,
  config: ConfigOf<typeof clientFacingConfigSpec>,
  logger: Logger,
): (method: string) => PageTokens {
  if (config.pageTokenSecret === undefined) {
    logger.warn("PAGE_TOKEN_SECRET is not set: using a random one, so page tokens do not survive a restart or cross instances");
  }
  const secret = config.pageTokenSecret ?? crypto.randomUUID() + crypto.randomUUID();
  return (method) => createPageTokens(secret, `${serviceTypeName}/${method}`);
}

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

/** What every service's start function begins with; see startServiceBase. */
export interface ServiceBase {
  readonly logger: Logger;
  readonly telemetry: Telemetry;
  /** The adapter handed in, or one opened from the config and owned (closed by close()). */
  database(config: ConfigOf<typeof databaseConfigSpec>, handedIn?: Database): Promise<Database>;
  cache(config: ConfigOf<typeof cacheConfigSpec>, handedIn?: Cache): Promise<Cache>;
  bus(config: ConfigOf<typeof busConfigSpec>, handedIn?: EventBus): Promise<EventBus>;
  /** Owns any other resource the service opened (closed with the adapters). */
  own<T extends { close(): Promise<void> }>(resource: T): T;
  /** Closes what the service opened, newest first, then flushes telemetry. */
  close(): Promise<void>;
}

/**
 * A service's logger (or the one handed in), its telemetry, and the adapters
 * it opens itself. Adapters handed in (the dev launcher's shared ones, a
 * test's) are used as they are and left to their owner to close.
 */
export function startServiceBase(name: string, config: ConfigOf<typeof observabilityConfigSpec>, given: { logger?: Logger } = {}): ServiceBase {
  const logger = given.logger ?? createLogger(name, config.logLevel);
  const telemetry = startTelemetry({ serviceName: name, ...(config.otlpEndpoint ? { otlpEndpoint: config.otlpEndpoint } : {}) });
  const resources = ownedResources();
  return {
    logger,
    telemetry,
    database: async (databaseConfig, handedIn) => handedIn ?? resources.own(await openDatabaseFrom(databaseConfig, logger)),
    // Hits and misses are counted whichever adapter it is, handed in or opened (cache/metered.ts).
    cache: async (cacheConfig, handedIn) => meteredCache(handedIn ?? resources.own(await openCacheFrom(cacheConfig, logger)), telemetry.meter),
    bus: async (busConfig, handedIn) => handedIn ?? resources.own(await openBusFrom(name, busConfig, logger)),
    own: (resource) => resources.own(resource),
    async close() {
      await resources.closeAll();
      await telemetry.shutdown();
    },
  };
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
