// Wiring of the auth service: configuration → adapters → domain → server.
// Everything else in this folder is plain functions this file connects.
import { fileURLToPath } from "node:url";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { ServiceAuthService } from "@aviary/gen/aviary/auth/v1/service_auth_pb";
import { RoleService } from "@aviary/gen/aviary/auth/v1/roles_pb";
import { DataExportService } from "@aviary/gen/aviary/auth/v1/data_export_pb";
import { randomBytes } from "node:crypto";
import { ConfigError, duration, int, list, loadConfig, oneOf, optionalString, port, string, type ConfigOf, type ConfigProblem } from "@aviary/runtime/config";
import type { Logger } from "@aviary/runtime/log";
import { respond, startServer, type RunningServer } from "@aviary/runtime/server";
import { createTokenVerifier } from "@aviary/runtime/auth/verifier";
import { startOutboxRelay } from "@aviary/runtime/outbox/relay";
import type { Database } from "@aviary/runtime/db/database";
import type { EventBus, Subscription } from "@aviary/runtime/bus/bus";
import type { Cache } from "@aviary/runtime/cache/cache";
import { createAuthHandlers } from "./handlers.ts";
import { createServiceAuthHandlers, serviceAuthPublicProcedures } from "./service-auth-handlers.ts";
import { serviceClients } from "./domain/service-clients.ts";
import { publicAuthMethods } from "./public-methods.ts";
import { loadKeyRing } from "./domain/signing-keys.ts";
import { KEK_VARIABLE, parseKeyEncryptionKeys } from "./domain/key-encryption.ts";
import { cacheOneTimeCodes } from "./domain/codes.ts";
import type { CodeSender } from "./domain/code-sender.ts";
import { aesGcmSealer, parseSecretsKey } from "./domain/sealing.ts";
import { cacheLoginChallenges } from "./domain/challenges.ts";
import { codeDeliveriesTopic } from "./events/code-delivery.ts";
import { codeSenderProblems, codeSendersConfigSpec, openCodeSenders } from "./delivery/senders.ts";
import { senderGroup, startCodeSenderWorker } from "./delivery/worker.ts";
import { cacheAttemptLimiter } from "./domain/attempt-limits.ts";
import { cacheSessionDenylist, startDenylistSync } from "./domain/denylist.ts";
import { applyBootstrapAdmins, createRoleHandlers } from "./roles.ts";
import { consumeSuspensions, moderationEventsTopic, suspensionsConsumer } from "./events/suspensions.ts";
import { startDeletionScheduler } from "./domain/deletion-scheduler.ts";
import { argon2idHashing } from "./domain/passwords.ts";
import { isSessionOver, recentlyRevokedSessionIds } from "./store/sessions.ts";
import { outboxEvents } from "./store/schema.ts";
import { dataExportConfigSpec, startDataExports, type DataExportAdapters } from "./export/wiring.ts";
import { s3ConfigProblems } from "@aviary/runtime/blob/open";
import { busConfigSpec, cacheConfigSpec, clientFacingConfigSpec, databaseConfigSpec, internalListener, internalPortConfigSpec, observabilityConfigSpec, pageTokensFor, startServiceBase } from "@aviary/runtime/service-config";

export const migrationsFolder = fileURLToPath(new URL("./store/migrations", import.meta.url));

/** Procedures callable without an access token. */
export const publicProcedures = publicAuthMethods.map((method) => `${AuthService.typeName}/${method}`);

export const authRoles = ["all", "api", "sender", "exporter"] as const;

