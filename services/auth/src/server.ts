// Wiring of the auth service: configuration → adapters → domain → server.
// Everything else in this folder is plain functions this file connects.
import { fileURLToPath } from "node:url";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { ServiceAuthService } from "@aviary/gen/aviary/auth/v1/service_auth_pb";
import { ConfigError, duration, int, loadConfig, port, string, type ConfigOf } from "@aviary/runtime/config";
import type { Logger } from "@aviary/runtime/log";
import { respond, startServer, type RunningServer } from "@aviary/runtime/server";
import { createTokenVerifier } from "@aviary/runtime/auth/verifier";
import { startOutboxRelay } from "@aviary/runtime/outbox/relay";
import type { Database } from "@aviary/runtime/db/database";
import type { EventBus } from "@aviary/runtime/bus/bus";
import type { Cache } from "@aviary/runtime/cache/cache";
import { createAuthHandlers } from "./handlers.ts";
import { createServiceAuthHandlers, serviceAuthPublicProcedures } from "./service-auth-handlers.ts";
import { serviceClients } from "./domain/service-clients.ts";
import { publicAuthMethods } from "./public-methods.ts";
import { loadKeyRing } from "./domain/signing-keys.ts";
import { cacheOneTimeCodes } from "./domain/codes.ts";
import { fileCodeSender, type CodeSender } from "./domain/code-sender.ts";
import { cacheAttemptLimiter } from "./domain/attempt-limits.ts";
import { cacheSessionDenylist, startDenylistSync } from "./domain/denylist.ts";
import { argon2idHashing } from "./domain/passwords.ts";
import { isSessionOver, recentlyRevokedSessionIds } from "./store/sessions.ts";
import { outboxEvents } from "./store/schema.ts";
import { busConfigSpec, cacheConfigSpec, clientFacingConfigSpec, databaseConfigSpec, observabilityConfigSpec, pageTokensFor, startServiceBase } from "@aviary/runtime/service-config";

export const migrationsFolder = fileURLToPath(new URL("./store/migrations", import.meta.url));

/** Procedures callable without an access token. */
export const publicProcedures = publicAuthMethods.map((method) => `${AuthService.typeName}/${method}`);

/** Every setting of the auth service, from the environment (see README "Configuration"). */
export const authConfigSpec = {
  host: string("AUTH_HOST", { default: "127.0.0.1" }),
  port: port("AUTH_PORT", { default: 8081 }),
  publicUrl: string("AUTH_PUBLIC_URL", { default: "http://127.0.0.1:8081" }),
  issuer: string("AUTH_ISSUER", { default: "aviary-auth" }),
  audience: string("AUTH_AUDIENCE", { default: "aviary" }),
  accessTokenTtlMs: duration("AUTH_ACCESS_TOKEN_TTL", { default: "15m", min: "5s", max: "1h" }),
  refreshTokenTtlMs: duration("AUTH_REFRESH_TOKEN_TTL", { default: "30d", min: "1h", max: "365d" }),
  keyRotationMs: duration("AUTH_KEY_ROTATION_INTERVAL", { default: "30d", min: "1h" }),
  keyPrepublishMs: duration("AUTH_KEY_PREPUBLISH", { default: "5m", min: "0s", max: "1d" }),
  codeTtlMs: duration("AUTH_CODE_TTL", { default: "10m", min: "1s", max: "1d" }),
  codeMaxAttempts: int("AUTH_CODE_MAX_ATTEMPTS", { default: 5, min: 1, max: 20 }),
  codesPerHour: int("AUTH_CODES_PER_HOUR", { default: 5, min: 1 }),
  loginFailuresPerIdentity: int("AUTH_LOGIN_FAILURES_PER_IDENTITY", { default: 5, min: 1 }),
  loginFailuresPerIp: int("AUTH_LOGIN_FAILURES_PER_IP", { default: 50, min: 1 }),
  loginFailureWindowMs: duration("AUTH_LOGIN_FAILURE_WINDOW", { default: "15m", min: "1s" }),
  passwordMemoryKiB: int("AUTH_ARGON2_MEMORY_KIB", { default: 19456, min: 1024 }),
  passwordPasses: int("AUTH_ARGON2_PASSES", { default: 2, min: 1 }),
  codeSink: string("AUTH_CODE_SINK", { default: ".dev/codes.jsonl" }),
  denylistSyncMs: duration("AUTH_DENYLIST_SYNC_INTERVAL", { default: "30s", min: "100ms" }),
  /** Services that may obtain service tokens: `client_id:scope+scope:secret_sha256_hex`, comma-separated (none by default). */
  serviceClients: serviceClients("AUTH_SERVICE_CLIENTS"),
  internalAudience: string("AUTH_INTERNAL_AUDIENCE", { default: "aviary-internal" }),
  serviceTokenTtlMs: duration("AUTH_SERVICE_TOKEN_TTL", { default: "5m", min: "5s", max: "1h" }),
  ...clientFacingConfigSpec,
  ...databaseConfigSpec,
  ...cacheConfigSpec,
  ...busConfigSpec,
  ...observabilityConfigSpec,
};

