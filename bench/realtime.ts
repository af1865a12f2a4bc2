// `make bench`, realtime part (runs after bench/run.ts and bench/feed.ts):
// what held streams cost the realtime service, and how fast a durable publish
// reaches a device. Writes bench/results/realtime.json and the section between
// the realtime markers of docs/benchmarks.md.
//
// The stack, all on this machine, each in its own process so its CPU and
// memory are its own (read from /proc): auth and user (a fresh database of the
// shared PostgreSQL, the in-process bus: their events are not what is
// measured and must not land in the shared Kafka topics), the realtime
// service (`node services/realtime/src/main.ts`, defaults but for the key
// prefix, so REALTIME_HEARTBEAT is 25 s), and the load generators as workers
// (bench/realtime-clients.ts receives, bench/realtime-publisher.ts publishes).
// Redis is the shared one; every key of the run is under its own prefix and
// deleted at the end.
//
// Scenarios:
//   idle     10,000 Subscribe streams (1,000 users × 10 devices) over 1,000
//            HTTP/2 connections on one realtime instance: its RSS before and
//            after opening them, its CPU at rest over three heartbeat intervals
//            once every stream has had its first heartbeat (steady state).
//            Reference: the same streams on a bare node:http2 server that
//            answers with headers and never ends (bench/realtime-bare-server.ts).
//   live     1,000 users, one stream each over 100 connections; durable
//            publishes (publishEvent through the Redis adapter) at a fixed
//            rate spread over the users; publish call → frame read by the
//            client. Reference at each rate: raw Redis PUBLISH → SUBSCRIBE
//            (ioredis), one channel per user. The rate is stepped to find the
//            highest that keeps p99 ≤ 50 ms.
//
// Diagnosis (for a goal missed, or everything with BENCH_RT_DIAGNOSE=1; never
// with 0), after the measurements (bench/profiles.ts): the measured realtime
// processes are started with --inspect-port (inert until SIGUSR1), so once a
// scenario's figures are taken its inspector is opened and V8's CPU profiler
// (the one --cpu-prof uses) run over a window of the same work: two heartbeat
// intervals at rest, a 2,000/s step. Memory is attributed on a process of its
// own under the sampling heap profiler (2,000 streams opened, then a full GC):
// live bytes by the function that allocated them. Profiled figures are never
// the measured ones.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Redis } from "ioredis";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { uniqueName } from "../services/runtime/test-support/infra.ts";
import { freshDatabase } from "../services/runtime/test-support/database.ts";
import { freePort } from "../services/runtime/test-support/envoy.ts";
import { cpuMeter, inParallel, internalListenerEnv, internalTransport, quantile, repo, round, type ServerProcess, spawnServer, teardown, waitFor } from "./support.ts";
import { startWorker, type Worker } from "./workers.ts";
import type { OpenResult, Stats, StepResult, Target } from "./realtime-clients.ts";
import type { RunResult } from "./realtime-publisher.ts";
import { attachInspector, countGcs, summarizeCpuProfile, summarizeHeapSampling, type Breakdown, type GcCounts, type HeapSamplingNode, type Inspector } from "./profiles.ts";

const env = process.env;
const number = (name: string, fallback: number) => (env[name] === undefined || env[name] === "" ? fallback : Number(env[name]));
const USERS = number("BENCH_RT_USERS", 1_000);
const IDLE_STREAMS = number("BENCH_RT_IDLE_STREAMS", 10_000);
const IDLE_CONNECTIONS = number("BENCH_RT_IDLE_CONNECTIONS", 1_000);
/** The service's default REALTIME_HEARTBEAT (25 s), which is what is measured; another only for trying the bench out quickly. */
const HEARTBEAT_S = number("BENCH_RT_HEARTBEAT_SECONDS", 25);
/** The rest window: whole heartbeat intervals, so each per-stream timer fires the same number of times in it. */
const IDLE_SECONDS = number("BENCH_RT_IDLE_SECONDS", 3 * HEARTBEAT_S);
const BARE_IDLE_SECONDS = number("BENCH_RT_BARE_IDLE_SECONDS", 10);
const LIVE_CONNECTIONS = number("BENCH_RT_LIVE_CONNECTIONS", 100);
const HEADLINE_RATE = 2_000;
const HEADLINE_SECONDS = number("BENCH_RT_HEADLINE_SECONDS", 10);
const STEP_SECONDS = number("BENCH_RT_STEP_SECONDS", 5);
const STEP_RATES = (env["BENCH_RT_RATES"] ?? "1000,2000,4000,6000,8000").split(",").map(Number);
const DIAGNOSE = env["BENCH_RT_DIAGNOSE"] ?? "auto";
const HEAP_STREAMS = number("BENCH_RT_HEAP_STREAMS", 2_000);
/** The profiled window at rest: two heartbeat intervals (major GCs at rest come every minute or so). */
const DIAGNOSE_IDLE_SECONDS = number("BENCH_RT_DIAGNOSE_IDLE_SECONDS", 2 * HEARTBEAT_S);
/** The rate of the profiled delivery step. */
const DIAGNOSE_RATE = number("BENCH_RT_DIAGNOSE_RATE", HEADLINE_RATE);
/** How long after the last publish every item must have arrived. */
const DRAIN_MS = 30_000;
const GOALS = { kbPerStream: 60, idleCorePercent: 2, p50Ms: 10, p99Ms: 50 };
const docsPath = resolve(repo, "docs/benchmarks.md");
const resultsPath = resolve(repo, "bench/results/realtime.json");
const START = "<!-- realtime:start -->";
const END = "<!-- realtime:end -->";
const REALTIME_MAIN = "services/realtime/src/main.ts";
/** Extra node flags for the realtime process (BENCH_RT_NODE_FLAGS, space-separated), e.g. to compare GC settings. */
const REALTIME_NODE_FLAGS = (process.env["BENCH_RT_NODE_FLAGS"] ?? "").split(" ").filter((f) => f !== "");

if (!env["DATABASE_URL"] || !env["REDIS_URL"]) {
  await writeSection("## Realtime\n\nNot measured: needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL; `make bench` starts them).\n");
  console.log("realtime bench skipped: DATABASE_URL and REDIS_URL are not set");
  process.exit(0);
}

// --- teardown: whatever happens, nothing of this run is left behind ---------

const { steps: cleanups, run: cleanup } = teardown();

const machine = { cpus: cpus().length, node: process.version, internalTransport, loadAverageAtStart: loadavg().map((l) => round(l)), commit: serviceCommit() };
const started = performance.now();
const step = (text: string) => console.log(`[realtime bench ${((performance.now() - started) / 1000).toFixed(1)} s] ${text}`);

try {
  await run();
} finally {
  await cleanup();
}

