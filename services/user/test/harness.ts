// Starts the real user service for a test file, next to a real auth service
// (which issues the tokens, publishes the JWKS the user service verifies
// against, and publishes the UserRegistered events that create profiles):
// its own database on the shared PostgreSQL, the shared Redis and Kafka, its
// own consumer group, and a typed gRPC client. One pair per file.
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import { eventually, infra, uniqueName, withClient } from "../../runtime/test-support/infra.ts";
import { freshDatabase } from "../../runtime/test-support/database.ts";
import { as, password, startTestAuth, uniqueEmail, uniqueIp, type TestAuth } from "../../auth/test/harness.ts";
import { startUserService, userConfigFromEnv, type RunningUserService } from "../src/index.ts";

export { as, rejection } from "../../auth/test/harness.ts";

export interface TestUser {
  auth: TestAuth;
  service: RunningUserService;
  client: Client<typeof UserService>;
  databaseUrl: string;
  /** Registers and logs in a new account; resolves once its profile exists. */
  signUp(options?: { label?: string; phone?: string }): Promise<Account>;
  /** Runs SQL against the user service's database. */
  query<T extends Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export interface Account {
  userId: string;
  token: string;
  /** The email or phone number it signed in with (to sign in again, e.g. as another device). */
  identity: string;
  /** Call options carrying the account's access token. */
  call: { headers: Record<string, string> };
}

/** Where nothing listens: without a media service, avatar checks fail as UNAVAILABLE rather than reach a stray local one. */
export const NO_MEDIA_URL = "http://127.0.0.1:9";

/**
 * `issuer`: an auth service the caller started and will stop (the edge test
 * shares one between services); without it the harness starts its own.
 * `media`: a media service (e.g. startTestMedia's, verifying tokens of the
 * same issuer) that avatar checks go to; `env.MEDIA_URL` works too.
 */
export async function startTestUser(env: Record<string, string> = {}, issuer?: TestAuth, media?: { service: { url: string; peerUrl: string } }): Promise<TestUser> {
  const urls = await infra();
  const auth = issuer ?? (await startTestAuth());
  const database = await freshDatabase(urls.databaseUrl, "user_test");
  const config = userConfigFromEnv({
    USER_PORT: "0",
    USER_INTERNAL_PORT: "0",
    DATABASE_URL: database.url,
    REDIS_URL: urls.redisUrl,
    KAFKA_BROKERS: urls.kafkaBrokers.join(","),
    AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
    // Each suite its own group: a shared one would split the topic's partitions between suites.
    USER_PROFILES_GROUP: uniqueName("user_profiles_test"),
    TRUSTED_PROXY_HOPS: "1",
    PAGE_TOKEN_SECRET: "test-page-token-secret-0123456789",
    LOG_LEVEL: "silent",
    MEDIA_URL: media?.service.peerUrl ?? NO_MEDIA_URL,
    ...env,
  });
  const service = await startUserService(config);
  const client = createClient(UserService, createGrpcTransport({ baseUrl: service.url }));
  const query = <T extends Record<string, unknown>>(text: string, params: unknown[] = []) =>
    withClient(database.url, async (pg) => (await pg.query(text, params)).rows as T[]);

  return {
    auth,
    service,
    client,
    databaseUrl: database.url,
    query,
    async signUp(options = {}) {
      const identity = options.phone !== undefined ? { case: "phone" as const, value: options.phone } : { case: "email" as const, value: uniqueEmail(options.label ?? "user") };
      const registered = await auth.client.register({ identity, password });
      const login = await auth.client.login({ identity, password, deviceName: "test" }, as({ ip: uniqueIp() }));
      const token = login.tokens?.accessToken ?? "";
      await eventually(
        "the profile from UserRegistered",
        async () => (await query("select 1 from users.profiles where user_id = $1", [registered.userId])).length === 1,
        60_000,
      );
      return { userId: registered.userId, token, identity: identity.value, call: as({ token }) };
    },
    async close() {
      await service.close();
      await database.drop();
      if (issuer === undefined) await auth.close();
    },
  };
}

let phoneCounter = 0;
/** A unique, valid German mobile number (region DE). */
export function uniqueGermanPhone(): string {
  phoneCounter += 1;
  const digits = String((process.pid * 1000 + phoneCounter + Date.now()) % 100_000_000).padStart(8, "0");
  return `+49151${digits}`;
}
