// The chaos stack: PostgreSQL, Redis and Kafka of its own (an infra.sh state
// dir of its own, so stopping, killing or flushing them never touches the
// servers other suites share), a toxiproxy proxy in front of each of them for
// every service process, and the services as child processes, each role that
// consumes events a process of its own so it can be SIGKILLed alone.
import type { ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { Kafka, logLevel, type Admin } from "kafkajs";
import { startServiceProcess } from "../../services/runtime/test-support/child.ts";
import { freePort } from "../../services/runtime/test-support/envoy.ts";
import { controlServer, infraSh, readEnvFile, repoRoot, type InfraService } from "../../services/runtime/test-support/infra.ts";
import { startToxiproxy, type Toxiproxy } from "../../services/runtime/test-support/toxiproxy.ts";
import { silentSink } from "../../services/runtime/src/bus/log-sink.ts";
import { openRedisUserStreams } from "../../services/runtime/src/realtime/redis.ts";
import type { UserStreamHub } from "../../services/runtime/src/realtime/user-streams.ts";

/** Every process of the stack; the consumers are the roles that read Kafka. */
export const processNames = ["auth", "user", "post", "feed-api", "feed-consumer", "notification-api", "notification-consumer", "chat-api", "chat-delivery"] as const;
export type ProcessName = (typeof processNames)[number];

interface ProcessSpec {
  entry: string;
  ready: string;
  env: Record<string, string>;
}

export interface ServiceUrls {
  auth: string;
  user: string;
  post: string;
  feed: string;
  notification: string;
  chat: string;
}

export interface ChaosStack {
  urls: ServiceUrls;
  toxiproxy: Toxiproxy;
  /** The toxiproxy proxy names: `<process>-postgres`, `<process>-redis`, and `kafka` (one advertised address, so one proxy for all). */
  proxyName(process: ProcessName, server: "postgres" | "redis"): string;
  /** A Redis client straight to the stack's Redis (not through a proxy), for FLUSHALL. */
  redis(): Redis;
  /** The users' stream histories the chat delivery writes (straight to Redis, the services' default prefix). */
  streams: UserStreamHub;
  /** stop | start | kill (SIGKILL) of the stack's own PostgreSQL, Redis or Kafka. */
  control(action: "stop" | "start" | "kill", server: Exclude<InfraService, "s3">): Promise<void>;
  /** Events of the group's topics not yet committed by the group (read through the Kafka proxy). */
  consumerLag(group: string): Promise<number>;
  /** SIGKILLs the process and waits until it has exited. */
  kill(process: ProcessName): Promise<void>;
  /** Starts it again (after kill); resolves once it listens. */
  start(process: ProcessName): Promise<void>;
  /** Where each process's output goes. */
  logDir: string;
  close(): Promise<void>;
}

/** Access tokens outlive the longest run (a fresh cohort signs in per fault, but its checks may poll for minutes). */
const ACCESS_TOKEN_TTL = "1h";

export async function startChaosStack(options: { name: string; log?: (line: string) => void }): Promise<ChaosStack> {
  const say = options.log ?? (() => {});
  const checkout = createHash("sha256").update(repoRoot).digest("hex").slice(0, 8);
  const infraDir = path.join(tmpdir(), `aviary-${checkout}-${options.name}`);
  const logDir = path.join(repoRoot, ".dev", options.name);
  // One run's logs (a restarted process appends to its own).
  rmSync(logDir, { recursive: true, force: true });
  mkdirSync(logDir, { recursive: true });
  const cleanups: Array<() => Promise<unknown>> = [];
  const children = new Map<ProcessName, ChildProcess>();
  try {
    // A state dir left by an aborted run holds topics and rows of that run.
    await infraSh(["down"], { AVIARY_INFRA_DIR: infraDir });
    const toxiproxy = await startToxiproxy();
    cleanups.push(() => toxiproxy.stop());
    const kafkaProxyPort = await freePort();
    say(`starting PostgreSQL, Redis and Kafka in ${infraDir}`);
    // Empty URLs make `up` start those three here; S3 and mail are named
    // (never contacted: these processes upload nothing and send no email) so it starts neither.
    await infraSh(["up"], {
      AVIARY_INFRA_DIR: infraDir,
      DATABASE_URL: "",
      REDIS_URL: "",
      KAFKA_BROKERS: "",
      S3_ENDPOINT: "http://127.0.0.1:9",
      MAILPIT_URL: "http://127.0.0.1:9",
      AVIARY_KAFKA_ADVERTISED_PORT: String(kafkaProxyPort),
    });
    cleanups.push(() => infraSh(["down"], { AVIARY_INFRA_DIR: infraDir }));
    const env = await readEnvFile(infraDir);
    const database = new URL(env["DATABASE_URL"]!);
    const redisUrl = new URL(env["REDIS_URL"]!);
    await toxiproxy.createProxy("kafka", env["KAFKA_BROKERS"]!, kafkaProxyPort);

    const ports = Object.fromEntries(await Promise.all(processNames.map(async (name) => [name, await freePort()] as const))) as Record<ProcessName, number>;
    const url = (name: ProcessName) => `http://127.0.0.1:${ports[name]}`;
    const urls: ServiceUrls = { auth: url("auth"), user: url("user"), post: url("post"), feed: url("feed-api"), notification: url("notification-api"), chat: url("chat-api") };
    // Services call each other on their internal grpc-js listeners, as deployed (fixed ports: a restarted process keeps them).
    const internal = { auth: await freePort(), user: await freePort(), post: await freePort() };
    const peers = { auth: `grpc://127.0.0.1:${internal.auth}`, user: `grpc://127.0.0.1:${internal.user}`, post: `grpc://127.0.0.1:${internal.post}` };
    const proxyName = (name: ProcessName, server: "postgres" | "redis") => `${name}-${server}`;
    const connections: Record<ProcessName, Record<string, string>> = {} as Record<ProcessName, Record<string, string>>;
    for (const name of processNames) {
      const pgProxy = await toxiproxy.createProxy(proxyName(name, "postgres"), database.host);
      const redisProxy = await toxiproxy.createProxy(proxyName(name, "redis"), redisUrl.host);
      const viaProxy = new URL(database);
      viaProxy.host = pgProxy.listen;
      connections[name] = { DATABASE_URL: viaProxy.toString(), REDIS_URL: `redis://${redisProxy.listen}`, KAFKA_BROKERS: `127.0.0.1:${kafkaProxyPort}` };
    }

    const notificationSecret = randomBytes(32).toString("base64url");
    const common = {
      AUTH_JWKS_URL: `${urls.auth}/.well-known/jwks.json`,
      PAGE_TOKEN_SECRET: "chaos-page-token-secret-0123456789",
      TRUSTED_PROXY_HOPS: "1",
      USER_URL: peers.user,
      // Nothing here attaches media; a closed port makes any call to it fail loudly.
      MEDIA_URL: "http://127.0.0.1:9",
    };
    const specs: Record<ProcessName, ProcessSpec> = {
      auth: {
        entry: "services/auth/src/main.ts",
        ready: "auth service listening",
        env: {
          AUTH_PORT: String(ports.auth),
          AUTH_INTERNAL_PORT: String(internal.auth),
          AUTH_CODE_SINK: path.join(logDir, "codes.jsonl"),
          AUTH_ARGON2_MEMORY_KIB: "1024",
          AUTH_ARGON2_PASSES: "1",
          AUTH_ACCESS_TOKEN_TTL: ACCESS_TOKEN_TTL,
          AUTH_SERVICE_CLIENTS: `notification:user.devices.read+user.devices.write+user.profiles.read:${createHash("sha256").update(notificationSecret).digest("hex")}`,
          PAGE_TOKEN_SECRET: common.PAGE_TOKEN_SECRET,
          TRUSTED_PROXY_HOPS: "1",
        },
      },
      user: { entry: "services/user/src/main.ts", ready: "user service listening", env: { ...common, USER_PORT: String(ports.user), USER_INTERNAL_PORT: String(internal.user) } },
      post: { entry: "services/post/src/main.ts", ready: "post service listening", env: { ...common, POST_PORT: String(ports.post), POST_INTERNAL_PORT: String(internal.post) } },
      "feed-api": { entry: "services/feed/src/main.ts", ready: "feed service listening", env: { ...common, FEED_PORT: String(ports["feed-api"]), FEED_ROLE: "api", POST_URL: peers.post } },
      "feed-consumer": { entry: "services/feed/src/main.ts", ready: "feed service listening", env: { ...common, FEED_PORT: String(ports["feed-consumer"]), FEED_ROLE: "consumer", POST_URL: peers.post } },
      "notification-api": {
        entry: "services/notification/src/main.ts",
        ready: "notification service listening",
        env: { ...common, NOTIFICATION_PORT: String(ports["notification-api"]), NOTIFICATION_ROLE: "api", AUTH_URL: peers.auth, NOTIFICATION_CLIENT_SECRET: notificationSecret },
      },
      "notification-consumer": {
        entry: "services/notification/src/main.ts",
        ready: "notification service listening",
        env: { ...common, NOTIFICATION_PORT: String(ports["notification-consumer"]), NOTIFICATION_ROLE: "consumer", AUTH_URL: peers.auth, NOTIFICATION_CLIENT_SECRET: notificationSecret },
      },
      "chat-api": { entry: "services/chat/src/main.ts", ready: "chat service listening", env: { ...common, CHAT_PORT: String(ports["chat-api"]), CHAT_ROLE: "api" } },
      "chat-delivery": { entry: "services/chat/src/main.ts", ready: "chat service listening", env: { ...common, CHAT_PORT: String(ports["chat-delivery"]), CHAT_ROLE: "delivery" } },
    };

    const start = async (name: ProcessName) => {
      const spec = specs[name];
      const child = await startServiceProcess({
        entry: spec.entry,
        ready: spec.ready,
        env: { ...spec.env, ...connections[name] },
        logFile: path.join(logDir, `${name}.log`),
        timeoutMs: 120_000,
      });
      children.set(name, child);
    };
    const kill = async (name: ProcessName) => {
      const child = children.get(name);
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    };
    cleanups.push(async () => {
      for (const name of processNames) await kill(name);
    });
    /**
     * Starts these at once and waits for every one before throwing the first
     * failure: with Promise.all, a process still starting when another failed
     * joined `children` after the cleanup had run, and lived on (a fresh-clone
     * CI run hung on it after the notification service's EADDRINUSE).
     */
    const startAll = async (names: readonly ProcessName[]) => {
      const failed = (await Promise.allSettled(names.map(start))).find((result): result is PromiseRejectedResult => result.status === "rejected");
      if (failed !== undefined) throw failed.reason;
    };
    say("starting the services");
    // The API roles migrate their schemas; a consumer of the same service starts after them.
    await start("auth");
    await startAll(["user", "post"]);
    await startAll(["feed-api", "notification-api", "chat-api"]);
    await startAll(["feed-consumer", "notification-consumer", "chat-delivery"]);
    say("stack up");

    const redisClients: Redis[] = [];
    cleanups.push(async () => {
      for (const client of redisClients) client.disconnect();
    });
    const streams = openRedisUserStreams({ url: redisUrl.toString(), logger: silentSink });
    cleanups.push(() => streams.close());
    let admin: Admin | undefined;
    cleanups.push(async () => admin?.disconnect());
    const consumerLag = async (group: string): Promise<number> => {
      if (admin === undefined) {
        admin = new Kafka({ clientId: "chaos", brokers: [`127.0.0.1:${kafkaProxyPort}`], logLevel: logLevel.NOTHING }).admin();
        await admin.connect();
      }
      let lag = 0;
      for (const { topic, partitions } of await admin.fetchOffsets({ groupId: group })) {
        const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
        for (const { partition, offset } of partitions) lag += Math.max(0, (ends.get(partition) ?? 0) - Math.max(0, Number(offset)));
      }
      return lag;
    };
    return {
      urls,
      streams,
      toxiproxy,
      proxyName,
      logDir,
      redis() {
        const client = new Redis(redisUrl.toString(), { lazyConnect: true, maxRetriesPerRequest: 1 });
        redisClients.push(client);
        return client;
      },
      control: (action, server) => controlServer(action, server, infraDir),
      consumerLag,
      kill,
      start,
      async close() {
        for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
      },
    };
  } catch (error) {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    throw error;
  }
}