async function run(): Promise<void> {
  const redisUrl = env["REDIS_URL"]!;
  const prefix = `${uniqueName("benchrt")}:`;
  const referencePrefix = `${prefix}ref:`;
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  redis.on("error", () => undefined);
  cleanups.push(async () => {
    await deleteKeys(redis, `${prefix}*`);
    redis.disconnect();
  });
  const redisPid = redisServerPid(redisUrl);

  const servers: ServerProcess[] = [];
  const workers: Worker[] = [];
  cleanups.push(async () => {
    for (const worker of workers.reverse()) await worker.stop();
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
  const worker = (label: string, script: string) => {
    const w = startWorker(label, script);
    workers.push(w);
    return w;
  };
  const retire = async (w: Worker) => {
    await w.call("closeAll").catch(() => undefined);
    workers.splice(workers.indexOf(w), 1);
    await w.stop();
  };
  /** A realtime process whose inspector can be opened later (SIGUSR1) on a port known here. */
  const startRealtime = async (label: string, inspect: "later" | "now") => {
    const port = await freePort();
    const server = await start(label, REALTIME_MAIN, realtimeEnv, [...REALTIME_NODE_FLAGS, inspect === "now" ? `--inspect=127.0.0.1:${port}` : `--inspect-port=127.0.0.1:${port}`]);
    const openInspector = async (): Promise<Inspector> => {
      if (inspect === "later") server.process.kill("SIGUSR1");
      return attachInspector(port);
    };
    return { server, inspect: openInspector };
  };

  // --- auth and user ----------------------------------------------------------
  step("starting auth and user (fresh database, in-process bus)");
  const database = await freshDatabase(env["DATABASE_URL"]!, "bench_rt");
  // Dropped last, once the services using it have stopped.
  cleanups.unshift(() => database.drop());
  const shared = { ...internalListenerEnv, DATABASE_URL: database.url, REDIS_URL: redisUrl, KAFKA_BROKERS: undefined, LOG_LEVEL: "info", PAGE_TOKEN_SECRET: "bench-page-token-secret-0123456789" };
  const authServer = await start("rt-auth", "services/auth/src/main.ts", {
    ...shared,
    AUTH_PORT: "0",
    AUTH_CODE_SINK: resolve(repo, ".dev/bench-rt-codes.jsonl"),
    // A stream ends when its access token expires: the longest allowed, so none does during the run.
    AUTH_ACCESS_TOKEN_TTL: "1h",
    // The cheapest hashing allowed: a thousand sign-ups are setup, not what is measured.
    AUTH_ARGON2_MEMORY_KIB: "1024",
    AUTH_ARGON2_PASSES: "1",
    AUTH_LOGIN_FAILURES_PER_IDENTITY: "1000000",
    AUTH_LOGIN_FAILURES_PER_IP: "1000000",
  });
  const jwks = `${authServer.url}/.well-known/jwks.json`;
  // Presence is not asked for, so the realtime service never calls it; it runs because USER_URL must name one.
  const userServer = await start("rt-user", "services/user/src/main.ts", { ...shared, USER_PORT: "0", AUTH_JWKS_URL: jwks, MEDIA_URL: "http://127.0.0.1:9" });
  const auth = createClient(AuthService, createGrpcTransport({ baseUrl: authServer.url }));

  step(`signing up ${USERS} users (one login each)`);
  const password = "violet-harbour-teapot-42";
  const accounts = await inParallel(
    Array.from({ length: USERS }, (_, i) => i),
    8,
    async (i): Promise<Target> => {
      const identity = { case: "email" as const, value: `${uniqueName(`rtbench.${i}`)}@example.org` };
      const registered = await auth.register({ identity, password });
      const login = await auth.login({ identity, password });
      return { user: registered.userId.toLowerCase(), token: login.tokens?.accessToken ?? "" };
    },
  );
  const users = accounts.map((a) => a.user);
  /** Stream j is user j mod USERS's; the load generator puts streams on connections in contiguous blocks, so a connection carries different users. */
  const streamTargets = (count: number) => Array.from({ length: count }, (_, j) => accounts[j % accounts.length]!);

  const realtimeEnv = {
    REALTIME_PORT: "0",
    REDIS_URL: redisUrl,
    REALTIME_REDIS_PREFIX: prefix,
    AUTH_JWKS_URL: jwks,
    USER_URL: userServer.peerUrl,
    LOG_LEVEL: "info",
    // The service's default unless the bench is told otherwise (never inherited from the shell).
    REALTIME_HEARTBEAT: HEARTBEAT_S === 25 ? undefined : `${HEARTBEAT_S}s`,
    DATABASE_URL: undefined,
    KAFKA_BROKERS: undefined,
  };
  const processes = (extra: Record<string, number | undefined>) => ({ ...extra, redis: redisPid, "bench (orchestrator)": process.pid });
  // Once any goal is missed, every part is diagnosed (the notes then cover all of it); the idle part decides on the idle goals alone, being first.
  let anyGoalMissed = false;
  const wantDiagnosis = (goalMet: boolean) => {
    anyGoalMissed ||= !goalMet;
    return DIAGNOSE === "1" || (DIAGNOSE === "auto" && anyGoalMissed);
  };

  // --- idle streams -------------------------------------------------------------
  /** Opens the streams on `server`, then measures it at rest; `diagnose` runs with the streams still open. */
  const holdIdle = async (
    name: string,
    server: ServerProcess,
    options: { expect: "ready" | "headers"; idleSeconds: number; heartbeats: boolean; diagnose?: (result: IdleResult) => Promise<void> },
  ): Promise<IdleResult> => {
    const clients = worker(`rt-clients-${name.replace(/\W+/g, "-")}`, "bench/realtime-clients.ts");
    const pid = server.process.pid!;
    const { expect } = options;
    // Warm-up (not counted): the code paths of a stream loaded and compiled.
    await clients.call<OpenResult>("open", { url: server.url, targets: accounts.slice(0, 20), connections: 2, expect, concurrency: 20 });
    await clients.call("closeAll");
    await sleep(3_000);
    const before = memoryOf(pid);
    const clientsBefore = memoryOf(clients.pid);
    step(`${name}: opening ${IDLE_STREAMS} streams over ${IDLE_CONNECTIONS} connections`);
    const openMeter = cpuMeter(processes({ server: pid, "load generator": clients.pid }));
    openMeter.start();
    const opened = await clients.call<OpenResult>("open", { url: server.url, targets: streamTargets(IDLE_STREAMS), connections: IDLE_CONNECTIONS, expect, concurrency: 200 }, 600_000);
    const openCpu = openMeter.stop();
    if (opened.failed > 0) console.warn(`${name}: ${opened.failed} streams failed to open, first: ${opened.firstError}`);
    step(`${name}: ${opened.opened} open in ${opened.openMs} ms (+${opened.connectMs} ms connecting); settling 5 s`);
    await sleep(5_000);
    const afterOpen = memoryOf(pid);
    let steadyAfterMs = 0;
    if (options.heartbeats) {
      // A stream's first heartbeat comes once it has been silent for an interval after `ready`; from then on one per interval.
      step(`${name}: waiting until every stream has had its first heartbeat (steady state)`);
      const waitStarted = performance.now();
      await waitFor("a heartbeat on every stream", async () => (await clients.call<Stats>("stats")).heartbeats.min >= 1, 3 * HEARTBEAT_S * 1000, 1_000).catch((error: unknown) =>
        console.warn(`${name}: ${(error as Error).message}`),
      );
      steadyAfterMs = Math.round(performance.now() - waitStarted);
    }
    await clients.call("resetHeartbeats");
    step(`${name}: at rest for ${options.idleSeconds} s`);
    const meter = cpuMeter(processes({ server: pid, "load generator": clients.pid }));
    const waitedBefore = runQueueWaitMs(pid);
    const threadsBefore = threadCpuMs(pid);
    meter.start();
    await sleep(options.idleSeconds * 1000);
    const cpu = meter.stop();
    const threadsAfter = threadCpuMs(pid);
    const afterIdle = memoryOf(pid);
    const stats = await clients.call<Stats>("stats");
    const clientsAfter = memoryOf(clients.pid);
    const perStreamKiB = (after: Memory) => round((after.rssKiB - before.rssKiB) / Math.max(1, opened.opened), 1);
    const corePercent = (label: string) => round(((cpu.msByProcess[label] ?? Number.NaN) / cpu.wallMs) * 100, 2);
    const result: IdleResult = {
      name,
      streams: IDLE_STREAMS,
      connections: IDLE_CONNECTIONS,
      opened: opened.opened,
      failed: opened.failed,
      firstError: opened.firstError,
      openMs: opened.openMs,
      connectMs: opened.connectMs,
      openCpuMsPerStream: Object.fromEntries(Object.entries(openCpu.msByProcess).map(([label, ms]) => [label, round(ms / Math.max(1, opened.opened), 3)])),
      memory: { before, afterOpen, afterIdle },
      kibPerStream: perStreamKiB(afterOpen),
      kibPerStreamAfterRest: perStreamKiB(afterIdle),
      anonKibPerStream: round((afterOpen.anonKiB - before.anonKiB) / Math.max(1, opened.opened), 1),
      steadyAfterMs,
      idleSeconds: options.idleSeconds,
      idleWallMs: cpu.wallMs,
      idleCpuMs: cpu.msByProcess,
      serverCorePercent: corePercent("server"),
      serverRunQueueWaitMs: Math.round(runQueueWaitMs(pid) - waitedBefore),
      serverCorePercentByThread: Object.fromEntries(
        Object.entries(threadsAfter).map(([thread, ms]) => [thread, round(((ms - (threadsBefore[thread] ?? 0)) / cpu.wallMs) * 100, 2)]).filter(([, percent]) => (percent as number) > 0),
      ),
      loadGeneratorCorePercent: corePercent("load generator"),
      redisCorePercent: corePercent("redis"),
      machineBusy: cpu.machineBusy,
      othersCorePercent: othersCorePercent(cpu),
      heldAtEnd: stats.held,
      endedDuringRun: stats.ended,
      endings: stats.endings,
      heartbeatsPerStream: { min: stats.heartbeats.min, max: stats.heartbeats.max, mean: round(stats.heartbeats.total / Math.max(1, stats.held), 2) },
      loadGeneratorKibPerStream: round((clientsAfter.rssKiB - clientsBefore.rssKiB) / Math.max(1, opened.opened), 1),
    };
    step(
      `${name}: ${result.kibPerStream} KiB/stream after opening, ${result.kibPerStreamAfterRest} after the rest (RSS ${mib(before.rssKiB)} → ${mib(afterOpen.rssKiB)} → ${mib(afterIdle.rssKiB)} MiB); ` +
        `server ${result.serverCorePercent} % of a core at rest, load generator ${result.loadGeneratorCorePercent} %, redis ${result.redisCorePercent} %, others ${result.othersCorePercent} %; ` +
        `${stats.held} held, heartbeats/stream in the window ${result.heartbeatsPerStream.min}–${result.heartbeatsPerStream.max}`,
    );
    await options.diagnose?.(result);
    await retire(clients);
    return result;
  };

  step("idle: the realtime service");
  const idleRealtime = await startRealtime("rt-realtime-idle", "later");
  const idle: IdleResult[] = [];
  let idleDiagnosis: IdleDiagnosis | undefined;
  idle.push(
    await holdIdle("realtime", idleRealtime.server, {
      expect: "ready",
      idleSeconds: IDLE_SECONDS,
      heartbeats: true,
      diagnose: async (result) => {
        if (!wantDiagnosis(goalsMet(result, []).memory && goalsMet(result, []).idleCpu)) return;
        step(`diagnosis: the same process's inspector; CPU profile over ${DIAGNOSE_IDLE_SECONDS} s at rest, then a full GC`);
        idleDiagnosis = await diagnosing("at rest", async () => {
          const inspector = await idleRealtime.inspect();
          try {
            return await diagnoseIdle(inspector, idleRealtime.server.process.pid!, result);
          } finally {
            inspector.close();
          }
        });
      },
    }),
  );
  await stop(idleRealtime.server);
  step("idle: the bare node:http2 reference");
  const bare = await start("rt-bare", "bench/realtime-bare-server.ts", {});
  idle.push(await holdIdle("bare node:http2", bare, { expect: "headers", idleSeconds: BARE_IDLE_SECONDS, heartbeats: false }));
  await stop(bare);

  // --- publish → delivered ----------------------------------------------------
  step(`live: ${USERS} users, one stream each over ${LIVE_CONNECTIONS} connections`);
  const liveRealtime = await startRealtime("rt-realtime-live", "later");
  const receivers = worker("rt-clients-live", "bench/realtime-clients.ts");
  const liveOpened = await receivers.call<OpenResult>("open", { url: liveRealtime.server.url, targets: accounts, connections: LIVE_CONNECTIONS, expect: "ready", concurrency: 100 }, 300_000);
  if (liveOpened.opened !== USERS) throw new Error(`live: only ${liveOpened.opened} of ${USERS} streams opened (${liveOpened.firstError})`);
  const subscriber = worker("rt-ref-subscriber", "bench/realtime-clients.ts");
  await subscriber.call("subscribeRedis", { url: redisUrl, channels: users.map((user) => ({ user, channel: `${referencePrefix}${user}` })) });
  const publisher = worker("rt-publisher", "bench/realtime-publisher.ts");
  await publisher.call("init", { url: redisUrl, prefix, users, referencePrefix });
  await publisher.call("warm");
  await sleep(2_000);

  const liveStep = async (mode: "realtime" | "redis", rate: number, seconds: number, server: ServerProcess, receiver: Worker): Promise<LiveRow> => {
    const label = `${mode === "realtime" ? "rt" : "ref"}${rate}x${Math.round(performance.now())}`;
    await receiver.call("beginStep", { label });
    const meter = cpuMeter(processes({ realtime: server.process.pid, publisher: publisher.pid, receiver: receiver.pid }));
    const waitedBefore = runQueueWaitMs(server.process.pid);
    meter.start();
    const sent = await publisher.call<RunResult>("run", { mode, label, rate, seconds }, (seconds + 60) * 1000);
    const drained = await waitFor("every item delivered", async () => (await receiver.call<number>("stepCount")) >= sent.published, DRAIN_MS, 50).then(
      () => true,
      () => false,
    );
    const cpu = meter.stop();
    const waited = runQueueWaitMs(server.process.pid) - waitedBefore;
    const got = await receiver.call<StepResult>("endStep");
    const latencies = Array.from(got.latenciesMs).sort((a, b) => a - b);
    const mismatched = Object.entries(sent.lastByUser).filter(([user, last]) => got.lastByUser[user] !== last).length;
    const corePercent = (label: string) => round(((cpu.msByProcess[label] ?? Number.NaN) / cpu.wallMs) * 100, 1);
    const row: LiveRow = {
      path: mode === "realtime" ? "realtime (publishEvent → Subscribe)" : "reference (raw PUBLISH → SUBSCRIBE)",
      mode,
      rate,
      seconds,
      published: sent.published,
      publishErrors: sent.errors,
      duplicatesAtPublish: sent.duplicates,
      sentPerSecond: sent.sentPerSecond,
      publisherMaxLagMs: sent.maxLagMs,
      publishCallP50Ms: sent.callP50Ms,
      publishCallP99Ms: sent.callP99Ms,
      delivered: got.received,
      allDelivered: drained && got.received === sent.published,
      orderViolations: got.violations,
      firstViolations: got.firstViolations,
      strays: got.strays,
      usersWhoseLastOffsetDiffers: mismatched,
      exactlyOnceInOrder: drained && got.received === sent.published && got.violations === 0 && got.strays === 0 && mismatched === 0 && sent.duplicates === 0,
      p50Ms: round(quantile(latencies, 0.5), 2),
      p99Ms: round(quantile(latencies, 0.99), 2),
      maxMs: round(latencies.at(-1) ?? Number.NaN, 2),
      windowMs: cpu.wallMs,
      corePercent: {
        realtime: mode === "realtime" ? corePercent("realtime") : Number.NaN,
        publisher: corePercent("publisher"),
        receiver: corePercent("receiver"),
        redis: corePercent("redis"),
        others: othersCorePercent(cpu),
      },
      realtimeRunQueueWaitPercent: mode === "realtime" ? round((waited / cpu.wallMs) * 100, 1) : Number.NaN,
      cpuMsPer1kDeliveries: Object.fromEntries(
        Object.entries(cpu.msByProcess)
          .filter(([label]) => mode === "realtime" || label !== "realtime")
          .map(([label, ms]) => [label, round((ms / Math.max(1, got.received)) * 1000, 1)]),
      ),
      machineBusy: cpu.machineBusy,
    };
    step(
      `${mode} ${rate}/s × ${seconds} s: ${row.delivered}/${row.published} delivered, p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms, max ${row.maxMs} ms; ` +
        `realtime ${row.corePercent.realtime} % (waiting for a CPU ${row.realtimeRunQueueWaitPercent} %), publisher ${row.corePercent.publisher} %, receiver ${row.corePercent.receiver} %, ` +
        `redis ${row.corePercent.redis} %, others ${row.corePercent.others} % of a core` +
        (row.exactlyOnceInOrder ? "" : ` — NOT exactly once in order (${row.orderViolations} violations, ${mismatched} users differ, first: ${row.firstViolations.join("; ")})`),
    );
    await sleep(1_000);
    return row;
  };

  // Warm-up (not reported): both paths' code compiled before the first measured step.
  step("live: warm-up, 1,000/s for 2 s on each path");
  await liveStep("redis", 1_000, 2, liveRealtime.server, subscriber);
  await liveStep("realtime", 1_000, 2, liveRealtime.server, receivers);

  const live: LiveRow[] = [];
  let failedAt: number | undefined;
  for (const rate of STEP_RATES) {
    const seconds = rate === HEADLINE_RATE ? HEADLINE_SECONDS : STEP_SECONDS;
    live.push(await liveStep("redis", rate, seconds, liveRealtime.server, subscriber));
    if (failedAt !== undefined) continue; // the realtime path already fell over at a lower rate
    const row = await liveStep("realtime", rate, seconds, liveRealtime.server, receivers);
    live.push(row);
    if (!row.allDelivered || row.p99Ms > 2_000) failedAt = rate;
  }

  let liveDiagnosis: LiveDiagnosis | undefined;
  if (wantDiagnosis(goalsMet(idle[0]!, live).latency)) {
    step(`diagnosis: the live process's inspector; CPU profile over a ${DIAGNOSE_RATE}/s step`);
    liveDiagnosis = await diagnosing("delivering", async () => {
      const inspector = await liveRealtime.inspect();
      try {
        const gcs = await countGcs(inspector);
        await inspector.send("HeapProfiler.enable");
        await inspector.send("HeapProfiler.startSampling", { samplingInterval: 16_384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
        await inspector.startCpuProfile();
        const row = await liveStep("realtime", DIAGNOSE_RATE, STEP_SECONDS, liveRealtime.server, receivers);
        const cpuProfile = summarizeCpuProfile(await inspector.stopCpuProfile());
        const { profile: allocations } = await inspector.send<{ profile: { head: HeapSamplingNode } }>("HeapProfiler.getSamplingProfile");
        await inspector.send("HeapProfiler.stopSampling");
        const allocated = summarizeHeapSampling(allocations.head);
        return {
          ...cpuProfile,
          allocated: { ...allocated, total: round(allocated.total / 1024 / Math.max(1, row.delivered), 1) },
          gc: await gcs.read(),
          rate: DIAGNOSE_RATE,
          seconds: STEP_SECONDS,
          p50Ms: row.p50Ms,
          p99Ms: row.p99Ms,
          realtimeCorePercent: row.corePercent.realtime,
        };
      } finally {
        inspector.close();
      }
    });
  }
  await retire(receivers);
  await retire(subscriber);
  await publisher.call("close");
  await retire(publisher);
  await stop(liveRealtime.server);

  // --- memory by allocation site ------------------------------------------------
  let heapDiagnosis: HeapDiagnosis | undefined;
  if (wantDiagnosis(goalsMet(idle[0]!, live).memory)) {
    step(`diagnosis: ${HEAP_STREAMS} streams opened on a process under the sampling heap profiler`);
    heapDiagnosis = await diagnosing("memory", async () => {
      const heapRealtime = await startRealtime("rt-realtime-heap", "now");
      const inspector = await heapRealtime.inspect();
      const clients = worker("rt-clients-heap", "bench/realtime-clients.ts");
      try {
        const pid = heapRealtime.server.process.pid!;
        await clients.call<OpenResult>("open", { url: heapRealtime.server.url, targets: accounts.slice(0, 20), connections: 2, expect: "ready", concurrency: 20 });
        await clients.call("closeAll");
        await sleep(2_000);
        const before = await memoryAfterGc(inspector, pid);
        await inspector.send("HeapProfiler.startSampling", { samplingInterval: 8_192 });
        const opened = await clients.call<OpenResult>("open", { url: heapRealtime.server.url, targets: streamTargets(HEAP_STREAMS), connections: Math.ceil(HEAP_STREAMS / (IDLE_STREAMS / IDLE_CONNECTIONS)), expect: "ready", concurrency: 200 }, 300_000);
        await sleep(3_000);
        const after = await memoryAfterGc(inspector, pid);
        const { profile } = await inspector.send<{ profile: { head: HeapSamplingNode } }>("HeapProfiler.getSamplingProfile");
        await inspector.send("HeapProfiler.stopSampling");
        const per = (bytes: number) => round(bytes / 1024 / Math.max(1, opened.opened), 1);
        const heap = summarizeHeapSampling(profile.head);
        return {
          streams: opened.opened,
          kibPerStream: {
            rssAfterGc: round((after.vmRssKiB - before.vmRssKiB) / Math.max(1, opened.opened), 1),
            heapUsed: per(after.heapUsed - before.heapUsed),
            external: per(after.external - before.external),
            outsideTheHeap: round((after.vmRssKiB - before.vmRssKiB) / Math.max(1, opened.opened) - (after.heapTotal - before.heapTotal) / 1024 / Math.max(1, opened.opened), 1),
            sampled: per(heap.total),
          },
          byAllocation: heap,
        };
      } finally {
        inspector.close();
        await retire(clients);
        await stop(heapRealtime.server);
      }
    });
  }

  await report({ idle, live, diagnosis: { idle: idleDiagnosis, live: liveDiagnosis, heap: heapDiagnosis } });
}

/** A diagnosis that fails (an inspector port taken meanwhile, a profiler error) is reported and left out; the measured figures stand. */
async function diagnosing<T>(what: string, work: () => Promise<T>): Promise<T | undefined> {
  try {
    return await work();
  } catch (error) {
    console.warn(`diagnosis (${what}) failed, left out: ${(error as Error).message}`);
    return undefined;
  }
}

/** At rest, DIAGNOSE_IDLE_SECONDS under the CPU and the allocation profilers; then what a full GC leaves of the heap. */
async function diagnoseIdle(inspector: Inspector, pid: number, measured: IdleResult): Promise<IdleDiagnosis> {
  const gcs = await countGcs(inspector);
  await inspector.send("HeapProfiler.enable");
  // Every allocation sampled, the collected ones too: who makes the garbage at rest.
  await inspector.send("HeapProfiler.startSampling", { samplingInterval: 16_384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  await inspector.startCpuProfile();
  await sleep(DIAGNOSE_IDLE_SECONDS * 1000);
  const cpu = summarizeCpuProfile(await inspector.stopCpuProfile());
  const gc = await gcs.read();
  const { profile: allocations } = await inspector.send<{ profile: { head: HeapSamplingNode } }>("HeapProfiler.getSamplingProfile");
  await inspector.send("HeapProfiler.stopSampling");
  const allocated = summarizeHeapSampling(allocations.head);
  const beforeGc = { ...(await inspector.evaluate<NodeJS.MemoryUsage>("process.memoryUsage()")), vmRssKiB: memoryOf(pid).rssKiB };
  const afterGc = await memoryAfterGc(inspector, pid);
  const per = (bytes: number) => round(bytes / 1024 / Math.max(1, measured.opened), 1);
  return {
    cpu,
    gc,
    allocated: { ...allocated, total: round(allocated.total / 2 ** 20 / DIAGNOSE_IDLE_SECONDS, 1) },
    seconds: DIAGNOSE_IDLE_SECONDS,
    memory: { beforeGc, afterGc },
    heapUsedMibAfterGc: round(afterGc.heapUsed / 2 ** 20, 1),
    garbageKibPerStream: per(beforeGc.heapUsed - afterGc.heapUsed),
    rssKibPerStreamAfterGc: round((afterGc.vmRssKiB - measured.memory.before.rssKiB) / Math.max(1, measured.opened), 1),
  };
}

async function memoryAfterGc(inspector: Inspector, pid: number): Promise<NodeJS.MemoryUsage & { vmRssKiB: number }> {
  await inspector.send("HeapProfiler.enable");
  await inspector.send("HeapProfiler.collectGarbage");
  return { ...(await inspector.evaluate<NodeJS.MemoryUsage>("process.memoryUsage()")), vmRssKiB: memoryOf(pid).rssKiB };
}

// --- helpers ---------------------------------------------------------------------

interface Memory {
  rssKiB: number;
  anonKiB: number;
}

/** The commit measured, and whether the realtime service or the runtime differ from it (the services are edited while benchmarks run). */
function serviceCommit(): string {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repo, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "services/realtime", "services/runtime"], { cwd: repo, encoding: "utf8" }).trim() !== "";
    return dirty ? `${head} + uncommitted changes in services/realtime or services/runtime` : head;
  } catch {
    return "unknown";
  }
}

/** CPU used over a window by every process of the machine not measured here, % of one core. */
function othersCorePercent(cpu: { msByProcess: Record<string, number>; machineBusy: number; wallMs: number }): number {
  const ours = Object.values(cpu.msByProcess).reduce((sum, ms) => sum + ms, 0);
  return Math.max(0, Math.round(((cpu.machineBusy * machine.cpus * cpu.wallMs - ours) / cpu.wallMs) * 100));
}

/** CPU time of a process's threads by name (MainThread, V8Worker, …), ms, from /proc/<pid>/task. */
function threadCpuMs(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        const name = readFileSync(`/proc/${pid}/task/${task}/comm`, "utf8").trim();
        const fields = readFileSync(`/proc/${pid}/task/${task}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
        out[name] = (out[name] ?? 0) + (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, 100 ticks/s
      } catch {
        // the thread ended
      }
    }
  } catch {
    // not Linux
  }
  return out;
}

/** How long the process's main thread has been runnable but waiting for a CPU, ms (/proc/<pid>/schedstat). */
function runQueueWaitMs(pid: number | undefined): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[1]) / 1e6;
  } catch {
    return Number.NaN;
  }
}

/** VmRSS and RssAnon of a process, from /proc/<pid>/status. */
function memoryOf(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
  return { rssKiB: field("VmRSS"), anonKiB: field("RssAnon") };
}

/** The pid of the Redis server that infra.sh started, when REDIS_URL is that one (its CPU is then reported too). */
function redisServerPid(url: string): number | undefined {
  try {
    const dir = resolve(env["AVIARY_INFRA_DIR"] ?? resolve(repo, ".infra"), "redis");
    if (readFileSync(resolve(dir, "port"), "utf8").trim() !== new URL(url).port) return undefined;
    const pid = Number(readFileSync(resolve(dir, "redis.pid"), "utf8").trim());
    return readFileSync(`/proc/${pid}/comm`, "utf8").startsWith("redis") ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = "0";
  for (let rounds = 0; rounds < 10_000; rounds += 1) {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 5_000);
    if (keys.length > 0) await redis.unlink(...keys);
    cursor = next;
    if (cursor === "0") return;
  }
}

interface IdleResult {
  name: string;
  streams: number;
  connections: number;
  opened: number;
  failed: number;
  firstError: string | undefined;
  openMs: number;
  connectMs: number;
  /** CPU per stream while opening them, by process. */
  openCpuMsPerStream: Record<string, number>;
  memory: { before: Memory; afterOpen: Memory; afterIdle: Memory };
  /** (RSS 5 s after the last stream opened − RSS before) / streams. */
  kibPerStream: number;
  /** The same at the end of the rest window (garbage from the work at rest is collected lazily). */
  kibPerStreamAfterRest: number;
  anonKibPerStream: number;
  /** How long after opening every stream had had its first heartbeat. */
  steadyAfterMs: number;
  idleSeconds: number;
  idleWallMs: number;
  idleCpuMs: Record<string, number>;
  serverCorePercent: number;
  serverRunQueueWaitMs: number;
  /** The server's CPU at rest by thread kind (the JS main thread; V8's workers: parallel and concurrent GC, compilation). */
  serverCorePercentByThread: Record<string, number>;
  loadGeneratorCorePercent: number;
  redisCorePercent: number;
  machineBusy: number;
  /** % of one core used by processes not in this run (the machine is shared). */
  othersCorePercent: number;
  heldAtEnd: number;
  endedDuringRun: number;
  endings: Record<string, number>;
  heartbeatsPerStream: { min: number; max: number; mean: number };
  loadGeneratorKibPerStream: number;
}

interface LiveRow {
  path: string;
  mode: "realtime" | "redis";
  rate: number;
  seconds: number;
  published: number;
  publishErrors: number;
  duplicatesAtPublish: number;
  sentPerSecond: number;
  publisherMaxLagMs: number;
  publishCallP50Ms: number;
  publishCallP99Ms: number;
  delivered: number;
  allDelivered: boolean;
  orderViolations: number;
  firstViolations: string[];
  strays: number;
  usersWhoseLastOffsetDiffers: number;
  exactlyOnceInOrder: boolean;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  windowMs: number;
  /** % of one core over the window; `others`: every process of the machine not in this run (other work sharing it). */
  corePercent: { realtime: number; publisher: number; receiver: number; redis: number; others: number };
  /** Share of the window the realtime process's main thread was runnable but not running (CPU contention). */
  realtimeRunQueueWaitPercent: number;
  cpuMsPer1kDeliveries: Record<string, number>;
  machineBusy: number;
}

type CpuBreakdown = Breakdown & { gcPercent: number; programPercent: number };

interface IdleDiagnosis {
  cpu: CpuBreakdown;
  /** Collections in the profiled window, by kind. */
  gc: GcCounts;
  /** What was allocated in the window (collected or not), by allocating function; total in MiB/s (sampled estimate). */
  allocated: Breakdown;
  seconds: number;
  memory: { beforeGc: NodeJS.MemoryUsage & { vmRssKiB: number }; afterGc: NodeJS.MemoryUsage & { vmRssKiB: number } };
  heapUsedMibAfterGc: number;
  garbageKibPerStream: number;
  rssKibPerStreamAfterGc: number;
}

type LiveDiagnosis = CpuBreakdown & {
  /** What was allocated over the step (collected or not), by allocating function; total in KiB per delivery (sampled estimate). */
  allocated: Breakdown;
  gc: GcCounts; rate: number; seconds: number; p50Ms: number; p99Ms: number; realtimeCorePercent: number };

interface HeapDiagnosis {
  streams: number;
  kibPerStream: { rssAfterGc: number; heapUsed: number; external: number; outsideTheHeap: number; sampled: number };
  /** Live heap bytes sampled after the streams opened (and a full GC), by allocating function. */
  byAllocation: Breakdown;
}

/** A step that keeps the latency goal's p99 with every item delivered exactly once, in order. */
function keeps(r: LiveRow): boolean {
  return r.exactlyOnceInOrder && r.p99Ms <= GOALS.p99Ms;
}

function goalsMet(rt: IdleResult, live: LiveRow[]): { memory: boolean; idleCpu: boolean; latency: boolean } {
  const headline = live.find((r) => r.mode === "realtime" && r.rate === HEADLINE_RATE);
  return {
    // KiB → KB (1 KiB = 1.024 KB)
    memory: rt.opened === IDLE_STREAMS && rt.kibPerStream * 1.024 <= GOALS.kbPerStream,
    idleCpu: rt.opened === IDLE_STREAMS && rt.heldAtEnd === IDLE_STREAMS && rt.serverCorePercent < GOALS.idleCorePercent,
    latency: headline !== undefined && headline.exactlyOnceInOrder && headline.p50Ms <= GOALS.p50Ms && headline.p99Ms <= GOALS.p99Ms,
  };
}

// --- output ------------------------------------------------------------------------

async function report(results: {
  idle: IdleResult[];
  live: LiveRow[];
  diagnosis: { idle: IdleDiagnosis | undefined; live: LiveDiagnosis | undefined; heap: HeapDiagnosis | undefined };
}): Promise<void> {
  const at = new Date().toISOString();
  const { idle, live, diagnosis } = results;
  const [rt, bareRow] = idle as [IdleResult, IdleResult];
  const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a) ? round(a / b, 2) : null);
  const rtRows = live.filter((r) => r.mode === "realtime");
  const refRows = live.filter((r) => r.mode === "redis");
  const headline = rtRows.find((r) => r.rate === HEADLINE_RATE);
  const headlineRef = refRows.find((r) => r.rate === HEADLINE_RATE);
  /** The highest rate up to which every step kept the goal (a lower rate failing ends the count, even if a higher one passed). */
  const highest = (rows: LiveRow[]) => {
    let best: number | null = null;
    for (const r of [...rows].sort((a, b) => a.rate - b.rate)) {
      if (!keeps(r)) break;
      best = r.rate;
    }
    return best;
  };
  const met = goalsMet(rt, live);
  const summary = {
    idle: {
      kibPerStream: rt.kibPerStream,
      kibPerStreamAfterRest: rt.kibPerStreamAfterRest,
      bareKibPerStream: bareRow.kibPerStream,
      memoryVsBare: ratio(rt.kibPerStream, bareRow.kibPerStream),
      serverCorePercentAtRest: rt.serverCorePercent,
      bareCorePercentAtRest: bareRow.serverCorePercent,
      cpuVsBare: ratio(rt.serverCorePercent, bareRow.serverCorePercent),
      memoryGoalMet: met.memory,
      cpuGoalMet: met.idleCpu,
    },
    live: {
      rate: HEADLINE_RATE,
      p50Ms: headline?.p50Ms ?? null,
      p99Ms: headline?.p99Ms ?? null,
      referenceP50Ms: headlineRef?.p50Ms ?? null,
      referenceP99Ms: headlineRef?.p99Ms ?? null,
      p50VsReference: headline && headlineRef ? ratio(headline.p50Ms, headlineRef.p50Ms) : null,
      p99VsReference: headline && headlineRef ? ratio(headline.p99Ms, headlineRef.p99Ms) : null,
      p50MinusReferenceMs: headline && headlineRef ? round(headline.p50Ms - headlineRef.p50Ms, 2) : null,
      p99MinusReferenceMs: headline && headlineRef ? round(headline.p99Ms - headlineRef.p99Ms, 2) : null,
      exactlyOnceInOrder: rtRows.every((r) => r.exactlyOnceInOrder),
      latencyGoalMet: met.latency,
      highestRateWithP99Within50Ms: highest(rtRows),
      referenceHighestRateWithP99Within50Ms: highest(refRows),
    },
  };
  const json = {
    at,
    stack: "auth + user (fresh PostgreSQL database, in-process bus), realtime on the shared Redis; services and load generators as child processes",
    ...machine,
    goals: GOALS,
    summary,
    idle,
    live,
    diagnosis,
  };
  await mkdir(resolve(repo, "bench/results"), { recursive: true });
  await writeFile(resultsPath, `${JSON.stringify(json, null, 2)}\n`);

  const fmt = (value: number | null | undefined) => (value === null || value === undefined || Number.isNaN(value) ? "—" : String(value));
  const goal = (ok: boolean) => (ok ? "met" : "**not met**");
  const s = summary;
  const idleTable = [
    "| server | streams held (of) | connections | open time | RSS before → after opening → after the rest, MiB | KiB per stream (after opening / after the rest) | CPU at rest, % of a core | Redis at rest | heartbeats per stream in the window | load generator at rest | others on the machine |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
    ...idle.map(
      (r) =>
        `| ${r.name} | ${r.heldAtEnd} (${r.streams}) | ${r.connections} | ${(r.openMs / 1000).toFixed(1)} s | ${mib(r.memory.before.rssKiB)} → ${mib(r.memory.afterOpen.rssKiB)} → ${mib(r.memory.afterIdle.rssKiB)} | ${r.kibPerStream} / ${r.kibPerStreamAfterRest} | ${r.serverCorePercent} (over ${r.idleSeconds} s) | ${fmt(r.redisCorePercent)} % | ${r.name === "realtime" ? `${r.heartbeatsPerStream.min}–${r.heartbeatsPerStream.max}` : "— (none sent)"} | ${r.loadGeneratorCorePercent} % | ${r.othersCorePercent} % |`,
    ),
    `| **realtime ÷ bare** | | | | | **${fmt(s.idle.memoryVsBare)}** / ${fmt(ratio(rt.kibPerStreamAfterRest, bareRow.kibPerStreamAfterRest))} | **${fmt(s.idle.cpuVsBare)}**${s.idle.cpuVsBare === null ? " (the bare server used no measurable CPU)" : ""} | | | | |`,
  ].join("\n");
  const liveTable = [
    "| path | rate/s × s | sent/s | delivered / published | exactly once, in offset order | p50 ms | p99 ms | max ms | p99 ≤ 50 ms | realtime (waiting for a CPU) | publisher | receiver | Redis | others on the machine |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...STEP_RATES.flatMap((rate) =>
      live
        .filter((r) => r.rate === rate)
        .map(
          (r) =>
            `| ${r.mode === "realtime" ? "**realtime**" : "reference: PUBLISH → SUBSCRIBE"} | ${r.rate} × ${r.seconds} | ${r.sentPerSecond} | ${r.delivered} / ${r.published}${r.publishErrors > 0 ? ` (${r.publishErrors} publish errors)` : ""} | ${r.exactlyOnceInOrder ? "yes" : `**no** (${r.orderViolations} out of order, ${r.usersWhoseLastOffsetDiffers} users short)`} | ${fmt(r.p50Ms)} | ${fmt(r.p99Ms)} | ${fmt(r.maxMs)} | ${keeps(r) ? "yes" : "no"} | ${r.mode === "realtime" ? `${r.corePercent.realtime} % (${fmt(r.realtimeRunQueueWaitPercent)} %)` : "—"} | ${r.corePercent.publisher} % | ${r.corePercent.receiver} % | ${fmt(r.corePercent.redis)} % | ${r.corePercent.others} % |`,
        ),
    ),
  ].join("\n");
  const perDelivery = [
    "| path | rate/s | CPU ms per 1,000 deliveries, by process |",
    "|---|---|---|",
    ...live.map(
      (r) =>
        `| ${r.mode === "realtime" ? "realtime" : "reference"} | ${r.rate} | ${Object.entries(r.cpuMsPer1kDeliveries)
          .filter(([label]) => !label.startsWith("bench"))
          .sort(([, a], [, b]) => b - a)
          .map(([label, ms]) => `${label} ${ms}`)
          .join(", ")} |`,
    ),
  ].join("\n");
  const tables = (b: Breakdown, unit: string) =>
    `| where the code lives | ${unit} |\n|---|---|\n${b.byArea.map((a) => `| ${a.area} | ${a.percent} |`).join("\n")}\n\n` +
    `| function (self) | ${unit} |\n|---|---|\n${b.topFunctions.map((f) => `| \`${f.fn.replace(/\|/g, "\\|")}\` | ${f.percent} |`).join("\n")}\n`;
  const parts: string[] = [];
  const { idle: di, live: dl, heap: dh } = diagnosis;
  if (dh !== undefined) {
    const k = dh.kibPerStream;
    parts.push(
      `**Memory** (${dh.streams.toLocaleString("en")} streams opened on a process of their own under the sampling heap profiler, then a full GC): RSS grew by ${k.rssAfterGc} KiB per stream, ` +
        `of which the V8 heap in use ${k.heapUsed} KiB and buffers outside it (\`external\`) ${k.external} KiB; ${k.outsideTheHeap} KiB is outside the V8 heap altogether (nghttp2's per-stream state, malloc).\n` +
        `Live heap by the function that allocated it (${k.sampled} KiB per stream sampled):\n\n${tables(dh.byAllocation, "% of live bytes")}`,
    );
  }
  if (di !== undefined) {
    parts.push(
      `**At rest, the measured process** (its inspector opened once the figures above were taken): before a forced full GC its heap had ${mib(di.memory.beforeGc.heapTotal / 1024)} MiB committed for ${mib(di.memory.beforeGc.heapUsed / 1024)} MiB in use ` +
        `(RSS ${mib(di.memory.beforeGc.vmRssKiB)} MiB); the GC freed ${di.garbageKibPerStream} KiB per stream and V8 returned the pages, leaving ${di.heapUsedMibAfterGc} MiB in use and RSS ${di.rssKibPerStreamAfterGc} KiB per stream above where it started ` +
        `(against ${rt.kibPerStream} KiB after opening and ${rt.kibPerStreamAfterRest} KiB after the rest): what RSS gains at rest is heap V8 keeps committed between major GCs, and garbage awaiting one, not live data.\n` +
        `CPU over ${di.seconds} s at rest (${di.seconds / HEARTBEAT_S} heartbeat intervals, ${di.cpu.total} ms busy; garbage collector ${di.cpu.gcPercent} %, \`(program)\` — native work outside JS: syscalls, nghttp2, libuv — ${di.cpu.programPercent} %; ` +
        `collections in the window: ${gcText(di.gc)}):\n\n${tables(di.cpu, "% of busy time")}\n` +
        `What was allocated in that window (about ${di.allocated.total} MiB/s, sampled, the collected objects included), by the function that allocated it — the garbage the collector is busy with:\n\n${tables(di.allocated, "% of bytes allocated")}`,
    );
  }
  if (dl !== undefined) {
    parts.push(
      `**Delivering** (the live process once more, ${dl.rate}/s for ${dl.seconds} s under the CPU profiler: ${dl.total} ms busy, realtime at ${dl.realtimeCorePercent} % of a core, p50 ${dl.p50Ms} ms, p99 ${dl.p99Ms} ms with the profiler on; ` +
        `garbage collector ${dl.gcPercent} %, \`(program)\` ${dl.programPercent} %; collections: ${gcText(dl.gc)}):\n\n${tables(dl, "% of busy time")}\n` +
        `Allocated over that step: about ${dl.allocated.total} KiB per delivery (sampled, the collected objects included), by the function that allocated it:\n\n${tables(dl.allocated, "% of bytes allocated")}`,
    );
  }
  const areaShare = (b: Breakdown | undefined, test: (area: string) => boolean) => round((b?.byArea ?? []).filter((a) => test(a.area)).reduce((sum, a) => sum + a.percent, 0), 1);
  const reading: string[] = [];
  reading.push(
    `a held stream costs ${rt.kibPerStream} KiB of RSS once opened, ${fmt(s.idle.memoryVsBare)}× the bare transport's ${bareRow.kibPerStream} KiB` +
      (dh !== undefined
        ? `; after a full GC about ${dh.kibPerStream.rssAfterGc} KiB remain, ${dh.kibPerStream.heapUsed} KiB of it JS heap, ${areaShare(dh.byAllocation, (a) => a.startsWith("@connectrpc"))} % of which connect's streaming response allocated ` +
          `(its down-levelled async generators — one per stage between the handler and the socket, each with its own closures and promises) and ${areaShare(dh.byAllocation, (a) => a.startsWith("services/runtime"))} % the runtime's interceptors wrapping the stream`
        : ""),
  );
  const scavenge = di?.gc["scavenge"];
  reading.push(
    `at rest the service uses ${rt.serverCorePercent} % of a core (by thread: ${Object.entries(rt.serverCorePercentByThread).sort(([, a], [, b]) => b - a).map(([thread, percent]) => `${thread} ${percent} %`).join(", ")}; V8Worker threads run parallel scavenges and concurrent marking)` +
      (di !== undefined
        ? `: of the profiled busy time ${di.cpu.gcPercent} % is garbage collection${scavenge ? ` (${scavenge.count} scavenges in ${di.seconds} s, ${round(scavenge.ms / scavenge.count, 1)} ms each on a heap holding ${di.heapUsedMibAfterGc} MiB of streams)` : ""}, ` +
          `${di.cpu.programPercent} % native work (nghttp2 framing, socket writes) and the rest JS — connect's pipeline carrying each heartbeat through its stages, ioredis encoding the presence refresh (${areaShare(di.allocated, (a) => a === "ioredis")} % of what is allocated at rest)`
        : ""),
  );
  if (headline !== undefined && headlineRef !== undefined) {
    reading.push(
      `a delivery at ${HEADLINE_RATE}/s costs the service ${fmt(headline.cpuMsPer1kDeliveries["realtime"])} µs of CPU, against ${fmt(headlineRef.cpuMsPer1kDeliveries["receiver"])} µs for the reference's ioredis subscriber to receive one ` +
        `and ${fmt(headline.cpuMsPer1kDeliveries["receiver"])} µs for the load generator to read one off HTTP/2; Redis spends ${fmt(headline.cpuMsPer1kDeliveries["redis"])} µs per durable publish (the script: offset, history, dedup, PUBLISH) against ${fmt(headlineRef.cpuMsPer1kDeliveries["redis"])} µs for a bare PUBLISH` +
        (dl !== undefined
          ? `; the profile puts ${areaShare(dl, (a) => a.startsWith("@connectrpc"))} % of the service's busy time in connect, ${areaShare(dl, (a) => a === "@bufbuild/protobuf")} % in protobuf (decode once per user, encode per frame), ${dl.programPercent} % native, ` +
            `and each delivery allocates about ${dl.allocated.total} KiB, ${areaShare(dl.allocated, (a) => a.startsWith("@connectrpc"))} % of it in connect's per-frame iterable machinery — garbage that makes the scavenges (${gcText(dl.gc)} in ${dl.seconds} s) whose pauses every in-flight item waits out`
          : ""),
    );
  }
  const failing = rtRows.filter((r) => !keeps(r));
  if (failing.length > 0) {
    const worst = failing.at(-1)!;
    const liveScavenge = dl?.gc["scavenge"];
    reading.push(
      `where p99 exceeds ${GOALS.p99Ms} ms (${failing.map((r) => `${r.p99Ms} ms at ${r.rate}/s`).join(", ")}), p50 stays at ${worst.p50Ms} ms and the service uses only ${worst.corePercent.realtime} % of a core: ` +
        `the slow items come in bursts, every in-flight item waiting out the same pause` +
        (dl !== undefined
          ? ` — each delivery allocates about ${dl.allocated.total} KiB (profiled at ${dl.rate}/s), so the young generation fills quickly and scavenges come ${liveScavenge ? `${round(liveScavenge.count / dl.seconds, 1)} per second at ${dl.rate}/s, ${round(liveScavenge.ms / liveScavenge.count, 1)} ms each` : "often"}, more often and longer as the rate rises`
          : "") +
        `; with the publisher, the receiver and Redis on the same ${machine.cpus} cores the service also waits for a CPU (${worst.realtimeRunQueueWaitPercent} % of the ${worst.rate}/s window)`,
    );
  }
  const readingText = `Reading the figures:\n\n${reading.map((r) => `- ${r.charAt(0).toUpperCase()}${r.slice(1)}.`).join("\n")}\n\n`;
  const diagnosisText =
    parts.length === 0
      ? "Not diagnosed in this run: every goal was met (`BENCH_RT_DIAGNOSE=1 node bench/realtime.ts` profiles anyway).\n"
      : `V8's profilers (the CPU profiler is the one \`--cpu-prof\` runs), over windows of the same work; figures under a profiler are not the measured ones.\n\n${parts.join("\n")}`;
  const section =
    `## Realtime\n\n` +
    `Written by \`node bench/realtime.ts\` (${at}; commit ${machine.commit}; Node ${machine.node}, ${machine.cpus} cores, load average ${machine.loadAverageAtStart.join(" / ")} at the start). Raw figures: \`bench/results/realtime.json\`.\n` +
    `Everything on this one machine over loopback: the realtime service (\`node services/realtime/src/main.ts\` with its defaults, so a heartbeat every ${HEARTBEAT_S} s), auth and user as child processes,\n` +
    `the shared Redis (keys under a prefix of the run, deleted after), and the load generators as worker processes of their own, so every CPU and RSS figure is one process's, from /proc.\n` +
    `The receiving load generator is node:http2 client sessions with gRPC framed by hand (5-byte prefix + protobuf), several streams per connection, no connect client per stream;\n` +
    `plain gRPC, like everything the edge sends upstream, so the streams take the service's direct streaming path (runtime \`direct-stream.ts\`), not connect's pipeline.\n` +
    `${USERS} users signed up and logged in once each (1 h access tokens: no stream reaches its token's expiry); a user's streams share its token.\n` +
    `"Others on the machine" is the CPU of every process not in this run (the machine is shared): figures taken while it is high are slower than the service is;\n` +
    `Redis is shared too, so its column holds whatever else used it meanwhile.\n\n` +
    `### Idle streams\n\n` +
    `${IDLE_STREAMS.toLocaleString("en")} Subscribe streams (${USERS} users × ${IDLE_STREAMS / USERS} devices) over ${IDLE_CONNECTIONS.toLocaleString("en")} HTTP/2 connections (${IDLE_STREAMS / IDLE_CONNECTIONS} streams each, each another user's) on one instance.\n` +
    `A stream counts once its \`ready\` frame arrived (against the bare reference: its response headers). RSS (VmRSS) is read after a warm-up of 20 streams opened and closed,\n` +
    `then 5 s after the last stream opened (KiB per stream = the difference / streams), and again at the end of the rest window.\n` +
    `The rest window (${rt.idleSeconds} s, ${rt.idleSeconds / HEARTBEAT_S} heartbeat intervals) starts once every stream has had its first heartbeat (${(rt.steadyAfterMs / 1000).toFixed(0)} s after the settling), so it holds the steady state:\n` +
    `each stream's heartbeat (the instance's heartbeat wheel) and the presence refresh come the same number of times in it as in any window of that length.\n` +
    `The reference is a bare node:http2 server (\`bench/realtime-bare-server.ts\`) holding the same streams from the same load generator: response headers, no frames, never an end — the transport's own share.\n` +
    `Goals: ≤ ${GOALS.kbPerStream} KB per stream (${goal(s.idle.memoryGoalMet)}: ${rt.kibPerStream} KiB = ${round(rt.kibPerStream * 1.024, 1)} KB after opening, ${rt.kibPerStreamAfterRest} KiB after the rest), ` +
    `< ${GOALS.idleCorePercent} % of a core at rest (${goal(s.idle.cpuGoalMet)}: ${rt.serverCorePercent} %).\n\n` +
    `${idleTable}\n\n` +
    `Opening them cost, per stream: ${Object.entries(rt.openCpuMsPerStream)
      .filter(([label]) => !label.startsWith("bench"))
      .map(([label, ms]) => `${label} ${ms} ms`)
      .join(", ")} of CPU (JWT check, denylist lookup, subscribe, position and presence scripts).\n` +
    `At rest the service is not idle: each stream gets a heartbeat once it has been silent for ${HEARTBEAT_S} s (${Math.round(IDLE_STREAMS / HEARTBEAT_S)} frames/s in steady state),\n` +
    `the presence tracker pushes every held connection's expiry forward in Redis once per heartbeat interval (one script call per 500 connections, pipelined), ` +
    `and the held sessions are re-checked against the denylist now and then (REALTIME_REVOCATION_RECHECK). ${rt.endedDuringRun > 0 ? `${rt.endedDuringRun} streams ended during the run: ${JSON.stringify(rt.endings)}.` : "No stream ended during the run."}\n\n` +
    `### Publish → delivered\n\n` +
    `${USERS} users, one stream each over ${LIVE_CONNECTIONS} HTTP/2 connections, on a fresh realtime process. A publisher process makes durable publishes through the user-stream port's Redis adapter\n` +
    `(\`publishEvent\`, a feedUpdated payload) at a fixed rate, round-robin over the users, open loop (a publish never waits for the ones before it).\n` +
    `Latency: from the publish call (process.hrtime — CLOCK_MONOTONIC, one clock for every process — carried in the item) until the client read the frame off its stream.\n` +
    `Every step is checked: every published item arrives, each offset exactly once and in order per user, and each user's last offset is the last one the port returned.\n` +
    `The reference at each rate: raw Redis PUBLISH on one channel per user, read by one ioredis subscriber in a process of its own — the floor Redis pub/sub sets on this machine.\n` +
    `A warm-up of 2 s at 1,000/s on each path comes first (not shown). CPU columns: % of one core over the window from the first publish until the last item arrived;\n` +
    `"waiting for a CPU": the share of that window the realtime process's main thread was runnable but not running (/proc/<pid>/schedstat) — contention for the ${machine.cpus} cores, not work.\n` +
    `Goal at ${HEADLINE_RATE}/s: p50 ≤ ${GOALS.p50Ms} ms and p99 ≤ ${GOALS.p99Ms} ms (${goal(s.live.latencyGoalMet)}: p50 ${fmt(s.live.p50Ms)} ms, p99 ${fmt(s.live.p99Ms)} ms; ` +
    `the reference p50 ${fmt(s.live.referenceP50Ms)} ms, p99 ${fmt(s.live.referenceP99Ms)} ms: realtime ÷ reference ${fmt(s.live.p50VsReference)} at p50, ${fmt(s.live.p99VsReference)} at p99, ` +
    `or ${fmt(s.live.p50MinusReferenceMs)} ms and ${fmt(s.live.p99MinusReferenceMs)} ms added).\n` +
    `Highest rate up to which every step kept p99 ≤ ${GOALS.p99Ms} ms with every item exactly once, in order: realtime ${s.live.highestRateWithP99Within50Ms === null ? "none of the rates tried" : `${s.live.highestRateWithP99Within50Ms}/s`}` +
    `${rtRows.some((r) => !keeps(r) && r.rate < Math.max(...rtRows.filter(keeps).map((k) => k.rate))) ? ` (a higher rate passed after one failed: ${rtRows.filter((r) => !keeps(r)).map((r) => `${r.rate}/s`).join(", ")} missed it)` : ""}, ` +
    `reference ${s.live.referenceHighestRateWithP99Within50Ms === null ? "none of the rates tried" : `${s.live.referenceHighestRateWithP99Within50Ms}/s`} ` +
    `(rates tried: ${STEP_RATES.join(", ")}/s, ${HEADLINE_RATE}/s for ${HEADLINE_SECONDS} s and the others for ${STEP_SECONDS} s; the realtime path is not stepped further once a step is not delivered in full or its p99 exceeds 2 s).\n\n` +
    `${liveTable}\n\n${perDelivery}\n\n` +
    `### Where the memory and the CPU go\n\n${readingText}${diagnosisText}\n` +
    `Figures move by tens of percent between runs on a machine this small and shared (the load generators, Redis and the service compete for ${machine.cpus} cores);\n` +
    `the least stable is the highest rate that keeps p99 ≤ ${GOALS.p99Ms} ms: a 5 s step holds a few hundred items above its p99, so one or two GC pauses or scheduling stalls move it by a step either way.\n`;
  await writeSection(section);
  console.log(idleTable);
  console.log(liveTable);
  console.log(perDelivery);
  if (parts.length > 0) console.log(diagnosisText);
}

function gcText(gc: GcCounts): string {
  const entries = Object.entries(gc).sort(([, a], [, b]) => b.ms - a.ms);
  return entries.length === 0 ? "none" : entries.map(([kind, { count, ms }]) => `${count} ${kind} (${ms} ms of pauses)`).join(", ");
}

function mib(kib: number): string {
  return (kib / 1024).toFixed(1);
}

/** Replaces the realtime section of docs/benchmarks.md (between the markers), or appends it. */
async function writeSection(body: string): Promise<void> {
  const current = await readFile(docsPath, "utf8").catch(() => "# Benchmarks\n");
  const block = `${START}\n${body}${END}\n`;
  const from = current.indexOf(START);
  const to = current.indexOf(END);
  const next = from !== -1 && to > from ? current.slice(0, from) + block + current.slice(to + END.length + 1) : `${current.replace(/\n*$/, "\n\n")}${block}`;
  await writeFile(docsPath, next);
}
