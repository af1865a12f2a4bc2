// Starts the real moderation service for a test file, on the real
// PostgreSQL, Redis and Kafka, with the services that apply its events: auth
// (suspensions end sessions and refuse sign-in) and, for the whole scenario,
// post and feed (a suspended user's posts leave feeds). One events topic per
// suite, shared by all of them; one admin from AUTH_BOOTSTRAP_ADMINS, and a
// moderator the admin made.
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { RoleService } from "@aviary/gen/aviary/auth/v1/roles_pb";
import { ModerationService } from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import { Role } from "@aviary/runtime/auth/roles";
import { eventually, infra, uniqueName, withClient } from "../../runtime/test-support/infra.ts";
import { freshDatabase } from "../../runtime/test-support/database.ts";
import { as, password, startTestAuth, uniqueEmail, uniqueIp, type TestAuth } from "../../auth/test/harness.ts";
import { startTestFeed, type TestFeed } from "../../feed/test/harness.ts";
import { startTestUser, type Account, type TestUser } from "../../user/test/harness.ts";
import type { AuthAdapters } from "../../auth/src/index.ts";
import { moderationConfigFromEnv, startModerationService, type RunningModerationService } from "../src/index.ts";

export { rejection } from "../../auth/test/harness.ts";
export { violatedFields } from "../../post/test/harness.ts";
export type { Account } from "../../user/test/harness.ts";

/** How long a test waits for an event to be applied (Kafka consumer start-up and rebalances included): generous, not tight. */
export const APPLY_WAIT_MS = 60_000;

export interface TestModeration {
  auth: TestAuth;
  user: TestUser;
  /** With `feed: true`: the post and feed services (and media) on the same auth and user services. */
  feed?: TestFeed;
  service: RunningModerationService;
  /** The suite's moderation events topic (the audit harness reads it too). */
  topic: string;
  client: Client<typeof ModerationService>;
  roles: Client<typeof RoleService>;
  /** The admin (AUTH_BOOTSTRAP_ADMINS) and a moderator it made, both signed in with their roles. */
  admin: Account;
  moderator: Account;
  signUp(label?: string): Promise<Account>;
  /** Signs `account` in again (a fresh token, with the roles it holds now). */
  signIn(account: Account): Promise<Account>;
  /** Runs SQL against the moderation service's database. */
  query<T extends Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Rows of the moderation tables (for "nothing was written"). */
  counts(): Promise<{ reports: number; suspensions: number; removals: number; outbox: number }>;
  until(what: string, check: () => boolean | Promise<boolean>): Promise<void>;
  close(): Promise<void>;
}

export interface TestModerationOptions {
  feed?: boolean;
  /** More settings and adapters for the auth service (limits, the TOTP clock). */
  auth?: { env?: Record<string, string>; adapters?: AuthAdapters };
}

export async function startTestModeration(env: Record<string, string> = {}, options: TestModerationOptions = {}): Promise<TestModeration> {
  const urls = await infra();
  const topic = uniqueName("moderation_events_test");
  const adminEmail = uniqueEmail("admin");
  const auth = await startTestAuth(
    { MODERATION_EVENTS_TOPIC: topic, AUTH_SUSPENSIONS_GROUP: uniqueName("auth_suspensions_test"), AUTH_BOOTSTRAP_ADMINS: adminEmail, ...options.auth?.env },
    options.auth?.adapters,
  );
  const feed = options.feed === true ? await startTestFeed({}, { postEnv: { MODERATION_EVENTS_TOPIC: topic }, deps: { auth } }) : undefined;
  const user = feed?.post.user ?? (await startTestUser({}, auth));
  const database = await freshDatabase(urls.databaseUrl, "moderation_test");
  const service = await startModerationService(
    moderationConfigFromEnv({
      MODERATION_PORT: "0",
      MODERATION_INTERNAL_PORT: "0",
      DATABASE_URL: database.url,
      REDIS_URL: urls.redisUrl,
      KAFKA_BROKERS: urls.kafkaBrokers.join(","),
      AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
      MODERATION_EVENTS_TOPIC: topic,
      MODERATION_GROUP: uniqueName("moderation_test"),
      PAGE_TOKEN_SECRET: "test-page-token-secret-0123456789",
      TRUSTED_PROXY_HOPS: "1",
      LOG_LEVEL: process.env["MODERATION_TEST_LOG"] ?? "silent",
      ...env,
    }),
  );
  const client = createClient(ModerationService, createGrpcTransport({ baseUrl: service.url }));
  const roles = createClient(RoleService, createGrpcTransport({ baseUrl: auth.service.url }));
  const query = <T extends Record<string, unknown>>(text: string, params: unknown[] = []) => withClient(database.url, async (pg) => (await pg.query(text, params)).rows as T[]);

  const signIn = async (account: Account): Promise<Account> => {
    const login = await auth.client.login({ identity: { case: "email", value: account.identity }, password, deviceName: "test" }, as({ ip: uniqueIp() }));
    const token = login.tokens?.accessToken ?? "";
    return { ...account, token, call: as({ token }) };
  };
  const signUp = (label = "user") => user.signUp({ label });

  // The first admin comes from configuration: the account exists only now, so apply it again (as a restart would).
  const adminAccount = await auth.client.register({ identity: { case: "email", value: adminEmail }, password });
  await auth.service.applyBootstrapAdmins();
  const admin = await signIn({ userId: adminAccount.userId, identity: adminEmail, token: "", call: as({}) });
  const mod = await signUp("moderator");
  await roles.grantRole({ userId: mod.userId, role: Role.MODERATOR }, admin.call);
  const moderator = await signIn(mod);

  return {
    auth,
    user,
    ...(feed === undefined ? {} : { feed }),
    service,
    topic,
    client,
    roles,
    admin,
    moderator,
    signUp,
    signIn,
    query,
    async counts() {
      const [row] = await query<{ reports: number; suspensions: number; removals: number; outbox: number }>(
        `select (select count(*) from moderation.reports)::int as reports, (select count(*) from moderation.suspensions)::int as suspensions,
                (select count(*) from moderation.removals)::int as removals, (select count(*) from moderation.outbox_events)::int as outbox`,
      );
      return row!;
    },
    until: (what, check) => eventually(what, check, APPLY_WAIT_MS),
    async close() {
      await service.close();
      await database.drop();
      if (feed !== undefined) await feed.close();
      else await user.close();
      await auth.close();
    },
  };
}
