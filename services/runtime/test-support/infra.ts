/**
 * Real infrastructure for integration tests. Never assumes a server runs:
 * URLs come from DATABASE_URL / REDIS_URL / KAFKA_BROKERS / S3_ENDPOINT (with
 * S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION, S3_BUCKET) when set, otherwise
 * from `deploy/local/infra.sh up` (idempotent, serialised by its own lock).
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";

const run = promisify(execFile);

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const infraScript = path.join(repoRoot, "deploy/local/infra.sh");
const defaultInfraDir = path.join(repoRoot, ".infra");

/** `infra.sh up` may download and start Kafka; give it time. */
const INFRA_UP_TIMEOUT_MS = 300_000;

/** An S3-compatible server (MinIO from infra.sh, or whatever S3_ENDPOINT names). */
export interface S3Settings {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
  /** A bucket name tests may use (and create); suites that need isolation add their own. */
  bucket: string;
}

export interface InfraUrls {
  databaseUrl: string;
  redisUrl: string;
  kafkaBrokers: string[];
  s3: S3Settings;
}

let shared: Promise<InfraUrls> | undefined;

/** The shared servers of this test run (started once per process if needed). */
export function infra(): Promise<InfraUrls> {
  shared ??= resolveInfra();
  return shared;
}

async function resolveInfra(): Promise<InfraUrls> {
  const { DATABASE_URL, REDIS_URL, KAFKA_BROKERS, S3_ENDPOINT } = process.env;
  let env: Record<string, string> = {};
  if (!DATABASE_URL || !REDIS_URL || !KAFKA_BROKERS || !S3_ENDPOINT) {
    // infra.sh leaves alone whatever the environment already points at.
    await infraSh(["up"]);
    env = await readEnvFile(process.env["AVIARY_INFRA_DIR"] ?? defaultInfraDir);
  }
  const pick = (name: string, given: string | undefined): string => {
    const value = given ?? env[name];
    if (!value) throw new Error(`${name} is neither set nor written by infra.sh`);
    return value;
  };
  return {
    databaseUrl: pick("DATABASE_URL", DATABASE_URL),
    redisUrl: pick("REDIS_URL", REDIS_URL),
    kafkaBrokers: pick("KAFKA_BROKERS", KAFKA_BROKERS).split(",").map((b) => b.trim()).filter(Boolean),
    s3: s3Settings(S3_ENDPOINT ? process.env : env),
  };
}

function s3Settings(env: Record<string, string | undefined>): S3Settings {
  const endpoint = env["S3_ENDPOINT"];
  if (!endpoint) throw new Error("S3_ENDPOINT is neither set nor written by infra.sh");
  return {
    endpoint,
    accessKey: env["S3_ACCESS_KEY"] ?? "",
    secretKey: env["S3_SECRET_KEY"] ?? "",
    region: env["S3_REGION"] || "us-east-1",
    bucket: env["S3_BUCKET"] || "aviary-test",
  };
}

export type InfraService = "postgres" | "redis" | "kafka" | "s3";

/** Stops, starts or SIGKILLs a server managed by the given state dir (default: the shared one). */
export async function controlServer(action: "stop" | "start" | "kill", service: InfraService, infraDir?: string): Promise<void> {
  await infraSh([action, service], infraDir ? { AVIARY_INFRA_DIR: infraDir } : {});
}

/**
 * A server of one's own, in an infra.sh state dir of its own, for tests that
 * stop and restart it: bouncing a shared server would break every other
 * suite running at the same time.
 */
export interface PrivateServer {
  /** DATABASE_URL, REDIS_URL, KAFKA_BROKERS or S3_ENDPOINT, as infra.sh wrote it. */
  url: string;
  /** Every variable of the private state dir's env file (S3_ACCESS_KEY, S3_SECRET_KEY, … for "s3"). */
  env: Record<string, string>;
  stop(): Promise<void>;
  start(): Promise<void>;
  kill(): Promise<void>;
  /** Stops it and deletes its state dir. */
  down(): Promise<void>;
}