export type AuthConfig = ConfigOf<typeof authConfigSpec>;

export function authConfigFromEnv(env: NodeJS.ProcessEnv = process.env): AuthConfig {
  const config = loadConfig(authConfigSpec, env);
  // Retired signing keys stay published for one access-token lifetime, so no token may outlive that.
  if (config.serviceTokenTtlMs > config.accessTokenTtlMs) {
    throw new ConfigError([{ variable: "AUTH_SERVICE_TOKEN_TTL", problem: "must not exceed AUTH_ACCESS_TOKEN_TTL" }]);
  }
  // The edge tells the two kinds of token apart by audience alone.
  if (config.internalAudience === config.audience) {
    throw new ConfigError([{ variable: "AUTH_INTERNAL_AUDIENCE", problem: "must differ from AUTH_AUDIENCE" }]);
  }
  return config;
}

/** Adapters can be handed in (the dev launcher shares one PGlite and one bus across services). */
export interface AuthAdapters {
  database?: Database;
  cache?: Cache;
  bus?: EventBus;
  sender?: CodeSender;
  logger?: Logger;
}

export interface RunningAuthService extends RunningServer {
  readonly database: Database;
  readonly cache: Cache;
  readonly bus: EventBus;
  /** Rotates the signing key now (operators, tests). */
  rotateSigningKey(): Promise<string>;
  /** Re-publishes recent revocations to the cache denylist now (normally on a timer). */
  syncDenylist(): Promise<void>;
  /** Resolves once every committed event has been handed to the bus. */
  eventsFlushed(timeoutMs?: number): Promise<void>;
}

