// Starts the real auth service for a test file: its own database on the shared
// PostgreSQL, the shared Redis and Kafka, a code sink in a temp dir, and a
// typed gRPC client. One service per file (not per test), stopped at the end.
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { ServiceAuthService } from "@aviary/gen/aviary/auth/v1/service_auth_pb";
import { BadRequestSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { eventually, infra, uniqueName, withClient } from "../../runtime/test-support/infra.ts";
import { freshDatabase } from "../../runtime/test-support/database.ts";
import { authConfigFromEnv, startAuthService, type AuthAdapters, type RunningAuthService } from "../src/index.ts";

export interface TestAuth {
  service: RunningAuthService;
  client: Client<typeof AuthService>;
  databaseUrl: string;
  /**
   * The latest code sent to `to` for `purpose`, read from the sink like a
   * user reads their inbox. Delivery is asynchronous (the sender role reads
   * the outbox through Kafka), so it waits for one to arrive; with `after`,
   * for one newer than that code.
   */
  codeFor(to: string, purpose: "verify" | "password_reset", options?: { after?: string; timeoutMs?: number }): Promise<string>;
  /** The code sink file itself (AUTH_CODE_SINK), for clients outside this process that read codes the same way. */
  codeSink: string;
  /** Runs SQL against the service's database (for assertions on what was written). */
  query<T extends Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Stops the service mid-test (an outage); close() still drops its database. */
  stopService(): Promise<void>;
  close(): Promise<void>;
}

let counter = 0;

/** A unique email per test, so tests within a file never share accounts. */
export function uniqueEmail(label = "user"): string {
  counter += 1;
  return `${label}.${process.pid}.${counter}.${Date.now().toString(36)}@example.org`;
}

/** A client IP per test (sent as x-forwarded-for; the service trusts one proxy hop), so per-IP limits don't leak between tests. */
export function uniqueIp(): string {
  counter += 1;
  return `198.51.${(process.pid + counter) % 250}.${counter % 250}`;
}

/** Call options: an access token and/or a client IP. */
export function as(options: { token?: string; ip?: string }): { headers: Record<string, string> } {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers["authorization"] = `Bearer ${options.token}`;
  if (options.ip !== undefined) headers["x-forwarded-for"] = options.ip;
  return { headers };
}

export async function startTestAuth(env: Record<string, string> = {}, adapters: AuthAdapters = {}): Promise<TestAuth> {
  const urls = { ...(await infra()) };
  if (env["REDIS_URL"] !== undefined) urls.redisUrl = env["REDIS_URL"];
  const database = await freshDatabase(urls.databaseUrl, "auth_test");
  const dir = await mkdtemp(join(tmpdir(), "aviary-auth-"));
  const sink = join(dir, "codes.jsonl");
  const config = authConfigFromEnv({
    AUTH_PORT: "0",
    AUTH_INTERNAL_PORT: "0",
    DATABASE_URL: database.url,
    REDIS_URL: urls.redisUrl,
    KAFKA_BROKERS: urls.kafkaBrokers.join(","),
    AUTH_CODE_SINK: sink,
    // Cheap hashing keeps the suite fast; the production cost is measured by the benchmark.
    AUTH_ARGON2_MEMORY_KIB: "1024",
    AUTH_ARGON2_PASSES: "1",
    TRUSTED_PROXY_HOPS: "1",
    PAGE_TOKEN_SECRET: "test-page-token-secret-0123456789",
    // Each service its own delivery topic: senders of other test files must not send (or swallow) its codes.
    AUTH_DELIVERY_TOPIC: uniqueName("auth_code_deliveries_test"),
    AUTH_SENDER_GROUP: uniqueName("auth_sender_test"),
    AUTH_DELIVERY_RETRY_INITIAL: "50ms",
    // Likewise the data-export topic, and archives (on disk unless S3 is configured) in the temp dir.
    AUTH_EXPORT_TOPIC: uniqueName("auth_data_exports_test"),
    AUTH_EXPORTER_GROUP: uniqueName("auth_exporter_test"),
    AUTH_EXPORT_DISK_DIR: join(dir, "exports"),
    LOG_LEVEL: "silent",
    ...env,
  });
  const service = await startAuthService(config, adapters);
  const client = createClient(AuthService, createGrpcTransport({ baseUrl: service.url }));
  let stopped: Promise<void> | undefined;
  const stopService = () => (stopped ??= service.close());
  return {
    service,
    client,
    databaseUrl: database.url,
    codeSink: sink,
    async codeFor(to, purpose, options = {}) {
      let code: string | undefined;
      await eventually(`a ${purpose} code for ${to}`, async () => {
        code = latestCode(await readFile(sink, "utf8").catch(() => ""), to, purpose);
        return code !== undefined && code !== options.after;
      }, options.timeoutMs ?? 30_000);
      return code!;
    },
    query: (text, params = []) => withClient(database.url, async (pg) => (await pg.query(text, params)).rows),
    stopService,
    async close() {
      await stopService();
      await database.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function latestCode(sink: string, to: string, purpose: string): string | undefined {
  const lines = sink.trim().split("\n").filter((line) => line !== "");
  for (const line of lines.reverse()) {
    const message = JSON.parse(line) as { to: string; purpose: string; code: string };
    if (message.to === to && message.purpose === purpose) return message.code;
  }
  return undefined;
}

/** A password every validation rule accepts. */
export const password = "violet-harbour-teapot-42";

/** The ConnectError a call failed with; fails the test if the call succeeded. */
export async function rejection(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("the call succeeded but was expected to fail");
}

/** The fields a rejection's BadRequest details name. */
export function violatedFields(error: ConnectError): string[] {
  return error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
}

export interface SignedInAccount {
  email: string;
  userId: string;
  token: string;
}

/** Registers an email account with `password` and signs it in, from a client IP of its own. */
export async function signedInAccount(auth: TestAuth, label: string): Promise<SignedInAccount> {
  const email = uniqueEmail(label);
  const { userId } = await auth.client.register({ identity: { case: "email", value: email }, password });
  const login = await auth.client.login({ identity: { case: "email", value: email }, password }, as({ ip: uniqueIp() }));
  return { email, userId, token: login.tokens?.accessToken ?? "" };
}

/** A service client for tests of internal RPCs: its AUTH_SERVICE_CLIENTS entry, and its tokens from a running auth service. */
export interface TestServiceClient {
  clientId: string;
  /** `client_id:scope+scope:sha256(secret)`, for the auth service's AUTH_SERVICE_CLIENTS. */
  entry: string;
  /** A fresh service token from `auth` (IssueServiceToken, from a client IP of its own). */
  token(auth: TestAuth): Promise<string>;
}

export function testServiceClient(clientId: string, scopes: readonly string[]): TestServiceClient {
  const secret = randomBytes(32).toString("hex");
  return {
    clientId,
    entry: `${clientId}:${scopes.join("+")}:${createHash("sha256").update(secret).digest("hex")}`,
    async token(auth) {
      const serviceAuth = createClient(ServiceAuthService, createGrpcTransport({ baseUrl: auth.service.url }));
      return (await serviceAuth.issueServiceToken({ clientId, clientSecret: secret }, as({ ip: uniqueIp() }))).accessToken;
    },
  };
}