const ENV_OF: Record<InfraService, string> = { postgres: "DATABASE_URL", redis: "REDIS_URL", kafka: "KAFKA_BROKERS", s3: "S3_ENDPOINT" };

export async function privateServer(service: InfraService, name: string): Promise<PrivateServer> {
  // Outside the shared state dir: `infra.sh down` there deletes it whole and
  // would orphan this server. Keyed by checkout, so clones do not collide.
  const checkout = createHash("sha256").update(repoRoot).digest("hex").slice(0, 8);
  const dir = path.join(tmpdir(), `aviary-${checkout}-${name}`);
  // Pointing the other variables at the shared servers makes `up` start only
  // `service` in this state dir.
  const urls = await infra();
  const shared: Record<string, string> = {
    DATABASE_URL: urls.databaseUrl,
    REDIS_URL: urls.redisUrl,
    KAFKA_BROKERS: urls.kafkaBrokers.join(","),
    S3_ENDPOINT: urls.s3.endpoint,
    S3_ACCESS_KEY: urls.s3.accessKey,
    S3_SECRET_KEY: urls.s3.secretKey,
    S3_REGION: urls.s3.region,
    S3_BUCKET: urls.s3.bucket,
  };
  const own: Record<string, string> = service === "s3" ? { S3_ACCESS_KEY: "", S3_SECRET_KEY: "", S3_REGION: "", S3_BUCKET: "" } : {};
  await infraSh(["up"], { ...shared, ...own, [ENV_OF[service]]: "", AVIARY_INFRA_DIR: dir });
  const env = await readEnvFile(dir);
  const url = env[ENV_OF[service]];
  if (!url) throw new Error(`infra.sh up wrote no ${ENV_OF[service]} into ${dir}/env`);
  return {
    url,
    env,
    stop: () => controlServer("stop", service, dir),
    start: () => controlServer("start", service, dir),
    kill: () => controlServer("kill", service, dir),
    down: async () => {
      await infraSh(["down"], { AVIARY_INFRA_DIR: dir });
    },
  };
}

export async function infraSh(args: string[], env: Record<string, string> = {}): Promise<string> {
  try {
    const { stdout } = await run("bash", [infraScript, ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      timeout: INFRA_UP_TIMEOUT_MS,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const stderr = typeof error === "object" && error !== null && "stderr" in error ? String(error.stderr) : "";
    throw new Error(`infra.sh ${args.join(" ")} failed: ${stderr.trim().split("\n").slice(-15).join("\n")}`, { cause: error });
  }
}

/** Parses the `export NAME=value` lines infra.sh writes (values may be shell-quoted with %q). */
export async function readEnvFile(dir: string): Promise<Record<string, string>> {
  const text = await readFile(path.join(dir, "env"), "utf8");
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = /^export ([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) env[match[1]!] = match[2]!.replace(/\\(.)/g, "$1");
  }
  return env;
}

/** A name no other test (or earlier run) uses: lower-case, a valid SQL identifier and Kafka topic. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
}

/**
 * A fresh, empty schema on the shared Postgres, dropped by `drop()`. Tests
 * open their Database with `searchPath: schema.name` to work inside it.
 */
export async function freshSchema(databaseUrl: string, prefix = "t"): Promise<{ name: string; drop(): Promise<void> }> {
  const name = uniqueName(prefix);
  await withClient(databaseUrl, (client) => client.query(`CREATE SCHEMA ${name}`));
  return {
    name,
    drop: () => withClient(databaseUrl, (client) => client.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`)).then(() => undefined),
  };
}

/** One short-lived connection, for test setup and assertions outside the code under test. */
export async function withClient<T>(databaseUrl: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** Polls `condition` until true; throws with `what` after `timeoutMs`. */
export async function eventually(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 20_000, everyMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