export async function startAuthService(config: AuthConfig, adapters: AuthAdapters = {}): Promise<RunningAuthService> {
  const base = startServiceBase("auth", config, adapters);
  const { logger, telemetry } = base;

  const database = await base.database(config, adapters.database);
  const cache = await base.cache(config, adapters.cache);
  const bus = await base.bus(config, adapters.bus);
  await database.migrate(migrationsFolder, { schema: "auth" });

  const accessTokenTtlSeconds = Math.round(config.accessTokenTtlMs / 1000);
  const keys = await loadKeyRing(database.db, {
    accessTokenTtlSeconds,
    rotationIntervalSeconds: Math.round(config.keyRotationMs / 1000),
    prepublishSeconds: Math.round(config.keyPrepublishMs / 1000),
  });
  // Every instance re-reads the ring each minute: rotations by other instances
  // are picked up, and a due rotation happens even on a long-running process.
  const reloadKeys = setInterval(() => keys.reload().catch((err: unknown) => logger.warn({ err }, "signing key reload failed")), 60_000);
  reloadKeys.unref();

  const relay = await startOutboxRelay({ database, bus, tables: { outboxEvents }, logger });
  const denylist = cacheSessionDenylist(cache, accessTokenTtlSeconds);
  const denylistSync = startDenylistSync({
    denylist,
    recentlyRevoked: (since) => recentlyRevokedSessionIds(database.db, since),
    accessTokenTtlSeconds,
    intervalMs: config.denylistSyncMs,
    onError: (err) => logger.warn({ err }, "denylist sync failed"),
  });
  const window = Math.round(config.loginFailureWindowMs / 1000);

  const handlers = createAuthHandlers({
    database,
    cache,
    keys,
    codes: cacheOneTimeCodes(cache, { ttlSeconds: Math.round(config.codeTtlMs / 1000), maxAttempts: config.codeMaxAttempts }),
    sender: adapters.sender ?? fileCodeSender(config.codeSink),
    hashing: argon2idHashing({ memoryKiB: config.passwordMemoryKiB, passes: config.passwordPasses }),
    denylist,
    pageTokens: pageTokensFor(AuthService.typeName, config, logger)("ListSessions"),
    limits: {
      loginPerIdentity: cacheAttemptLimiter(cache, "login-identity", { limit: config.loginFailuresPerIdentity, windowSeconds: window }),
      loginPerIp: cacheAttemptLimiter(cache, "login-ip", { limit: config.loginFailuresPerIp, windowSeconds: window }),
      codesPerIdentity: cacheAttemptLimiter(cache, "codes", { limit: config.codesPerHour, windowSeconds: 3600 }),
    },
    settings: {
      issuer: config.issuer,
      audience: config.audience,
      publicUrl: config.publicUrl.replace(/\/+$/, ""),
      accessTokenTtlSeconds,
      refreshTokenTtlSeconds: Math.round(config.refreshTokenTtlMs / 1000),
    },
  });

  const serviceAuthHandlers = createServiceAuthHandlers({
    keys,
    clients: config.serviceClients,
    failures: cacheAttemptLimiter(cache, "service-client", { limit: config.loginFailuresPerIdentity, windowSeconds: window }),
    settings: { issuer: config.issuer, audience: config.internalAudience, ttlSeconds: Math.round(config.serviceTokenTtlMs / 1000) },
  });

  const server = await startServer({
    name: "auth",
    host: config.host,
    port: config.port,
    logger,
    telemetry,
    trustedProxyHops: config.trustedProxyHops,
    routes: (router) => {
      router.service(AuthService, handlers);
      router.service(ServiceAuthService, serviceAuthHandlers);
    },
    // The key set as a plain document too, for verifiers that fetch a JWKS URL
    // (other services, Envoy's jwt_authn) without going through the edge.
    httpRoutes: {
      "/.well-known/jwks.json": (_req, res) =>
        respond(res, 200, { "content-type": "application/json", "cache-control": "public, max-age=300" }, JSON.stringify(keys.jwks())),
    },
    readiness: [
      { name: "database", check: () => database.ping() },
      { name: "cache", check: () => cache.ping() },
      { name: "events", check: () => bus.ping() },
    ],
    auth: {
      // The auth service verifies against its own key ring, without HTTP.
      verifier: createTokenVerifier({ issuer: config.issuer, audience: config.audience, jwks: () => keys.jwks(), typ: "at+jwt" }),
      publicProcedures: [...publicProcedures, ...serviceAuthPublicProcedures],
      // Other services trust the cache denylist alone; this service owns the
      // sessions table, so a denylist miss (or a cache outage, or a flushed
      // cache) is confirmed there: revocation holds here without Redis.
      isSessionRevoked: async (sessionId) => {
        const listed = await denylist.has(sessionId).catch(() => false);
        return listed || (await isSessionOver(database.db, sessionId));
      },
    },
  });
  logger.info({ url: server.url, database: database.kind, cache: cache.kind, bus: bus.kind }, "auth service listening");

  return {
    ...server,
    database,
    cache,
    bus,
    rotateSigningKey: () => keys.rotate(),
    eventsFlushed: (timeoutMs) => relay.flushed(timeoutMs),
    syncDenylist: () => denylistSync.syncNow(),
    async close() {
      clearInterval(reloadKeys);
      denylistSync.stop();
      await server.close();
      await relay.stop();
      await base.close();
    },
  };
}