/** Every setting of the auth service, from the environment (see README "Configuration"). */
export const authConfigSpec = {
  host: string("AUTH_HOST", { default: "127.0.0.1" }),
  port: port("AUTH_PORT", { default: 8081 }),
  ...internalPortConfigSpec("AUTH"),
  publicUrl: string("AUTH_PUBLIC_URL", { default: "http://127.0.0.1:8081" }),
  issuer: string("AUTH_ISSUER", { default: "aviary-auth" }),
  audience: string("AUTH_AUDIENCE", { default: "aviary" }),
  accessTokenTtlMs: duration("AUTH_ACCESS_TOKEN_TTL", { default: "15m", min: "5s", max: "1h" }),
  refreshTokenTtlMs: duration("AUTH_REFRESH_TOKEN_TTL", { default: "30d", min: "1h", max: "365d" }),
  /** How long a spent refresh token still answers its (unused) successor instead of counting as reuse; 0 turns the window off. */
  refreshReuseWindowMs: duration("AUTH_REFRESH_REUSE_WINDOW", { default: "5s", min: "0s", max: "1m" }),
  keyRotationMs: duration("AUTH_KEY_ROTATION_INTERVAL", { default: "30d", min: "1h" }),
  keyPrepublishMs: duration("AUTH_KEY_PREPUBLISH", { default: "5m", min: "0s", max: "1d" }),
  codeTtlMs: duration("AUTH_CODE_TTL", { default: "10m", min: "1s", max: "1d" }),
  codeMaxAttempts: int("AUTH_CODE_MAX_ATTEMPTS", { default: 5, min: 1, max: 20 }),
  codesPerHour: int("AUTH_CODES_PER_HOUR", { default: 5, min: 1 }),
  /** Failed logins per (identity, client IP) per window before that address waits for that account. */
  loginFailuresPerIdentityIp: int("AUTH_LOGIN_FAILURES_PER_IDENTITY_IP", { default: 5, min: 1 }),
  /** Failed logins per identity from all addresses together per window: the ceiling against distributed guessing. */
  loginFailuresPerIdentity: int("AUTH_LOGIN_FAILURES_PER_IDENTITY", { default: 100, min: 1 }),
  loginFailuresPerIp: int("AUTH_LOGIN_FAILURES_PER_IP", { default: 50, min: 1 }),
  loginFailureWindowMs: duration("AUTH_LOGIN_FAILURE_WINDOW", { default: "15m", min: "1s" }),
  passwordMemoryKiB: int("AUTH_ARGON2_MEMORY_KIB", { default: 19456, min: 1024 }),
  passwordPasses: int("AUTH_ARGON2_PASSES", { default: 2, min: 1 }),
  /** all: everything in one process; api: the RPCs; sender: delivers codes from the outbox; exporter: builds and sweeps data exports (health endpoints always served). */
  role: oneOf("AUTH_ROLE", authRoles, { default: "all" }),
  /** 32 bytes, base64 or hex: seals TOTP secrets at rest and codes on their way to the sender role (random per process when unset, role all only). */
  secretsKey: optionalString("AUTH_SECRETS_KEY"),
  /**
   * id:key[,id:key…] (32-byte keys, base64 or hex): encrypt the private signing keys at rest; the first wraps,
   * all unwrap (KEK rotation). Unset: a public development KEK, with a warning.
   */
  keyEncryptionKeys: optionalString("AUTH_KEY_ENCRYPTION_KEYS"),
  /** Where a channel without a configured provider writes its codes (make dev). */
  codeSink: string("AUTH_CODE_SINK", { default: ".dev/codes.jsonl" }),
  /** The code deliveries' topic: its own per deployment (every sender reading it sends what it reads). */
  deliveryTopic: string("AUTH_DELIVERY_TOPIC", { default: codeDeliveriesTopic }),
  senderGroup: string("AUTH_SENDER_GROUP", { default: senderGroup }),
  deliveryMaxAttempts: int("AUTH_DELIVERY_MAX_ATTEMPTS", { default: 5, min: 1, max: 20 }),
  deliveryRetryInitialMs: duration("AUTH_DELIVERY_RETRY_INITIAL", { default: "1s", min: "1ms", max: "1m" }),
  deliveryRetryMaxMs: duration("AUTH_DELIVERY_RETRY_MAX", { default: "30s", min: "1ms", max: "5m" }),
  senderConcurrency: int("AUTH_SENDER_CONCURRENCY", { default: 6, min: 1, max: 64 }),
  ...codeSendersConfigSpec,
  totpIssuer: string("AUTH_TOTP_ISSUER", { default: "Aviary" }),
  challengeTtlMs: duration("AUTH_2FA_CHALLENGE_TTL", { default: "5m", min: "10s", max: "30m" }),
  challengeMaxAttempts: int("AUTH_2FA_ATTEMPTS_PER_CHALLENGE", { default: 5, min: 1, max: 20 }),
  secondFactorFailuresPerAccount: int("AUTH_2FA_FAILURES_PER_ACCOUNT", { default: 10, min: 1 }),
  denylistSyncMs: duration("AUTH_DENYLIST_SYNC_INTERVAL", { default: "30s", min: "100ms" }),
  /** Emails of the accounts made admins at startup (comma-separated; idempotent): the first admins, who grant every other role. */
  bootstrapAdmins: list("AUTH_BOOTSTRAP_ADMINS", { default: [] }),
  /** The moderation service's topic: suspensions end sessions and refuse sign-in here. */
  moderationTopic: string("MODERATION_EVENTS_TOPIC", { default: moderationEventsTopic }),
  suspensionsGroup: string("AUTH_SUSPENSIONS_GROUP", { default: suspensionsConsumer }),
  /** How long a scheduled account deletion can be cancelled before everything is purged. */
  deletionGraceMs: duration("AUTH_DELETION_GRACE", { default: "7d", min: "0s", max: "90d" }),
  /** How often due deletions are looked for (the due times are rows: nothing is lost between polls or restarts). */
  deletionPollMs: duration("AUTH_DELETION_POLL_INTERVAL", { default: "30s", min: "100ms", max: "1h" }),
  /** Services that may obtain service tokens: `client_id:scope+scope:secret_sha256_hex`, comma-separated (none by default). */
  serviceClients: serviceClients("AUTH_SERVICE_CLIENTS"),
  internalAudience: string("AUTH_INTERNAL_AUDIENCE", { default: "aviary-internal" }),
  serviceTokenTtlMs: duration("AUTH_SERVICE_TOKEN_TTL", { default: "5m", min: "5s", max: "1h" }),
  ...dataExportConfigSpec,
  ...clientFacingConfigSpec,
  ...databaseConfigSpec,
  ...cacheConfigSpec,
  ...busConfigSpec,
  ...observabilityConfigSpec,
};

