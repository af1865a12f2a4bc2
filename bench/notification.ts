// `make bench`, notification part (runs after bench/run.ts, feed.ts and
// realtime.ts): like → the author's stream, push fan-out, and
// ListNotifications. Writes bench/results/notification.json and the section
// between the notification markers of docs/benchmarks.md.
//
// The stack, all on this machine, each in its own process so its CPU is its
// own (read from /proc): auth and user (a fresh database of the shared
// PostgreSQL), the notification service (`node services/notification/src/main.ts`,
// one process per role: consumer, push, api; a fresh database of its own, its
// own consumer groups and realtime key prefix), the local APNs of the
// notification tests and the reference HTTP/2 client as worker processes
// (bench/notification-apns.ts), and a Kafka started for the run (infra.sh in a
// private state dir): the service's fresh groups read their topics from the
// beginning, and the thousands of events published here must not land in the
// shared topics every notification test replays. Redis is the shared one,
// every key of the run under its prefix, deleted at the end.
//
// Scenarios, in this order:
//   push     one like of a user with 1,000 iOS devices (RegisterDevice on the
//            real user service): LikeCreated → consumer → outbox →
//            NotificationCreated → the push role → BatchGetDevices (one user,
//            1,000 devices) → 1,000 HTTP/2 POSTs to the local APNs over TLS,
//            PUSH_DEVICE_CONCURRENCY (16) in flight; one warm-up burst, then
//            BENCH_NOTIF_BURSTS measured. Reference: the same number of POSTs
//            to the same server from a bare node:http2 session, same
//            concurrency, its own process.
//   like     LikeCreated events published to aviary.post.events (headers as
//            the real producers write them) at a steady rate, open loop, over
//            200 authors (one post each, so each like updates the author's
//            group of that post); latency until the NotificationsChanged event
//            arrives on the author's stream, read through the user-stream
//            port's Redis adapter (listen) on the service's prefix.
//            Reference: the same records through the same producer to a topic
//            of their own, read by a bare kafkajs consumer group. When 200/s
//            misses the goal, lower rates are tried (BENCH_NOTIF_LOWER_RATES).
//   read     ListNotifications (pages of 20 of 45 like groups, sample actors
//            hydrated through the real user service with the caller's token)
//            beside the no-op, 32 callers, the api role alone running.
//
// Diagnosis (BENCH_NOTIF_DIAGNOSE=0 turns it off): the consumer, push and api
// processes are started with --inspect-port (inert until SIGUSR1); once a
// scenario's figures are taken, V8's CPU profiler runs over one more window of
// the same work (bench/profiles.ts). Profiled figures are never the measured
// ones. When the like goal is missed, the same rate is also run with
// aviary.post.events at 6 partitions (consumer restarted): does the rate
// follow the partitions, or is the consumer's CPU the limit?
//
// `node bench/notification.ts --render` rewrites the section from the last
// results file (after the prose here changed), without measuring again.
import { createHash, generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SignJWT, importPKCS8 } from "jose";
import { Kafka, logLevel } from "kafkajs";
import { Redis } from "ioredis";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { Platform, UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import { NotificationService } from "@aviary/gen/aviary/notification/v1/notification_pb";
import { LikeCreatedSchema } from "@aviary/gen/aviary/events/v1/post_events_pb";
import { HealthService } from "@aviary/runtime/health";
import { openEventBus } from "../services/runtime/src/bus/open.ts";
import { createTopicsWithLeaders } from "../services/runtime/src/bus/kafka.ts";
import type { EventBus, EventRecord } from "../services/runtime/src/bus/bus.ts";
import { silentSink } from "../services/runtime/src/bus/log-sink.ts";
import { openRedisUserStreams } from "../services/runtime/src/realtime/redis.ts";
import { decodeEvent } from "../services/runtime/src/realtime/events.ts";
import { uniqueName, withClient } from "../services/runtime/test-support/infra.ts";
import { freshDatabase } from "../services/runtime/test-support/database.ts";
import { freePort } from "../services/runtime/test-support/envoy.ts";
import { inParallel, internalListenerEnv, internalTransport, measure, quantile, repo, type Result, round, type ServerProcess, spawnServer, teardown, waitFor } from "./support.ts";
import { startWorker, type Worker } from "./workers.ts";
import { deleteKeys, fullMeter, kafkaWarmupNote, ownKafka, perItem, privateKafkaPid, ratio, redisServerPid, serviceCommit, signUp, writeSection, type Cpu, type Meter } from "./stack.ts";
import { areaOf, attachInspector, summarizeCpuProfile, type Breakdown, type CpuProfile } from "./profiles.ts";
import type { ApnsWindow, BlastResult } from "./notification-apns.ts";

const env = process.env;
const number = (name: string, fallback: number) => (env[name] === undefined || env[name] === "" ? fallback : Number(env[name]));
const realStack = Boolean(env["DATABASE_URL"] && env["REDIS_URL"] && env["KAFKA_BROKERS"]);
const READ_SECONDS = number("BENCH_SECONDS", 5);
const LIKE_RATE = number("BENCH_NOTIF_RATE", 200);
const LIKE_SECONDS = number("BENCH_NOTIF_SECONDS", 30);
const LIKE_WARMUP_SECONDS = number("BENCH_NOTIF_WARMUP_SECONDS", 5);
/** Tried (each for half of BENCH_NOTIF_SECONDS) only when LIKE_RATE misses the goal. */
const LOWER_RATES = (env["BENCH_NOTIF_LOWER_RATES"] ?? "100,50").split(",").filter((r) => r !== "").map(Number);
const AUTHORS = number("BENCH_NOTIF_AUTHORS", 200);
const DEVICES = number("BENCH_NOTIF_DEVICES", 1_000);
const BURSTS = number("BENCH_NOTIF_BURSTS", 3);
const DIAGNOSE = env["BENCH_NOTIF_DIAGNOSE"] !== "0";
const PROFILE_SECONDS = number("BENCH_NOTIF_PROFILE_SECONDS", 10);
/** The diagnosis' partition count for aviary.post.events (the bus creates topics with 3; the consumer takes up to 6 at once). */
const MORE_PARTITIONS = 6;
/** The push role's default PUSH_DEVICE_CONCURRENCY: what the reference client keeps in flight too. */
const DEVICE_CONCURRENCY = 16;
const READ_GROUPS = 45;
const READ_ACTORS = 8;
const READ_CALLERS = 32;
const READ_ROUNDS = number("BENCH_NOTIF_READ_ROUNDS", 3);
/** How long after the last publish every event must have arrived (an overloaded consumer works off its backlog in this time). */
const DRAIN_MS = 150_000;
const GOALS = { p50Ms: 50, p99Ms: 250 };
const APNS = { teamId: "TEAM123456", keyId: "KEY1234567", topic: "app.aviary.bench" };
const CLIENT_SECRET = "notification-bench-secret-0a1b2c3d4e5f6789";
const KAFKA_STATE = "bench-notification-kafka";
const postEventsTopic = "aviary.post.events";
const NOTIFICATION_MAIN = "services/notification/src/main.ts";
const docsPath = resolve(repo, "docs/benchmarks.md");
const resultsPath = resolve(repo, "bench/results/notification.json");
const START = "<!-- notification:start -->";
const END = "<!-- notification:end -->";

/** process.hrtime (CLOCK_MONOTONIC) in ms: the clock the APNs worker stamps with too. */
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

// `--render`: rewrites the section from bench/results/notification.json (the last run's figures) after the prose here changed; run with the same BENCH_* settings as the run.
if (process.argv.includes("--render")) {
  const saved = JSON.parse(await readFile(resultsPath, "utf8")) as RunMeta & Results;
  await writeSection(docsPath, START, END, renderSection(saved, saved));
  console.log(`rewrote the notification section of docs/benchmarks.md from ${resultsPath} (${saved.at})`);
  process.exit(0);
}

if (!realStack) {
  await writeSection(docsPath, START, END, "## Notifications\n\nNot measured: needs the real stack (DATABASE_URL, REDIS_URL, KAFKA_BROKERS; `make bench` starts it).\n");
  console.log("notification bench skipped: not on the real stack");
  process.exit(0);
}

const { steps: cleanups, run: cleanup } = teardown();

const machine = { cpus: cpus().length, node: process.version, internalTransport, loadAverageAtStart: loadavg().map((l) => round(l)), commit: serviceCommit("services/notification") };
const started = performance.now();
const step = (text: string) => console.log(`[notification bench ${((performance.now() - started) / 1000).toFixed(1)} s] ${text}`);

try {
  await run();
} finally {
  await cleanup();
}

async function run(): Promise<void> {
  // --- the stack ------------------------------------------------------------
  step("starting a private Kafka");
  const kafka = await ownKafka(KAFKA_STATE, cleanups);
  const kafkaPid = privateKafkaPid(KAFKA_STATE);
  const usersDatabase = await freshDatabase(env["DATABASE_URL"]!, "bench_notif_users");
  const notificationDatabase = await freshDatabase(env["DATABASE_URL"]!, "bench_notif");
  // Dropped last, once the services using them have stopped.
  cleanups.unshift(() => usersDatabase.drop());
  cleanups.unshift(() => notificationDatabase.drop());
  const databases = [usersDatabase.name, notificationDatabase.name];
  const redisUrl = env["REDIS_URL"]!;
  const redisPid = redisServerPid(redisUrl);
  const prefix = `${uniqueName("benchnotif")}:`;
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  redis.on("error", () => undefined);
  cleanups.push(async () => {
    await deleteKeys(redis, `${prefix}*`);
    redis.disconnect();
  });
  const dir = await mkdtemp(join(tmpdir(), "aviary-notification-bench-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));

  const servers: ServerProcess[] = [];
  const workers: Worker[] = [];
  cleanups.push(async () => {
    for (const worker of workers.reverse()) {
      await worker.call("closeAll", {}, 5_000).catch(() => undefined);
      await worker.stop();
    }
    for (const server of servers.reverse()) await server.stop();
  });
  const start = async (label: string, script: string, own: Record<string, string | undefined>, nodeArgs: string[] = []) => {
    const server = await spawnServer(label, script, own, nodeArgs);
    servers.push(server);
    return server;
  };
  const stop = async (server: ServerProcess) => {
    servers.splice(servers.indexOf(server), 1);
    await server.stop(10_000);
  };
  /** A notification process whose inspector can be opened later (SIGUSR1) on a port known here. */
  const startNotification = async (label: string, own: Record<string, string | undefined>): Promise<Profiled> => {
    const port = await freePort();
    const server = await start(label, NOTIFICATION_MAIN, own, [`--inspect-port=127.0.0.1:${port}`]);
    return { server, port };
  };
  const worker = (label: string) => {
    const w = startWorker(label, "bench/notification-apns.ts");
    workers.push(w);
    return w;
  };

  step("starting noop, auth and user");
  const shared = { ...internalListenerEnv, REDIS_URL: redisUrl, KAFKA_BROKERS: kafka.url, LOG_LEVEL: "info", PAGE_TOKEN_SECRET: "bench-page-token-secret-0123456789", REALTIME_REDIS_URL: undefined };
  const noop = await start("notif-noop", "bench/noop-server.ts", {});
  const authServer = await start("notif-auth", "services/auth/src/main.ts", {
    ...shared,
    DATABASE_URL: usersDatabase.url,
    AUTH_PORT: "0",
    AUTH_CODE_SINK: resolve(repo, ".dev/bench-notif-codes.jsonl"),
    // The callers' tokens must outlive the run.
    AUTH_ACCESS_TOKEN_TTL: "1h",
    // Sign-ups are setup, not what is measured.
    AUTH_ARGON2_MEMORY_KIB: "1024",
    AUTH_ARGON2_PASSES: "1",
    AUTH_LOGIN_FAILURES_PER_IDENTITY: "1000000",
    AUTH_LOGIN_FAILURES_PER_IP: "1000000",
    AUTH_SERVICE_CLIENTS: `notification:user.devices.read+user.devices.write+user.profiles.read:${createHash("sha256").update(CLIENT_SECRET).digest("hex")}`,
  });
  const jwks = `${authServer.url}/.well-known/jwks.json`;
  const userServer = await start("notif-user", "services/user/src/main.ts", { ...shared, DATABASE_URL: usersDatabase.url, USER_PORT: "0", AUTH_JWKS_URL: jwks, MEDIA_URL: "http://127.0.0.1:9" });
  const grpc = (baseUrl: string) => createGrpcTransport({ baseUrl });
  const auth = createClient(AuthService, grpc(authServer.url));
  const users = createClient(UserService, grpc(userServer.url));
  const reference = createClient(HealthService, grpc(noop.url));

  step("starting the local APNs and the reference client (worker processes)");
  const apnsKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const apnsPrivateKey = apnsKey.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const apnsServer = worker("notif-apns-server");
  const apnsClient = worker("notif-apns-client");
  const apns = await apnsServer.call<{ url: string; ca: string }>("start", { ...APNS, publicKey: apnsKey.publicKey.export({ type: "spki", format: "pem" }).toString() });
  const caFile = join(dir, "ca.pem");
  await writeFile(caFile, apns.ca);

  step(`signing up ${2 + READ_ACTORS} accounts`);
  const labels = ["pushee", "reader", ...Array.from({ length: READ_ACTORS }, (_, i) => `actor${i}`)];
  const accounts: Account[] = await inParallel(labels, 4, (label) => signUp(auth, "notifbench", label));
  const [pushee, reader, ...actors] = accounts as [Account, Account, ...Account[]];
  await waitFor(
    "every profile (UserRegistered → user service)",
    async () => (await users.batchGetProfiles({ userIds: accounts.map((a) => a.userId) }, reader.call)).profiles.length === accounts.length,
    60_000,
  );

  step(`registering ${DEVICES} iOS devices for one user (RegisterDevice)`);
  const deviceTokens = Array.from({ length: DEVICES }, (_, i) => createHash("sha256").update(`bench-device-${i}-${prefix}`).digest("hex"));
  await inParallel(deviceTokens, 8, (token) => users.registerDevice({ platform: Platform.IOS, token }, pushee.call));

  const notificationEnv = {
    ...shared,
    DATABASE_URL: notificationDatabase.url,
    NOTIFICATION_PORT: "0",
    AUTH_JWKS_URL: jwks,
    AUTH_URL: authServer.peerUrl,
    USER_URL: userServer.peerUrl,
    NOTIFICATION_CLIENT_SECRET: CLIENT_SECRET,
    NOTIFICATION_GROUP: uniqueName("bench_notification"),
    NOTIFICATION_PUSH_GROUP: uniqueName("bench_notification_push"),
    REALTIME_REDIS_PREFIX: prefix,
  };
  step("starting the notification service: consumer and push roles");
  const consumer = await startNotification("notif-consumer", { ...notificationEnv, NOTIFICATION_ROLE: "consumer" });
  const pusher = await startNotification("notif-push", {
    ...notificationEnv,
    NOTIFICATION_ROLE: "push",
    APNS_URL: apns.url,
    APNS_KEY_ID: APNS.keyId,
    APNS_TEAM_ID: APNS.teamId,
    APNS_KEY: apnsPrivateKey,
    APNS_TOPIC: APNS.topic,
    PUSH_CA_FILE: caFile,
  });
  const bus = await openEventBus({ brokers: kafka.url.split(","), clientId: "notification-bench", logger: silentSink });
  cleanups.push(() => bus.close());
  const notificationQuery = <T extends Record<string, unknown>>(text: string, params: unknown[] = []) => withClient(notificationDatabase.url, async (pg) => (await pg.query(text, params)).rows as T[]);
  const profiles: Record<string, ProfileSummary> = {};

  // --- push fan-out -------------------------------------------------------------
  const push = await pushScenario({
    bus,
    pushee,
    liker: actors[0]!,
    apnsServer,
    apnsClient,
    apns,
    apnsPrivateKey,
    deviceTokens,
    notificationQuery,
    meter: (own) => fullMeter({ ...own, consumer: consumer.server.process.pid, user: userServer.process.pid, kafka: kafkaPid, redis: redisPid, "bench (orchestrator)": process.pid }, databases),
    push: pusher,
    profiles,
  });
  await stop(pusher.server);

  // --- the read scenario's groups (through the consumer) ------------------------
  step(`seeding ${READ_GROUPS} like groups for the reader (${READ_GROUPS * 3} LikeCreated events by ${READ_ACTORS} real accounts)`);
  const seedEvents: EventRecord[] = [];
  for (let g = 0; g < READ_GROUPS; g += 1) {
    const postId = crypto.randomUUID();
    for (let a = 0; a < 3; a += 1) seedEvents.push(likeRecord(postEventsTopic, crypto.randomUUID(), { postId, likerId: actors[(g + a) % actors.length]!.userId, postAuthorId: reader.userId }));
  }
  for (let i = 0; i < seedEvents.length; i += 50) await bus.publish(seedEvents.slice(i, i + 50));
  await waitFor(
    `the reader's ${READ_GROUPS} groups`,
    async () => Number((await notificationQuery<{ n: string }>("select count(*) as n from notification.groups where recipient_id = $1 and notification_count = 3", [reader.userId]))[0]?.n) === READ_GROUPS,
    120_000,
  );

  // --- like → the author's stream -------------------------------------------------
  const { like, consumer: lastConsumer } = await likeScenario({
    bus,
    kafkaUrl: kafka.url,
    redisUrl,
    prefix,
    meter: (own) => fullMeter({ ...own, kafka: kafkaPid, redis: redisPid, "bench (publisher + listener)": process.pid }, databases),
    databaseStats: async () => {
      const [row] = await withClient(env["DATABASE_URL"]!, async (pg) => (await pg.query("select xact_commit + xact_rollback as t, tup_inserted + tup_updated + tup_deleted as w, tup_fetched as r from pg_stat_database where datname = $1", [notificationDatabase.name])).rows as { t: string; w: string; r: string }[]);
      return { transactions: Number(row?.t ?? 0), rowsWritten: Number(row?.w ?? 0), rowsRead: Number(row?.r ?? 0) };
    },
    consumer,
    repartition: async (count) => {
      const admin = new Kafka({ clientId: "notification-bench-admin", brokers: kafka.url.split(","), logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      try {
        await admin.createPartitions({ topicPartitions: [{ topic: postEventsTopic, count }] });
      } finally {
        await admin.disconnect();
      }
      await stop(consumer.server);
      const restarted = await startNotification("notif-consumer-repartitioned", { ...notificationEnv, NOTIFICATION_ROLE: "consumer" });
      const publisher = await openEventBus({ brokers: kafka.url.split(","), clientId: "notification-bench-repartitioned", logger: silentSink });
      cleanups.push(() => publisher.close());
      return { consumer: restarted, bus: publisher };
    },
    profiles,
  });
  await stop(lastConsumer.server);

  // --- ListNotifications beside the no-op -------------------------------------------
  step("starting the notification service: api role");
  const api = await startNotification("notif-api", { ...notificationEnv, NOTIFICATION_ROLE: "api" });
  const notifications = createClient(NotificationService, grpc(api.server.url));
  const first = await notifications.listNotifications({ pageSize: 20 }, reader.call);
  const hydrated = (page: typeof first) => page.groups.length === 20 && page.groups.every((g) => g.sampleActorIds.length === 3 && g.sampleActors.length === 3);
  if (!hydrated(first) || first.nextPageToken === "") throw new Error(`read: the reader's first page is not 20 groups with 3 hydrated sample actors each (${first.groups.length} groups)`);
  const second = await notifications.listNotifications({ pageSize: 20, pageToken: first.nextPageToken }, reader.call);
  if (!hydrated(second)) throw new Error(`read: the reader's second page is not 20 hydrated groups (${second.groups.length})`);
  step("measuring ListNotifications beside the no-op");
  const readProcesses = { notification: api.server.process.pid, user: userServer.process.pid, auth: authServer.process.pid, noop: noop.process.pid, redis: redisPid, "load generator": process.pid };
  const measured = async (name: string, call: () => Promise<unknown>): Promise<ReadRow> => {
    const meter = fullMeter(readProcesses, databases);
    let cpu: Cpu | undefined;
    const result = await measure(name, READ_CALLERS, call, READ_SECONDS * 1000, (phase) => (phase === "start" ? meter.start() : (cpu = meter.stop())));
    return { ...result, throughputVsNoop: 1, p50VsNoop: 1, cpuMsPerCall: perItem(cpu!.msByProcess, result.calls, 2), othersCorePercent: cpu!.othersCorePercent, machineBusy: cpu!.machineBusy };
  };
  const listFirst = () => notifications.listNotifications({ pageSize: 20 }, reader.call);
  const rpcs: [string, () => Promise<unknown>][] = [
    ["no-op (bare connect-node, Health/Check)", () => reference.check({})],
    ["ListNotifications, first page of 20 (3 sample actors each, hydrated)", listFirst],
    ["ListNotifications, second page of 20 (page token)", () => notifications.listNotifications({ pageSize: 20, pageToken: first.nextPageToken }, reader.call)],
  ];
  // Rounds of every row in turn, each row's median round kept: drift in the (shared) machine's load then hits the no-op and the RPCs alike.
  const rounds: ReadRow[][] = rpcs.map(() => []);
  for (let pass = 1; pass <= READ_ROUNDS; pass += 1) {
    for (const [i, [name, call]] of rpcs.entries()) rounds[i]!.push(await measured(name, call));
    step(`read round ${pass} of ${READ_ROUNDS}: ${rounds.map((r) => r.at(-1)!.throughput).join(" / ")} calls/s`);
  }
  const read = rounds.map((r) => ({ ...[...r].sort((a, b) => a.throughput - b.throughput)[Math.floor(r.length / 2)]!, roundsThroughput: r.map((row) => row.throughput) }));
  const readRows = read.map((r) => ({ ...r, throughputVsNoop: round(r.throughput / read[0]!.throughput, 3), p50VsNoop: round(r.p50Ms / read[0]!.p50Ms, 2) }));
  for (const row of readRows) step(`${row.name}: ${row.throughput} calls/s, p50 ${row.p50Ms} ms (${row.throughputVsNoop} of the no-op)`);
  if (DIAGNOSE) {
    step(`profiling the api role over ${READ_SECONDS} s of ListNotifications (first page, ${READ_CALLERS} callers)`);
    profiles["api"] = await profileWindow(api, async () => void (await measure("profiled", READ_CALLERS, listFirst, READ_SECONDS * 1000, undefined, 0)));
  }

  await report({ push, like, readRows, profiles });
}

// --- push fan-out -----------------------------------------------------------------

interface Burst {
  devices: number;
  delivered: number;
  /** First POST arriving at the local APNs → last answer. */
  apnsWindowMs: number;
  pushesPerSecond: number;
  /** LikeCreated published → the first POST at the APNs. */
  publishToFirstPushMs: number;
  /** LikeCreated published → the last APNs answer. */
  publishToLastPushMs: number;
  /** LikeCreated published → every device's ledger row decided. */
  publishToLedgerMs: number;
  maxInFlight: number;
  statuses: Record<string, number>;
  /** From the publish until the ledger was complete. */
  cpuMsPerPush: Record<string, number>;
  othersCorePercent: number;
  /** The push role's main thread over the same window: running, and runnable but waiting for a CPU, % of it. */
  pushRunningPercent: number;
  pushWaitingForCpuPercent: number;
}

interface ReferenceBlast {
  devices: number;
  apnsWindowMs: number;
  pushesPerSecond: number;
  clientWallMs: number;
  maxInFlight: number;
  statuses: Record<string, number>;
  cpuMsPerPush: Record<string, number>;
  othersCorePercent: number;
}

interface PushResult {
  devices: number;
  deviceConcurrency: number;
  bursts: Burst[];
  reference: ReferenceBlast[];
  median: {
    pushesPerSecond: number;
    referencePushesPerSecond: number;
    cpuMsPerPush: number;
    referenceCpuMsPerPush: number;
    postgresCpuMsPerPush: number;
    apnsCpuMsPerPush: number;
    referenceApnsCpuMsPerPush: number;
    publishToLastPushMs: number;
    publishToFirstPushMs: number;
    pushRunningPercent: number;
    pushWaitingForCpuPercent: number;
  };
  throughputVsReference: number;
  cpuVsReference: number;
}

async function pushScenario(deps: {
  bus: EventBus;
  pushee: Account;
  liker: Account;
  apnsServer: Worker;
  apnsClient: Worker;
  apns: { url: string; ca: string };
  apnsPrivateKey: string;
  deviceTokens: string[];
  notificationQuery: <T extends Record<string, unknown>>(text: string, params?: unknown[]) => Promise<T[]>;
  meter: (own: Record<string, number | undefined>) => Meter;
  push: Profiled;
  profiles: Record<string, ProfileSummary>;
}): Promise<PushResult> {
  const { bus, apnsServer, apnsClient } = deps;
  const devices = deps.deviceTokens.length;
  const decided = async (postId: string) =>
    Number(
      (
        await deps.notificationQuery<{ n: string }>(
          `select count(*) as n from notification.deliveries d join notification.notifications x on x.id = d.notification_id where x.post_id = $1 and d.status <> 'sending'`,
          [postId],
        )
      )[0]?.n,
    );
  const burst = async (label: string, log = true): Promise<Burst> => {
    await apnsServer.call("mark");
    const meter = deps.meter({ push: deps.push.server.process.pid, "local APNs": apnsServer.pid });
    const postId = crypto.randomUUID();
    meter.start();
    const publishedAt = nowMs();
    const waitedBefore = runQueueWaitMs(deps.push.server.process.pid);
    await bus.publish([likeRecord(postEventsTopic, crypto.randomUUID(), { postId, likerId: deps.liker.userId, postAuthorId: deps.pushee.userId })]);
    await waitFor(`${label}: ${devices} POSTs answered by the local APNs`, async () => (await apnsServer.call<ApnsWindow>("stats")).answered >= devices, 120_000, 5);
    await waitFor(`${label}: every device's delivery decided in the ledger`, async () => (await decided(postId)) === devices, 60_000, 10);
    const ledgerAt = nowMs();
    const cpu = meter.stop();
    const waitedMs = runQueueWaitMs(deps.push.server.process.pid) - waitedBefore;
    const window = await apnsServer.call<ApnsWindow>("stats");
    const [ledger] = await deps.notificationQuery<{ delivered: string }>(
      `select count(*) filter (where d.status = 'delivered') as delivered from notification.deliveries d join notification.notifications x on x.id = d.notification_id where x.post_id = $1`,
      [postId],
    );
    const apnsWindowMs = window.lastAnswerMs - window.firstArrivalMs;
    const result: Burst = {
      devices,
      delivered: Number(ledger?.delivered ?? 0),
      apnsWindowMs: round(apnsWindowMs, 1),
      pushesPerSecond: Math.round(devices / (apnsWindowMs / 1000)),
      publishToFirstPushMs: round(window.firstArrivalMs - publishedAt, 1),
      publishToLastPushMs: round(window.lastAnswerMs - publishedAt, 1),
      publishToLedgerMs: round(ledgerAt - publishedAt, 1),
      maxInFlight: window.maxInFlight,
      statuses: window.statuses,
      cpuMsPerPush: perItem(cpu.msByProcess, devices, 3),
      othersCorePercent: cpu.othersCorePercent,
      pushRunningPercent: round(((cpu.msByProcess["push"] ?? 0) / (ledgerAt - publishedAt)) * 100, 1),
      pushWaitingForCpuPercent: round((waitedMs / (ledgerAt - publishedAt)) * 100, 1),
    };
    if (window.arrived !== devices || result.delivered !== devices) throw new Error(`${label}: ${window.arrived} POSTs reached the APNs and ${result.delivered} devices are delivered in the ledger, of ${devices}`);
    if (log) step(`${label}: ${result.pushesPerSecond} pushes/s (${result.apnsWindowMs} ms at the APNs, ${result.publishToLedgerMs} ms from the publish), push role ${result.cpuMsPerPush["push"]} ms CPU per push`);
    return result;
  };

  const key = await importPKCS8(deps.apnsPrivateKey, "ES256");
  const jwt = await new SignJWT({}).setProtectedHeader({ alg: "ES256", kid: APNS.keyId }).setIssuer(APNS.teamId).setIssuedAt().sign(key);
  await apnsClient.call("connect", deps.apns);
  const blast = async (label: string): Promise<ReferenceBlast> => {
    await apnsServer.call("mark");
    const meter = deps.meter({ "reference client": apnsClient.pid, "local APNs": apnsServer.pid });
    meter.start();
    const sent = await apnsClient.call<BlastResult>("blast", { jwt, topic: APNS.topic, tokens: deps.deviceTokens, concurrency: DEVICE_CONCURRENCY });
    const cpu = meter.stop();
    const window = await apnsServer.call<ApnsWindow>("stats");
    const apnsWindowMs = window.lastAnswerMs - window.firstArrivalMs;
    const result: ReferenceBlast = {
      devices,
      apnsWindowMs: round(apnsWindowMs, 1),
      pushesPerSecond: Math.round(devices / (apnsWindowMs / 1000)),
      clientWallMs: round(sent.endMs - sent.startMs, 1),
      maxInFlight: window.maxInFlight,
      statuses: window.statuses,
      cpuMsPerPush: perItem(cpu.msByProcess, devices, 3),
      othersCorePercent: cpu.othersCorePercent,
    };
    if (sent.statuses["200"] !== devices) throw new Error(`${label}: the reference got ${JSON.stringify(sent.statuses)} for ${devices} POSTs`);
    step(`${label}: ${result.pushesPerSecond} pushes/s (${result.apnsWindowMs} ms at the APNs), client ${result.cpuMsPerPush["reference client"]} ms CPU per push`);
    return result;
  };

  step(`push: a warm-up burst of ${devices} devices and a warm-up reference blast (not counted)`);
  await burst("push warm-up");
  await blast("reference warm-up");
  const bursts: Burst[] = [];
  const reference: ReferenceBlast[] = [];
  for (let i = 1; i <= BURSTS; i += 1) {
    // Alternated, so drift in the machine's load hits both alike.
    bursts.push(await burst(`push burst ${i}`));
    reference.push(await blast(`reference blast ${i}`));
  }
  if (DIAGNOSE) {
    step("profiling the push role over one more burst");
    deps.profiles["push"] = await profileWindow(deps.push, async () => void (await burst("profiled burst", false)));
  }
  const med = (values: number[]) => round(quantile([...values].sort((a, b) => a - b), 0.5), 3);
  const median = {
    pushesPerSecond: med(bursts.map((b) => b.pushesPerSecond)),
    referencePushesPerSecond: med(reference.map((b) => b.pushesPerSecond)),
    cpuMsPerPush: med(bursts.map((b) => b.cpuMsPerPush["push"] ?? Number.NaN)),
    referenceCpuMsPerPush: med(reference.map((b) => b.cpuMsPerPush["reference client"] ?? Number.NaN)),
    postgresCpuMsPerPush: med(bursts.map((b) => b.cpuMsPerPush["postgres"] ?? Number.NaN)),
    apnsCpuMsPerPush: med(bursts.map((b) => b.cpuMsPerPush["local APNs"] ?? Number.NaN)),
    referenceApnsCpuMsPerPush: med(reference.map((b) => b.cpuMsPerPush["local APNs"] ?? Number.NaN)),
    publishToLastPushMs: med(bursts.map((b) => b.publishToLastPushMs)),
    publishToFirstPushMs: med(bursts.map((b) => b.publishToFirstPushMs)),
    pushRunningPercent: med(bursts.map((b) => b.pushRunningPercent)),
    pushWaitingForCpuPercent: med(bursts.map((b) => b.pushWaitingForCpuPercent)),
  };
  return {
    devices,
    deviceConcurrency: DEVICE_CONCURRENCY,
    bursts,
    reference,
    median,
    throughputVsReference: round(median.pushesPerSecond / median.referencePushesPerSecond, 3),
    cpuVsReference: round(median.cpuMsPerPush / median.referenceCpuMsPerPush, 1),
  };
}

// --- like → stream ---------------------------------------------------------------------

interface PathResult {
  name: string;
  rate: number;
  seconds: number;
  sent: number;
  sentPerSecond: number;
  publishErrors: number;
  seen: number;
  missing: number;
  duplicates: number;
  /** NotificationsChanged events whose group is not the liked post's (should be 0). */
  wrong: number;
  /** Events seen per second, from the first measured send until the last arrival: what the path kept up with. */
  arrivedPerSecond: number;
  publishAckP50Ms: number;
  publishAckP99Ms: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Latency of the first and the last tenth of the measured sends (a growing backlog shows as a rising median). */
  firstTenthP50Ms: number;
  lastTenthP50Ms: number;
  cpuMsPerEvent: Record<string, number>;
  othersCorePercent: number;
  machineBusy: number;
  /** The consumer's main thread: runnable but not running (/proc/<pid>/schedstat), and running, % of the window. */
  consumerWaitingForCpuPercent?: number;
  consumerCorePercent?: number;
  /** From pg_stat_database of the notification database over the window (its counters lag by up to a second or so at both ends). */
  database?: { transactionsPerEvent: number; rowsWrittenPerEvent: number; rowsReadPerEvent: number };
}

interface DatabaseStats {
  transactions: number;
  rowsWritten: number;
  rowsRead: number;
}

interface LikeResult {
  authors: number;
  /** Of aviary.post.events (the reference topic has as many). */
  partitions: number;
  service: PathResult;
  reference: PathResult;
  lowerRates: PathResult[];
  /** The diagnosis: the same rate with the topic at MORE_PARTITIONS partitions. */
  morePartitions?: PathResult;
  p50VsReference: number;
  p99VsReference: number;
  p50AddedMs: number;
  p99AddedMs: number;
  goalMet: { p50: boolean; p99: boolean };
  /** The highest rate tried at which both goals held (null: none). */
  highestRateMeetingGoal: number | null;
}

async function likeScenario(deps: {
  bus: EventBus;
  kafkaUrl: string;
  redisUrl: string;
  prefix: string;
  meter: (own: Record<string, number | undefined>) => Meter;
  databaseStats: () => Promise<DatabaseStats>;
  consumer: Profiled;
  /** Gives aviary.post.events `count` partitions and restarts the consumer; a new publisher sees them at once. */
  repartition: (count: number) => Promise<{ consumer: Profiled; bus: EventBus }>;
  profiles: Record<string, ProfileSummary>;
}): Promise<{ like: LikeResult; consumer: Profiled }> {
  const { bus } = deps;
  const authors = Array.from({ length: AUTHORS }, () => ({ userId: crypto.randomUUID(), postId: crypto.randomUUID() }));
  const postOf = new Map(authors.map((a) => [a.userId, a.postId]));

  // The reference: a topic of its own (as many partitions as aviary.post.events), a bare consumer group.
  const referenceTopic = uniqueName("bench.notification.reference");
  const kafka = new Kafka({ clientId: "notification-bench-reference", brokers: deps.kafkaUrl.split(","), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const [postTopic] = (await admin.fetchTopicMetadata({ topics: [postEventsTopic] })).topics;
  const partitions = postTopic?.partitions.length ?? 3;
  await createTopicsWithLeaders(admin, [{ topic: referenceTopic, numPartitions: partitions, replicationFactor: 1 }]);
  await admin.disconnect();
  const referenceArrivals = new Map<string, number>();
  let referenceDuplicates = 0;
  // The service's consumer settings (runtime/src/bus/kafka-consumer.ts): the same long-poll bound.
  const referenceConsumer = kafka.consumer({ groupId: uniqueName("bench_notification_reference"), sessionTimeout: 10_000, heartbeatInterval: 3_000, maxWaitTimeInMs: 500 });
  let joined!: () => void;
  const join = new Promise<void>((done) => (joined = done));
  referenceConsumer.on(referenceConsumer.events.GROUP_JOIN, () => joined());
  await referenceConsumer.connect();
  let referenceRunning = true;
  cleanups.push(async () => {
    if (referenceRunning) await referenceConsumer.disconnect();
  });
  await referenceConsumer.subscribe({ topics: [referenceTopic], fromBeginning: true });
  await referenceConsumer.run({
    eachMessage: async ({ message }) => {
      const at = performance.now();
      const id = message.headers?.["event-id"]?.toString() ?? "";
      if (referenceArrivals.has(id)) referenceDuplicates += 1;
      else referenceArrivals.set(id, at);
    },
  });
  await join;
  // The producer learns the new topic (creation check, metadata) before anything is timed.
  const primer = crypto.randomUUID();
  await bus.publish([likeRecord(referenceTopic, primer, { postId: crypto.randomUUID(), likerId: crypto.randomUUID(), postAuthorId: crypto.randomUUID() })]);
  await waitFor("the reference consumer's first record", async () => referenceArrivals.has(primer), 60_000, 20);

  // The service's side: the authors' streams, through the port's Redis adapter on the service's prefix.
  const hub = openRedisUserStreams({ url: deps.redisUrl, prefix: deps.prefix, logger: silentSink });
  cleanups.push(() => hub.close());
  const serviceArrivals = new Map<string, number>();
  let serviceDuplicates = 0;
  let wrong = 0;
  const stops = await inParallel(authors, 20, (author) =>
    hub.listen(author.userId, (item) => {
      const at = performance.now();
      // Item ids are `notifications:<event id>:<group id>` (events/live.ts).
      const eventId = item.id.split(":")[1] ?? "";
      const event = decodeEvent(item.payload);
      if (event.payload.case !== "notificationsChanged" || event.payload.value.group?.postId !== postOf.get(author.userId)) wrong += 1;
      if (serviceArrivals.has(eventId)) serviceDuplicates += 1;
      else serviceArrivals.set(eventId, at);
    }),
  );
  cleanups.push(async () => {
    for (const stopListening of stops) await stopListening();
  });

  /** Publishes at `rate` for `warmupS` (not counted) + `seconds`; resolves once every measured event arrived (or DRAIN_MS passed). */
  const path = async (options: {
    name: string;
    topic: string;
    rate: number;
    warmupS: number;
    seconds: number;
    observed: { arrivals: Map<string, number>; duplicates: () => number; wrong: () => number };
    pids: Record<string, number | undefined>;
    publisher: EventBus;
  }): Promise<PathResult> => {
    const { name, topic, rate, warmupS, seconds, observed, pids, publisher } = options;
    const observesService = topic === postEventsTopic;
    let waitedBefore = Number.NaN;
    let windowFrom = Number.NaN;
    const warmup = Math.round(rate * warmupS);
    const total = warmup + Math.round(rate * seconds);
    const sends: { id: string; sentAt: number; ackedAt?: number; failed?: boolean }[] = [];
    const inFlight: Promise<void>[] = [];
    const meter = deps.meter(pids);
    let statsBefore: Promise<DatabaseStats> | undefined;
    const duplicatesBefore = observed.duplicates();
    const wrongBefore = observed.wrong();
    step(`${name}: ${rate}/s for ${warmupS} s (warm-up) + ${seconds} s`);
    const interval = 1000 / rate;
    const begin = performance.now();
    for (let i = 0; i < total; i += 1) {
      const due = begin + i * interval;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((done) => setTimeout(done, wait));
      if (i === warmup) {
        meter.start();
        waitedBefore = runQueueWaitMs(pids["consumer"]);
        windowFrom = performance.now();
        if (observesService) statsBefore = deps.databaseStats();
      }
      const author = authors[i % authors.length]!;
      const id = crypto.randomUUID();
      const record = likeRecord(topic, id, { postId: author.postId, likerId: crypto.randomUUID(), postAuthorId: author.userId });
      const send: (typeof sends)[number] = { id, sentAt: performance.now() };
      if (i >= warmup) sends.push(send);
      inFlight.push(
        publisher.publish([record]).then(
          () => void (send.ackedAt = performance.now()),
          () => void (send.failed = true),
        ),
      );
    }
    const lastSent = performance.now();
    await Promise.all(inFlight);
    const published = sends.filter((s) => !s.failed);
    await waitFor(`${name}: every measured event arrived`, async () => published.every((s) => observed.arrivals.has(s.id)), DRAIN_MS, 20).catch((error: unknown) => console.warn((error as Error).message));
    const cpu = meter.stop();
    const waitedMs = runQueueWaitMs(pids["consumer"]) - waitedBefore;
    const windowMs = performance.now() - windowFrom;
    const statsAfter = observesService ? await deps.databaseStats() : undefined;
    const before = await statsBefore;
    const latencyOf = (s: (typeof sends)[number]) => (observed.arrivals.has(s.id) ? [observed.arrivals.get(s.id)! - s.sentAt] : []);
    const latencies = published.flatMap(latencyOf).sort((a, b) => a - b);
    const tenth = Math.max(1, Math.floor(published.length / 10));
    const medianOf = (part: typeof sends) => round(quantile(part.flatMap(latencyOf).sort((a, b) => a - b), 0.5), 1);
    const lastArrival = Math.max(...published.map((s) => observed.arrivals.get(s.id) ?? 0));
    const acks = published.map((s) => (s.ackedAt ?? Number.NaN) - s.sentAt).sort((a, b) => a - b);
    const result: PathResult = {
      name,
      rate,
      seconds,
      sent: sends.length,
      sentPerSecond: round(sends.length / ((lastSent - sends[0]!.sentAt) / 1000), 1),
      publishErrors: sends.length - published.length,
      seen: latencies.length,
      missing: published.length - latencies.length,
      duplicates: observed.duplicates() - duplicatesBefore,
      wrong: observed.wrong() - wrongBefore,
      arrivedPerSecond: round(latencies.length / ((lastArrival - sends[0]!.sentAt) / 1000), 1),
      publishAckP50Ms: round(quantile(acks, 0.5), 1),
      publishAckP99Ms: round(quantile(acks, 0.99), 1),
      p50Ms: round(quantile(latencies, 0.5), 1),
      p90Ms: round(quantile(latencies, 0.9), 1),
      p99Ms: round(quantile(latencies, 0.99), 1),
      maxMs: round(latencies.at(-1) ?? Number.NaN, 1),
      firstTenthP50Ms: medianOf(published.slice(0, tenth)),
      lastTenthP50Ms: medianOf(published.slice(-tenth)),
      cpuMsPerEvent: perItem(cpu.msByProcess, published.length, 3),
      othersCorePercent: cpu.othersCorePercent,
      machineBusy: cpu.machineBusy,
      ...(Number.isNaN(waitedMs) ? {} : { consumerWaitingForCpuPercent: round((waitedMs / windowMs) * 100, 1), consumerCorePercent: round(((cpu.msByProcess["consumer"] ?? 0) / windowMs) * 100, 1) }),
      ...(statsAfter === undefined || before === undefined
        ? {}
        : {
            database: {
              transactionsPerEvent: round((statsAfter.transactions - before.transactions) / Math.max(1, published.length), 1),
              rowsWrittenPerEvent: round((statsAfter.rowsWritten - before.rowsWritten) / Math.max(1, published.length), 1),
              rowsReadPerEvent: round((statsAfter.rowsRead - before.rowsRead) / Math.max(1, published.length), 1),
            },
          }),
    };
    step(
      `${name}: p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, max ${result.maxMs} ms; ${result.seen} of ${published.length} seen, ${result.arrivedPerSecond}/s` +
        (result.cpuMsPerEvent["consumer"] === undefined ? "" : `; consumer ${result.cpuMsPerEvent["consumer"]} ms CPU per event`),
    );
    return result;
  };

  const serviceObserved = { arrivals: serviceArrivals, duplicates: () => serviceDuplicates, wrong: () => wrong };
  let consumer = deps.consumer;
  const onService = (name: string, rate: number, warmupS: number, seconds: number, publisher: EventBus = bus) =>
    path({ name, topic: postEventsTopic, rate, warmupS, seconds, observed: serviceObserved, pids: { consumer: consumer.server.process.pid }, publisher });
  const referenceResult = await path({
    name: "reference (kafkajs produce → bare consumer group)",
    topic: referenceTopic,
    rate: LIKE_RATE,
    warmupS: LIKE_WARMUP_SECONDS,
    seconds: LIKE_SECONDS,
    observed: { arrivals: referenceArrivals, duplicates: () => referenceDuplicates, wrong: () => 0 },
    pids: {},
    publisher: bus,
  });
  referenceRunning = false;
  await referenceConsumer.disconnect();
  const service = await onService("LikeCreated → NotificationsChanged on the author's stream", LIKE_RATE, LIKE_WARMUP_SECONDS, LIKE_SECONDS);
  const lowerRates: PathResult[] = [];
  let morePartitions: PathResult | undefined;
  if (!meets(service) && service.missing === 0) {
    for (const rate of LOWER_RATES.filter((r) => r < LIKE_RATE)) {
      const row = await onService(`the same at ${rate}/s`, rate, 3, Math.round(LIKE_SECONDS / 2));
      lowerRates.push(row);
      if (row.missing > 0 || meets(row)) break;
    }
    if (DIAGNOSE && lowerRates.every((row) => row.missing === 0)) {
      // Events are applied one at a time per partition: does the rate follow the partitions?
      step(`diagnosis: ${postEventsTopic} to ${MORE_PARTITIONS} partitions, the consumer restarted (same group)`);
      const repartitioned = await deps.repartition(MORE_PARTITIONS);
      consumer = repartitioned.consumer;
      morePartitions = await onService(`diagnosis: ${LIKE_RATE}/s, ${postEventsTopic} at ${MORE_PARTITIONS} partitions`, LIKE_RATE, 3, Math.round(LIKE_SECONDS / 2), repartitioned.bus);
    }
  }
  if (DIAGNOSE) {
    step(`profiling the consumer over ${PROFILE_SECONDS} s at ${LIKE_RATE}/s`);
    deps.profiles["consumer"] = await profileWindow(consumer, async () => {
      // The same open loop, unmeasured; whatever backlog it leaves is not waited for (the consumer stops next).
      const end = performance.now() + PROFILE_SECONDS * 1000;
      const interval = 1000 / LIKE_RATE;
      const begin = performance.now();
      const sent: Promise<void>[] = [];
      for (let i = 0; performance.now() < end; i += 1) {
        const wait = begin + i * interval - performance.now();
        if (wait > 1) await new Promise((done) => setTimeout(done, wait));
        const author = authors[i % authors.length]!;
        sent.push(bus.publish([likeRecord(postEventsTopic, crypto.randomUUID(), { postId: author.postId, likerId: crypto.randomUUID(), postAuthorId: author.userId })]));
      }
      await Promise.all(sent);
    });
  }
  const tried = [service, ...lowerRates].filter(meets).map((r) => r.rate);
  const like: LikeResult = {
    authors: AUTHORS,
    partitions,
    service,
    reference: referenceResult,
    lowerRates,
    ...(morePartitions === undefined ? {} : { morePartitions }),
    p50VsReference: ratio(service.p50Ms, referenceResult.p50Ms),
    p99VsReference: ratio(service.p99Ms, referenceResult.p99Ms),
    p50AddedMs: round(service.p50Ms - referenceResult.p50Ms, 1),
    p99AddedMs: round(service.p99Ms - referenceResult.p99Ms, 1),
    goalMet: { p50: service.p50Ms <= GOALS.p50Ms && service.missing === 0, p99: service.p99Ms <= GOALS.p99Ms && service.missing === 0 },
    highestRateMeetingGoal: tried.length === 0 ? null : Math.max(...tried),
  };
  return { like, consumer };
}

// --- measuring ---------------------------------------------------------------------------



interface Profiled {
  server: ServerProcess;
  /** Its --inspect-port. */
  port: number;
}

type ProfileSummary = Breakdown & {
  gcPercent: number;
  programPercent: number;
  seconds: number;
  /** Self time of native frames (syscalls such as writev, builtins), by the package whose code called them, % of busy. */
  nativeByCaller: { area: string; percent: number }[];
};

/** Attributes the self time of native frames (no script URL) to the nearest calling frame that is a package or this repo's code. */
function nativeByCaller(profile: CpuProfile): { area: string; percent: number }[] {
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  let busy = 0;
  const areas = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (frame === undefined || frame.functionName === "(idle)") continue;
    busy += us;
    if (frame.url !== "" || frame.functionName.startsWith("(")) continue;
    let caller = parent.get(id);
    let area = "(no JS caller)";
    while (caller !== undefined) {
      const callerFrame = byId.get(caller)?.callFrame;
      const callerArea = callerFrame === undefined ? "" : areaOf(callerFrame);
      if (callerFrame !== undefined && callerFrame.url !== "" && !callerArea.startsWith("node:")) {
        area = callerArea;
        break;
      }
      caller = parent.get(caller);
    }
    areas.set(area, (areas.get(area) ?? 0) + us);
  }
  return [...areas].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([area, us]) => ({ area, percent: round((us / Math.max(1, busy)) * 100, 1) }));
}

/** Opens the process's inspector (SIGUSR1) and runs V8's CPU profiler over `work`. */
async function profileWindow(target: Profiled, work: () => Promise<void>): Promise<ProfileSummary> {
  target.server.process.kill("SIGUSR1");
  const inspector = await attachInspector(target.port);
  try {
    await inspector.startCpuProfile(500);
    const from = performance.now();
    await work();
    const seconds = round((performance.now() - from) / 1000, 1);
    const profile = await inspector.stopCpuProfile();
    return { ...summarizeCpuProfile(profile), seconds, nativeByCaller: nativeByCaller(profile) };
  } finally {
    inspector.close();
  }
}

// --- helpers ---------------------------------------------------------------------------

interface Account {
  label: string;
  userId: string;
  call: { headers: Record<string, string> };
}


/** A LikeCreated record with the headers the real producers write (services/notification/test/harness.ts `publish`). */
function likeRecord(topic: string, id: string, like: { postId: string; likerId: string; postAuthorId: string }): EventRecord {
  const value = toBinary(LikeCreatedSchema, create(LikeCreatedSchema, { ...like, createdAt: timestampFromDate(new Date()) }));
  return { topic, key: like.postId, value, headers: { "event-id": id, "event-type": LikeCreatedSchema.typeName, "content-type": "application/x-protobuf" } };
}





/** Time the process's main thread was runnable but not running (/proc/<pid>/schedstat), ms. */
function runQueueWaitMs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[1]) / 1e6;
  } catch {
    return Number.NaN;
  }
}




// --- output ------------------------------------------------------------------------------

type ReadRow = Result & {
  throughputVsNoop: number;
  p50VsNoop: number;
  /** CPU time per measured call, by process, over the measured window. */
  cpuMsPerCall: Record<string, number>;
  othersCorePercent: number;
  machineBusy: number;
  /** calls/s of every round (the row is the median one). */
  roundsThroughput?: number[];
};

interface Results {
  push: PushResult;
  like: LikeResult;
  readRows: ReadRow[];
  profiles: Record<string, ProfileSummary>;
}

interface RunMeta {
  at: string;
  cpus: number;
  node: string;
  loadAverageAtStart: number[];
  commit: string;
}

async function report(results: Results): Promise<void> {
  const at = new Date().toISOString();
  const json = { at, stack: "real (PostgreSQL, Redis, a private Kafka; services as child processes)", ...machine, goals: GOALS, ...results };
  await mkdir(resolve(repo, "bench/results"), { recursive: true });
  await writeFile(resultsPath, `${JSON.stringify(json, null, 2)}\n`);
  const section = renderSection({ at, ...machine }, results);
  await writeSection(docsPath, START, END, section);
  console.log(section);
}

function renderSection(meta: RunMeta, results: Results): string {
  const { at } = meta;
  const { push, like, readRows, profiles } = results;
  const fmt = (value: number | undefined) => (value === undefined || Number.isNaN(value) ? "—" : String(value));
  const goal = (met: boolean) => (met ? "met" : "**not met**");
  const cpuCell = (byProcess: Record<string, number>, skip: string[] = []) =>
    Object.entries(byProcess)
      .filter(([label, ms]) => ms > 0 && !skip.includes(label))
      .sort(([, a], [, b]) => b - a)
      .map(([label, ms]) => `${label} ${ms}`)
      .join(", ");

  // --- like
  const s = like.service;
  const r = like.reference;
  const likeRows = [r, s, ...like.lowerRates, ...(like.morePartitions === undefined ? [] : [like.morePartitions])];
  const likeTable = [
    "| path | rate | sent/s | events | publish ack p50 / p99 ms | p50 ms | p90 ms | p99 ms | max ms | first / last tenth p50 ms | arrived/s | not seen | dup. | wrong group |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...likeRows.map(
      (row) =>
        `| ${row.name} | ${row.rate}/s × ${row.seconds} s | ${row.sentPerSecond} | ${row.seen} of ${row.sent - row.publishErrors} (${row.publishErrors} publish errors) | ${row.publishAckP50Ms} / ${row.publishAckP99Ms} | ${row.p50Ms} | ${row.p90Ms} | ${row.p99Ms} | ${row.maxMs} | ${row.firstTenthP50Ms} / ${row.lastTenthP50Ms} | ${row.arrivedPerSecond} | ${row.missing} | ${row.duplicates} | ${row.wrong} |`,
    ),
  ].join("\n");
  const likeCpu = [
    "| path | CPU ms per event, by process | consumer: running / waiting for a CPU, % of the window | notification database per event: transactions, rows written, rows read | others on the machine | machine busy |",
    "|---|---|---|---|---|---|",
    ...likeRows.map(
      (row) =>
        `| ${row.name} (${row.rate}/s) | ${cpuCell(row.cpuMsPerEvent)} | ${row.consumerCorePercent === undefined ? "—" : `${row.consumerCorePercent} / ${row.consumerWaitingForCpuPercent}`} | ${row.database === undefined ? "—" : `${row.database.transactionsPerEvent}, ${row.database.rowsWrittenPerEvent}, ${row.database.rowsReadPerEvent}`} | ${row.othersCorePercent} % of a core | ${Math.round(row.machineBusy * 100)} % |`,
    ),
  ].join("\n");
  const consumerMs = s.cpuMsPerEvent["consumer"] ?? Number.NaN;
  const postgresMs = s.cpuMsPerEvent["postgres"] ?? Number.NaN;
  const serviceCores = round(((consumerMs + postgresMs) * s.rate) / 1000, 2);

  // --- push
  const pm = push.median;
  const pushTable = [
    "| run | pushes/s | at the APNs, first POST → last answer ms | publish → first POST ms | publish → last answer ms | publish → ledger complete ms | most in flight | answers | CPU ms per push, by process | push role running / waiting for a CPU | others on the machine |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
    ...push.bursts.map(
      (b, i) =>
        `| push role, burst ${i + 1} | ${b.pushesPerSecond} | ${b.apnsWindowMs} | ${b.publishToFirstPushMs} | ${b.publishToLastPushMs} | ${b.publishToLedgerMs} | ${b.maxInFlight} | ${statusText(b.statuses)} | ${cpuCell(b.cpuMsPerPush)} | ${b.pushRunningPercent} / ${b.pushWaitingForCpuPercent} % | ${b.othersCorePercent} % |`,
    ),
    ...push.reference.map(
      (b, i) =>
        `| reference (bare node:http2), run ${i + 1} | ${b.pushesPerSecond} | ${b.apnsWindowMs} | — | — | — | ${b.maxInFlight} | ${statusText(b.statuses)} | ${cpuCell(b.cpuMsPerPush, ["kafka", "redis", "consumer", "user", "bench (orchestrator)", "postgres"])} | — | ${b.othersCorePercent} % |`,
    ),
  ].join("\n");

  // --- read
  const readTable = [
    "| RPC | callers | calls/s (median round) | every round | p50 ms | p99 ms | calls/s vs no-op | p50 vs no-op | errors |",
    "|---|---|---|---|---|---|---|---|---|",
    ...readRows.map((row) => `| ${row.name} | ${row.concurrency} | ${row.throughput} | ${(row.roundsThroughput ?? []).join(", ")} | ${row.p50Ms} | ${row.p99Ms} | ${row.throughputVsNoop} | ${row.p50VsNoop} | ${row.errors} |`),
  ].join("\n");
  const readCpu = [
    "| RPC (median round) | CPU ms per call, by process | others on the machine | machine busy |",
    "|---|---|---|---|",
    ...readRows.map((row) => `| ${row.name} | ${cpuCell(row.cpuMsPerCall)} | ${row.othersCorePercent} % of a core | ${Math.round(row.machineBusy * 100)} % |`),
  ].join("\n");
  const list = readRows[1];
  const listServiceMs = list === undefined ? Number.NaN : round((list.cpuMsPerCall["notification"] ?? 0) + (list.cpuMsPerCall["user"] ?? 0) + (list.cpuMsPerCall["postgres"] ?? 0) + (list.cpuMsPerCall["redis"] ?? 0), 1);
  const noopServiceMs = round(readRows[0]?.cpuMsPerCall["noop"] ?? Number.NaN, 2);

  // --- profiles
  const profileText = (label: string, p: ProfileSummary | undefined, what: string) => {
    if (p === undefined) return "";
    const areas = p.byArea.slice(0, 8).map((a) => `${a.area} ${a.percent} %`).join(", ");
    const fns = ["| function (self time) | % of busy |", "|---|---|", ...p.topFunctions.slice(0, 10).map((f) => `| \`${f.fn.replaceAll("|", "\\|")}\` | ${f.percent} |`)].join("\n");
    const native = p.nativeByCaller.map((a) => `${a.area} ${a.percent} %`).join(", ");
    return `**${label}** (${what}; ${p.total} ms busy in ${p.seconds} s, garbage collector ${p.gcPercent} %, \`(program)\` — native work outside JS — ${p.programPercent} %). By area: ${areas}. Native frames (syscalls such as \`writev\`, builtins) by the package that called them: ${native}.\n\n${fns}\n\n`;
  };
  const profilesText =
    Object.keys(profiles).length === 0
      ? "Not profiled in this run (BENCH_NOTIF_DIAGNOSE=0).\n\n"
      : `V8's CPU profiler (the one \`--cpu-prof\` runs, sampling every 0.5 ms), attached through the inspector after the figures above were taken, over one more window of the same work; self time of the busy samples.\n\n` +
        profileText("Consumer role", profiles["consumer"], `${LIKE_RATE}/s of LikeCreated for ${PROFILE_SECONDS} s`) +
        profileText("Push role", profiles["push"], `one more burst of ${push.devices} devices`) +
        profileText("Api role", profiles["api"], `ListNotifications, first page, ${READ_CALLERS} callers for ${READ_SECONDS} s`);
  const areaShare = (p: ProfileSummary | undefined, test: (area: string) => boolean) => round((p?.byArea ?? []).filter((a) => test(a.area)).reduce((sum, a) => sum + a.percent, 0), 1);
  const isDbClient = (a: string) => a === "pg" || a === "pg-protocol" || a.startsWith("drizzle-orm") || a === "pg-pool" || a === "services/runtime/src/db";
  /** The database client's JS plus the native work (socket writes) it called. */
  const dbShare = (p: ProfileSummary | undefined) =>
    round(areaShare(p, isDbClient) + (p?.nativeByCaller ?? []).filter((a) => isDbClient(a.area)).reduce((sum, a) => sum + a.percent, 0), 1);

  // --- summary
  const summaryTable = [
    "| goal (issue) | measured | reference in the same run | ratio | met |",
    "|---|---|---|---|---|",
    `| like → the author's stream at ${s.rate}/s, p50 ≤ ${GOALS.p50Ms} ms | ${s.p50Ms} ms (${s.arrivedPerSecond} events/s kept up with) | Kafka produce → consume ${r.p50Ms} ms | ${like.p50VsReference}× | ${goal(like.goalMet.p50)}${like.goalMet.p50 || like.highestRateMeetingGoal === null ? "" : ` (met at ${like.highestRateMeetingGoal}/s)`} |`,
    `| the same, p99 ≤ ${GOALS.p99Ms} ms | ${s.p99Ms} ms | ${r.p99Ms} ms | ${like.p99VsReference}× | ${goal(like.goalMet.p99)}${like.goalMet.p99 || like.highestRateMeetingGoal === null ? "" : ` (met at ${like.highestRateMeetingGoal}/s)`} |`,
    `| push fan-out, ${push.devices.toLocaleString("en")} devices in one burst: throughput | ${pm.pushesPerSecond} pushes/s (median of ${push.bursts.length}) | bare node:http2, same concurrency: ${pm.referencePushesPerSecond}/s | ${push.throughputVsReference} | no figure set |`,
    `| the same: the worker's CPU per push | ${pm.cpuMsPerPush} ms (PostgreSQL ${fmt(pm.postgresCpuMsPerPush)} ms more) | ${pm.referenceCpuMsPerPush} ms | ${push.cpuVsReference}× | no figure set |`,
    ...(list === undefined ? [] : [`| ListNotifications, page of 20, ${READ_CALLERS} callers | ${list.throughput} calls/s, p50 ${list.p50Ms} ms | no-op ${readRows[0]!.throughput} calls/s, p50 ${readRows[0]!.p50Ms} ms | ${list.throughputVsNoop} | no figure set |`]),
  ].join("\n");

  // --- reading
  const reading: string[] = [];
  const likeMet = like.goalMet.p50 && like.goalMet.p99;
  if (likeMet) {
    reading.push(
      `Like → stream at ${s.rate}/s: p50 ${s.p50Ms} ms and p99 ${s.p99Ms} ms, within the goal; the service adds ${like.p50AddedMs} ms at p50 and ${like.p99AddedMs} ms at p99 to Kafka's own produce → consume (${r.p50Ms} / ${r.p99Ms} ms), every event delivered once. ` +
        `Each event costs the consumer process ${fmt(consumerMs)} ms of CPU and PostgreSQL ${fmt(postgresMs)} ms` +
        (s.database === undefined ? "" : ` over ${s.database.transactionsPerEvent} transactions (${s.database.rowsWrittenPerEvent} rows written, ${s.database.rowsReadPerEvent} read)`) +
        `, so ${s.rate}/s takes about ${serviceCores} of the machine's ${meta.cpus} cores besides Kafka (${fmt(s.cpuMsPerEvent["kafka"])} ms per event) and the load generator; ` +
        `the consumer's one JS thread was running ${fmt(s.consumerCorePercent)} % of the window and waiting for a CPU ${fmt(s.consumerWaitingForCpuPercent)} % more, with the rest of the machine using ${s.othersCorePercent} % of a core. ` +
        `The machine was ${Math.round(s.machineBusy * 100)} % busy, about ${round((1 - s.machineBusy) * meta.cpus, 2)} of a core idle: that is the margin — other work on this shared machine taking more than that leaves the consumer short of CPU, and then a backlog, not a per-event cost, sets the latency.` +
        (profiles["consumer"] ? ` The profile puts ${dbShare(profiles["consumer"])} % of the consumer's busy time in the database client (drizzle building queries, pg encoding them and the socket writes it makes), ${areaShare(profiles["consumer"], (a) => a === "kafkajs")} % in kafkajs.` : ""),
    );
  } else {
    const lower = like.lowerRates.map((row) => `${row.rate}/s: p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms (${row.arrivedPerSecond} arrived/s)`).join("; ");
    const overloaded = s.arrivedPerSecond < s.rate * 0.95 || s.lastTenthP50Ms > s.firstTenthP50Ms * 3;
    const perEventWallMs = round((like.partitions / s.arrivedPerSecond) * 1000, 1);
    const mp = like.morePartitions;
    const saturated = (row: PathResult) => (row.consumerCorePercent ?? 0) + (row.consumerWaitingForCpuPercent ?? 0) >= 85;
    const thread =
      `the consumer's one JS thread was running ${fmt(s.consumerCorePercent)} % of the window and runnable but waiting for a CPU ${fmt(s.consumerWaitingForCpuPercent)} % more` +
      (saturated(s)
        ? `: it is saturated, so the limit is CPU — its own work per event, and a core it gets only part of the time on a machine shared with PostgreSQL, Kafka, the load generator and others — rather than the partitions. `
        : `: it has room, so an event mostly waits on its sequential round trips to PostgreSQL. `);
    reading.push(
      `Like → stream at ${s.rate}/s misses the goal (p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms against Kafka's own ${r.p50Ms} / ${r.p99Ms} ms). ` +
        (overloaded
          ? `The consumer does not keep up: it delivered ${s.arrivedPerSecond} events/s while ${s.sentPerSecond}/s were sent, so a backlog builds (the median of the last tenth of the sends, ${s.lastTenthP50Ms} ms, against ${s.firstTenthP50Ms} ms for the first) and the latency is the queue's. ` +
            `Events are applied one at a time per partition and ${postEventsTopic} has ${like.partitions} (the runtime's default when it creates a topic; NOTIFICATION_CONSUMER_CONCURRENCY 6 cannot use more than there are), so ${s.arrivedPerSecond}/s means about ${perEventWallMs} ms of wall time per event on each partition; ${thread}`
          : `The consumer keeps up on average (${s.arrivedPerSecond} events/s delivered), but events queue: ${thread}`) +        `Each event costs the consumer process ${fmt(consumerMs)} ms of CPU and PostgreSQL ${fmt(postgresMs)} ms` +
        (s.database === undefined ? "" : ` over ${s.database.transactionsPerEvent} transactions (${s.database.rowsWrittenPerEvent} rows written, ${s.database.rowsReadPerEvent} read)`) +
        ` (the event's transaction — the notification, its group, the unread count, the push request in the outbox, once per event id — then the outbox relay publishing the push request, and the live update, a Redis script) — ` +
        `so ${s.rate}/s asks for about ${serviceCores} cores of the machine's ${meta.cpus}, shared with Kafka (${fmt(s.cpuMsPerEvent["kafka"])} ms per event), Redis, the load generator and whatever else runs (${s.othersCorePercent} % of a core meanwhile); the machine was ${Math.round(s.machineBusy * 100)} % busy.` +
        (profiles["consumer"] ? ` The profile puts ${dbShare(profiles["consumer"])} % of the consumer's busy time in the database client (drizzle building queries, pg encoding them and the socket writes it makes), ${areaShare(profiles["consumer"], (a) => a === "kafkajs")} % in kafkajs and ${areaShare(profiles["consumer"], (a) => a === "ioredis")} % in ioredis.` : "") +
        (lower === "" ? "" : ` Lower rates: ${lower}.`) +
        (mp === undefined
          ? ""
          : ` Diagnosis: with the topic at ${MORE_PARTITIONS} partitions (consumer restarted, same group) ${mp.rate}/s gave p50 ${mp.p50Ms} ms, p99 ${mp.p99Ms} ms and ${mp.arrivedPerSecond} arrived/s, ${round(mp.arrivedPerSecond / s.arrivedPerSecond, 2)}× the rate at ${like.partitions} partitions ` +
            `(the consumer's thread running ${fmt(mp.consumerCorePercent)} % and waiting for a CPU ${fmt(mp.consumerWaitingForCpuPercent)} % of the window, the machine ${Math.round(mp.machineBusy * 100)} % busy, others ${mp.othersCorePercent} % of a core)` +
            ((mp.consumerCorePercent ?? 0) + (mp.consumerWaitingForCpuPercent ?? 0) >= 85
              ? `: the thread is saturated there too, so more partitions buy ${mp.arrivedPerSecond > s.arrivedPerSecond * 1.1 ? "some rate" : "little"} before the consumer's CPU per event on this machine is the limit`
              : `: with more partitions the thread has room to spare, so the sequence of round trips per partition was the limit`) +
            (meets(mp) ? ", and the goal is met that way." : ".")) +
        ` Highest rate tried that met the goal: ${like.highestRateMeetingGoal === null ? "none" : `${like.highestRateMeetingGoal}/s`}.`,
    );
  }
  reading.push(
    `Push fan-out: ${pm.pushesPerSecond} pushes/s to the local APNs (median of ${push.bursts.length} bursts of ${push.devices}), ${push.throughputVsReference} of the bare client's ${pm.referencePushesPerSecond}/s at the same ${push.deviceConcurrency} in flight; ` +
      `the push role spends ${pm.cpuMsPerPush} ms of CPU per push against ${pm.referenceCpuMsPerPush} ms for the bare client (${push.cpuVsReference}×), and PostgreSQL ${fmt(pm.postgresCpuMsPerPush)} ms more: every device is claimed in the ledger (an insert) before its POST and finished (an update) after it, two statements through drizzle and pg per push, ` +
      (pm.pushRunningPercent + pm.pushWaitingForCpuPercent >= 85
        ? `and the push role's one JS thread was running ${pm.pushRunningPercent} % of a burst and waiting for a CPU ${pm.pushWaitingForCpuPercent} % more: it is saturated, so a burst goes as fast as that thread's CPU per push allows, and more devices in flight would mostly queue for it`
        : `while its JS thread ran only ${pm.pushRunningPercent} % of a burst (waiting for a CPU ${pm.pushWaitingForCpuPercent} % more): a device's slot mostly waits on those two database round trips besides the POST`) +
      (profiles["push"] ? ` (profile: ${dbShare(profiles["push"])} % of the push role's busy time in the database client, ${areaShare(profiles["push"], (a) => a === "node:http2" || a === "services/notification/src/push")} % in the HTTP/2 client and the adapter)` : "") +
      `. A burst's first POST leaves ${pm.publishToFirstPushMs} ms after the like is published (consumer, outbox relay, Kafka, BatchGetDevices), the last answer comes ${pm.publishToLastPushMs} ms after it. The issue sets no figure for this; the local APNs itself costs ${fmt(pm.apnsCpuMsPerPush)} ms per push (${fmt(pm.referenceApnsCpuMsPerPush)} ms under the reference: it verifies the ES256 provider token on every request).`,
  );
  if (list !== undefined) {
    reading.push(
      `ListNotifications keeps ${list.throughputVsNoop} of the no-op's throughput at ${READ_CALLERS} callers (the issue sets no figure; the feed's GetHomeFeed goal, for comparison, is 0.5): a call costs ${listServiceMs} ms of CPU across the notification service, the user service (BatchGetProfiles as the caller: JWT check, denylist, the profiles read), PostgreSQL and Redis, ` +
        `against ${noopServiceMs} ms for the no-op, on ${meta.cpus} cores shared with the load generator (${list.cpuMsPerCall["load generator"] ?? "—"} ms per call), so the read path is CPU-bound long before the no-op is` +
        (profiles["api"] ? `; the api role's profile puts ${dbShare(profiles["api"])} % of its busy time in the database client and ${areaShare(profiles["api"], (a) => a.startsWith("@connectrpc") || a === "@bufbuild/protobuf")} % in connect and protobuf` : "") +
        ".",
    );
  }

  return (
    `## Notifications\n\n` +
    `Written by \`node bench/notification.ts\` (${at}; commit ${meta.commit}; Node ${meta.node}, ${meta.cpus} cores, load average ${meta.loadAverageAtStart.join(" / ")} at the start). Raw figures: \`bench/results/notification.json\`.\n` +
    `Everything on this one machine over loopback, each in its own process: auth and user (real: the push role reads devices and names through UserInternalService with a service token from AUTH_SERVICE_CLIENTS, ListNotifications hydrates through BatchGetProfiles with the caller's token; the consumer role only needs them for mentions, which no scenario here has), the notification service (\`node services/notification/src/main.ts\`, one process per role — consumer, push, api — on a fresh database, its own consumer groups and realtime key prefix),\n` +
    `the local APNs of the notification tests (HTTP/2 over TLS, checks the provider token) and the reference clients as worker processes, PostgreSQL (fresh databases), Redis (the shared one, keys under the run's prefix, deleted after)\n` +
    `and a Kafka started for the run and ${kafkaWarmupNote} (the service's fresh groups read from the beginning). CPU from /proc over each window: the services' processes, the PostgreSQL backends of the run's databases (by process title),\n` +
    `the private Kafka, Redis, the bench itself; "others on the machine" is everything else (the machine is shared: figures taken while it is high are slower than the service is).\n\n` +
    `${summaryTable}\n\n` +
    `### Like → the author's stream\n\n` +
    `LikeCreated events published to aviary.post.events through the runtime's Kafka producer (idempotent, acks from all replicas, one request at a time; headers event-id, event-type, content-type as the real producers write them) at a steady rate, open loop (a publish never waits for earlier ones),\n` +
    `over ${like.authors} authors with one post each, so every like updates the author's group of that post; the consumer role (its defaults: up to 6 partitions at once; the topic has ${like.partitions}) records it and publishes NotificationsChanged (the group and the unread count) to the author's stream.\n` +
    `Latency: from the publish call until the event arrives on the author's stream, read through the user-stream port's Redis adapter (\`listen\`, the channel the realtime service subscribes to) on the service's prefix, in the bench process. The first ${LIKE_WARMUP_SECONDS} s of each run are a warm-up, not counted.\n` +
    `The reference: the same records through the same producer to a topic of its own (as many partitions), read by a bare kafkajs consumer group in the bench process, same long-poll setting — Kafka's own produce → consume on this machine.\n` +
    `Checked: every event arrives once, with the liked post's group. Goal at ${LIKE_RATE}/s: p50 ≤ ${GOALS.p50Ms} ms (${goal(like.goalMet.p50)}), p99 ≤ ${GOALS.p99Ms} ms (${goal(like.goalMet.p99)}); ` +
    `the service ÷ the reference: ${like.p50VsReference}× at p50, ${like.p99VsReference}× at p99 (${like.p50AddedMs} ms and ${like.p99AddedMs} ms added).` +
    `${like.lowerRates.length > 0 ? ` ${LIKE_RATE}/s missed it, so lower rates were tried (${Math.round(LIKE_SECONDS / 2)} s each after 3 s of warm-up)${like.morePartitions === undefined ? "" : `, and, as a diagnosis (not the goal's setup), ${LIKE_RATE}/s once more with ${postEventsTopic} at ${MORE_PARTITIONS} partitions`}.` : ""}\n\n` +
    `${likeTable}\n\n${likeCpu}\n\n` +
    `### Push fan-out\n\n` +
    `One user with ${push.devices.toLocaleString("en")} iOS devices, registered through the user service's RegisterDevice. A burst: one LikeCreated for a new post of theirs → the consumer role → its outbox → NotificationCreated on aviary.notification.events → the push role\n` +
    `(BatchGetDevices for the one user: all ${push.devices.toLocaleString("en")} devices in one call; the foreground check in Redis; the liker's name) → per device: claim in the ledger, POST to the local APNs over one HTTP/2 TLS connection, finish in the ledger; PUSH_DEVICE_CONCURRENCY = ${push.deviceConcurrency} devices in flight.\n` +
    `pushes/s = devices ÷ (first POST arriving at the APNs → last answer), stamped by the APNs process on the shared monotonic clock; CPU from the publish until every ledger row was decided. One warm-up burst first (not counted; the TLS connection and the provider token are made there).\n` +
    `The reference: the same number of POSTs (same headers, same kind of payload, the same signed provider token, the same device tokens) to the same server from a bare node:http2 session in a process of its own, ${push.deviceConcurrency} in flight; bursts and reference runs alternate.\n\n` +
    `${pushTable}\n\n` +
    `Median: ${pm.pushesPerSecond} pushes/s against the reference's ${pm.referencePushesPerSecond}/s (${push.throughputVsReference}); the push role ${pm.cpuMsPerPush} ms CPU per push against the bare client's ${pm.referenceCpuMsPerPush} ms (${push.cpuVsReference}×), PostgreSQL ${fmt(pm.postgresCpuMsPerPush)} ms per push more.\n\n` +
    `### ListNotifications\n\n` +
    `The reader has ${READ_GROUPS} like groups (${READ_GROUPS * 3} LikeCreated events through the consumer, 3 likers each among ${READ_ACTORS} real accounts). A call: the preferences, the page of groups, the unread count and the watermark in one repeatable-read transaction,\n` +
    `then one BatchGetProfiles on the real user service with the caller's token for the page's sample actors (3 per group, ${READ_ACTORS} distinct). Each row: ${READ_SECONDS} s after a 1 s warm-up, ${READ_CALLERS} callers over one HTTP/2 connection; ${READ_ROUNDS} rounds of the three rows in turn, each row's median round shown (its figures and CPU); the no-op is measured in the same rounds, the api role alone running.\n\n` +
    `${readTable}\n\n${readCpu}\n\n` +
    `### Reading the figures\n\n${reading.map((line) => `- ${line}`).join("\n")}\n\n` +
    `### Where the CPU goes\n\n${profilesText}` +
    `Figures move by tens of percent between runs on a machine this small and shared.\n`
  );
}


function meets(r: PathResult): boolean {
  return r.p50Ms <= GOALS.p50Ms && r.p99Ms <= GOALS.p99Ms && r.missing === 0;
}

function statusText(statuses: Record<string, number>): string {
  return Object.entries(statuses)
    .map(([status, count]) => `${count} × ${status}`)
    .join(", ");
}