export type AuthConfig = ConfigOf<typeof authConfigSpec>;

export function authConfigFromEnv(env: NodeJS.ProcessEnv = process.env): AuthConfig {
  const config = loadConfig(authConfigSpec, env);
  const problems: ConfigProblem[] = [...codeSenderProblems(config), ...s3ConfigProblems(config)];
  if (config.secretsKey !== undefined && parseSecretsKey(config.secretsKey) === undefined) {
    problems.push({ variable: "AUTH_SECRETS_KEY", problem: "must be 32 bytes, base64 or hex (e.g. openssl rand -base64 32)" });
  }
  // Split roles seal in one process and open in another: they need the same key.
  // (The exporter role seals nothing.)
  if (config.secretsKey === undefined && (config.role === "api" || config.role === "sender")) {
    problems.push({ variable: "AUTH_SECRETS_KEY", problem: `required for the ${config.role} role (the api and sender roles must share it)` });
  }
  const keyEncryption = parseKeyEncryptionKeys(config.keyEncryptionKeys);
  if (typeof keyEncryption === "string") problems.push({ variable: KEK_VARIABLE, problem: keyEncryption });
  if (problems.length > 0) throw new ConfigError(problems);
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
export interface AuthAdapters extends DataExportAdapters {
  database?: Database;
  cache?: Cache;
  bus?: EventBus;
  /** Delivers codes in the sender role; by default the configured providers (delivery/senders.ts). */
  sender?: CodeSender;
  /** Milliseconds since the epoch for TOTP steps (tests step it instead of waiting 30 s). */
  totpClock?: () => number;
  /** The handlers' clock (token times, the refresh reuse window); tests move it instead of waiting. */
  clock?: () => Date;
  /** The account-deletion clock (schedules and due times); tests move it past the grace period instead of waiting. */
  deletionClock?: () => Date;
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
  /** Deletes expired data-export archives now (normally on a timer, in the exporter role); answers how many. */
  sweepDataExports(): Promise<number>;
  /** Applies AUTH_BOOTSTRAP_ADMINS again now (it runs at startup); answers the user ids made admin. */
  applyBootstrapAdmins(): Promise<string[]>;
  /** Purges the deletions due now by the deletion clock (normally on a timer); answers how many. */
  purgeDueDeletions(): Promise<number>;
}

export async function startAuthService(config: AuthConfig, adapters: AuthAdapters = {}): Promise<RunningAuthService> {
  const base = startServiceBase("auth", config, adapters);
  const { logger, telemetry } = base;

  const database = await base.database(config, adapters.database);
  const cache = await base.cache(config, adapters.cache);
  const bus = await base.bus(config, adapters.bus);
  await database.migrate(migrationsFolder, { schema: "auth" });

  const accessTokenTtlSeconds = Math.round(config.accessTokenTtlMs / 1000);
  const keyEncryption = parseKeyEncryptionKeys(config.keyEncryptionKeys);
  if (typeof keyEncryption === "string") throw new ConfigError([{ variable: KEK_VARIABLE, problem: keyEncryption }]);
  if (keyEncryption.development) {
    logger.warn(`${KEK_VARIABLE} is not set: private signing keys are encrypted under the public development key, which protects nothing. Set it in every real deployment (k1:$(openssl rand -base64 32)).`);
  }
  const keys = await loadKeyRing(database.db, {
    keyEncryption,
    accessTokenTtlSeconds,
    rotationIntervalSeconds: Math.round(config.keyRotationMs / 1000),
    prepublishSeconds: Math.round(config.keyPrepublishMs / 1000),
  });
  // Every instance re-reads the ring each minute: rotations by other instances
  // are picked up, and a due rotation happens even on a long-running process.
  const reloadKeys = setInterval(() => keys.reload().catch((err: unknown) => logger.warn({ err }, "signing key reload failed")), 60_000);
  reloadKeys.unref();

  // Every role relays the outbox (one instance at a time, under the relay's lock).
  const relay = await startOutboxRelay({ database, bus, tables: { outboxEvents }, logger, telemetry });
  const serves = config.role === "all" || config.role === "api";
  const sends = config.role === "all" || config.role === "sender";
  const secretsKey = config.secretsKey === undefined ? undefined : parseSecretsKey(config.secretsKey);
  if (secretsKey === undefined) {
    logger.warn("AUTH_SECRETS_KEY is not set: using a random one, so authenticator enrolments and queued codes do not survive a restart");
  }
  const sealer = aesGcmSealer(secretsKey ?? randomBytes(32));
  const subscriptions: Subscription[] = [];
  if (sends) {
    const opened = adapters.sender === undefined ? openCodeSenders(config) : undefined;
    if (opened !== undefined) {
      base.own(opened);
      for (const [channel, provider] of Object.entries(opened.providers)) {
        if (provider === "file") logger.warn({ channel, sink: config.codeSink }, "no provider configured for this channel: its codes are written to the code sink file");
      }
    }
    subscriptions.push(
      await startCodeSenderWorker({
        database,
        bus,
        topic: config.deliveryTopic,
        groupId: config.senderGroup,
        sender: adapters.sender ?? opened!.sender,
        sealer,
        retry: { maxAttempts: config.deliveryMaxAttempts, initialBackoffMs: config.deliveryRetryInitialMs, maxBackoffMs: config.deliveryRetryMaxMs },
        meter: telemetry.meter,
        logger,
        partitionsConcurrently: config.senderConcurrency,
      }),
    );
  }
  const denylist = cacheSessionDenylist(cache, accessTokenTtlSeconds);
  const denylistSync = startDenylistSync({
    denylist,
    recentlyRevoked: (since) => recentlyRevokedSessionIds(database.db, since),
    accessTokenTtlSeconds,
    intervalMs: config.denylistSyncMs,
    onError: (err) => logger.warn({ err }, "denylist sync failed"),
  });
  const window = Math.round(config.loginFailureWindowMs / 1000);
  const bootstrapAdmins = () => applyBootstrapAdmins(database, config.bootstrapAdmins, logger);
  await bootstrapAdmins();
  if (serves) {
    subscriptions.push(await consumeSuspensions({ database, bus, denylist, topic: config.moderationTopic, groupId: config.suspensionsGroup }));
  }
  const deletionClock = adapters.deletionClock ?? (() => new Date());
  const deletionScheduler = startDeletionScheduler({
    database,
    denylist,
    clock: deletionClock,
    intervalMs: config.deletionPollMs,
    onError: (err) => logger.warn({ err }, "account deletion pass failed"),
  });

  const handlers = createAuthHandlers({
    database,
    cache,
    keys,
    codes: cacheOneTimeCodes(cache, { ttlSeconds: Math.round(config.codeTtlMs / 1000), maxAttempts: config.codeMaxAttempts }),
    deliveries: { topic: config.deliveryTopic, sealer },
    hashing: argon2idHashing({ memoryKiB: config.passwordMemoryKiB, passes: config.passwordPasses }),
    denylist,
    pageTokens: pageTokensFor(AuthService.typeName, config, logger)("ListSessions"),
    limits: {
      loginPerIdentityIp: cacheAttemptLimiter(cache, "login-identity-ip", { limit: config.loginFailuresPerIdentityIp, windowSeconds: window }),
      loginPerIdentity: cacheAttemptLimiter(cache, "login-identity", { limit: config.loginFailuresPerIdentity, windowSeconds: window }),
      loginPerIp: cacheAttemptLimiter(cache, "login-ip", { limit: config.loginFailuresPerIp, windowSeconds: window }),
      codesPerIdentity: cacheAttemptLimiter(cache, "codes", { limit: config.codesPerHour, windowSeconds: 3600 }),
    },
    twoFactor: {
      sealer,
      challenges: cacheLoginChallenges(cache, { ttlSeconds: Math.round(config.challengeTtlMs / 1000), maxAttempts: config.challengeMaxAttempts }),
      failures: cacheAttemptLimiter(cache, "second-factor", { limit: config.secondFactorFailuresPerAccount, windowSeconds: window }),
      totpClock: adapters.totpClock ?? Date.now,
      issuer: config.totpIssuer,
    },
    deletion: { graceMs: config.deletionGraceMs, clock: deletionClock },
    refreshReuse: { windowMs: config.refreshReuseWindowMs, sealer },
    ...(adapters.clock === undefined ? {} : { now: adapters.clock }),
    settings: {
      issuer: config.issuer,
      audience: config.audience,
      publicUrl: config.publicUrl.replace(/\/+$/, ""),
      accessTokenTtlSeconds,
      refreshTokenTtlSeconds: Math.round(config.refreshTokenTtlMs / 1000),
    },
  });

  const serviceTokenSettings = { issuer: config.issuer, audience: config.internalAudience, ttlSeconds: Math.round(config.serviceTokenTtlMs / 1000) };
  const serviceAuthHandlers = createServiceAuthHandlers({
    keys,
    clients: config.serviceClients,
    failures: cacheAttemptLimiter(cache, "service-client", { limit: config.loginFailuresPerIdentityIp, windowSeconds: window }),
    settings: serviceTokenSettings,
  });
  const dataExports = await startDataExports({
    config,
    roles: { serves, exports: config.role === "all" || config.role === "exporter" },
    database,
    bus,
    keys,
    tokens: serviceTokenSettings,
    pageTokens: pageTokensFor(DataExportService.typeName, config, logger)("ListDataExports"),
    logger,
    adapters,
  });

  const server = await startServer({
    name: "auth",
    host: config.host,
    port: config.port,
    ...internalListener(config),
    logger,
    telemetry,
    trustedProxyHops: config.trustedProxyHops,
    routes: (router) => {
      if (!serves) return;
      router.service(AuthService, handlers);
      router.service(ServiceAuthService, serviceAuthHandlers);
      router.service(RoleService, createRoleHandlers({ database, denylist }));
      if (dataExports !== undefined) router.service(DataExportService, dataExports.handlers);
    },
    // The key set as a plain document too, for verifiers that fetch a JWKS URL
    // (other services, Envoy's jwt_authn) without going through the edge.
    httpRoutes: {
      "/.well-known/jwks.json": (_req, res) =>
        respond(res, 200, { "content-type": "application/json", "cache-control": "public, max-age=300" }, JSON.stringify(keys.jwks())),
      ...dataExports?.httpRoutes,
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
  logger.info({ url: server.url, role: config.role, database: database.kind, cache: cache.kind, bus: bus.kind }, "auth service listening");

  return {
    ...server,
    database,
    cache,
    bus,
    rotateSigningKey: () => keys.rotate(),
    eventsFlushed: (timeoutMs) => relay.flushed(timeoutMs),
    syncDenylist: () => denylistSync.syncNow(),
    applyBootstrapAdmins: bootstrapAdmins,
    purgeDueDeletions: () => deletionScheduler.purgeDue(),
    sweepDataExports: () => dataExports?.sweepNow() ?? Promise.resolve(0),
    async close() {
      clearInterval(reloadKeys);
      denylistSync.stop();
      deletionScheduler.stop();
      await server.close();
      for (const subscription of subscriptions) await subscription.stop();
      await dataExports?.close();
      await relay.stop();
      await base.close();
    },
  };
}
