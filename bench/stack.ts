// Plumbing the service benchmarks (bench/notification.ts, bench/chat.ts)
// share: a private Kafka per run, the CPU of the run's processes and of the
// PostgreSQL backends serving its databases, Redis clean-up, accounts, and
// writing a section of docs/benchmarks.md.
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Client } from "@connectrpc/connect";
import { Kafka, logLevel } from "kafkajs";
import { createTopicsWithLeaders } from "../services/runtime/src/bus/kafka.ts";
import type { Redis } from "ioredis";
import type { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { privateServer, repoRoot, uniqueName, type PrivateServer } from "../services/runtime/test-support/infra.ts";
import { cpuMeter, repo, round } from "./support.ts";

/** CPU over a window: per process (and "postgres"), the rest of the machine, how busy it was. */
export interface Cpu {
  msByProcess: Record<string, number>;
  /** CPU of every process not in this run (the machine is shared), % of one core. */
  othersCorePercent: number;
  machineBusy: number;
  wallMs: number;
}

export interface Meter {
  start(): void;
  stop(): Cpu;
}

/**
 * cpuMeter over `processes`, plus the PostgreSQL backends serving this run's
 * databases (by their process title, sampled at both ends: a backend that
 * exits inside the window is missed), plus what the rest of the machine used.
 */
export function fullMeter(processes: Record<string, number | undefined>, databases: readonly string[]): Meter {
  const base = cpuMeter(processes);
  const cores = cpus().length;
  let backendsBefore = new Map<number, number>();
  return {
    start() {
      base.start();
      backendsBefore = backendTicks(databases);
    },
    stop() {
      const cpu = base.stop();
      let postgresMs = 0;
      for (const [pid, ticks] of backendTicks(databases)) postgresMs += (ticks - (backendsBefore.get(pid) ?? 0)) * 10;
      const msByProcess = { ...cpu.msByProcess, postgres: postgresMs };
      const ours = Object.values(msByProcess).reduce((sum, ms) => sum + ms, 0);
      const othersMs = Math.max(0, cpu.machineBusy * cores * cpu.wallMs - ours);
      return { msByProcess, othersCorePercent: round((othersMs / Math.max(1, cpu.wallMs)) * 100, 0), machineBusy: cpu.machineBusy, wallMs: cpu.wallMs };
    },
  };
}

/** CPU ticks (utime + stime) of the PostgreSQL backends serving `databases`, by pid. */
export function backendTicks(databases: readonly string[]): Map<number, number> {
  const found = new Map<number, number>();
  let pids: string[] = [];
  try {
    pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return found;
  }
  for (const pid of pids) {
    try {
      const title = readFileSync(`/proc/${pid}/cmdline`, "utf8").split(/[\s\0]+/);
      if (title[0] !== "postgres:" || !databases.includes(title[2] ?? "")) continue;
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
      found.set(Number(pid), Number(fields[11]) + Number(fields[12]));
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

/**
 * A Kafka of the run's own (state dir `state`), empty: one left with topics
 * from an earlier run is replaced. Stopped by `cleanups`. Warmed before it
 * is returned (`warmKafka`).
 */
export async function ownKafka(state: string, cleanups: Array<() => Promise<unknown>>): Promise<PrivateServer> {
  let kafka = await privateServer("kafka", state);
  if (await hasTopics(kafka.url)) {
    await kafka.down();
    kafka = await privateServer("kafka", state);
  }
  cleanups.push(() => kafka.down());
  await warmKafka(kafka.url);
  return kafka;
}

/** BENCH_KAFKA_WARMUP_SECONDS: how long `warmKafka` drives a fresh broker (0: not at all). */
const KAFKA_WARMUP_SECONDS = Number(process.env["BENCH_KAFKA_WARMUP_SECONDS"] ?? 20);
const WARMUP_TOPIC = "warmup.bench";
/** How a benchmark's docs section says so, after "a Kafka started for the run and ". */
export const kafkaWarmupNote = `warmed for BENCH_KAFKA_WARMUP_SECONDS (${KAFKA_WARMUP_SECONDS} s) before anything is measured (bench/stack.ts \`warmKafka\`: a fresh broker's JIT compiler would otherwise count as Kafka's cost per message)`;

/**
 * A freshly started broker spends its first minute compiling its own hot
 * paths: in the first measured row of a chat run (150 messages/s, 2026-12-02)
 * the JVM's C2 compiler thread used as much CPU as every request handler
 * together, half of what the run reported as Kafka's cost per message. A
 * broker in service did that long ago, so before anything is measured the
 * produce, fetch and offset-commit paths are driven here for
 * KAFKA_WARMUP_SECONDS: eight producers sending one small message per
 * request, a consumer group committing as it reads. The topic is deleted
 * afterwards (its name does not start with "bench." or "aviary.", so a
 * crash mid-warm-up does not make the next run replace its Kafka).
 */
export async function warmKafka(brokers: string, seconds = KAFKA_WARMUP_SECONDS): Promise<void> {
  if (seconds <= 0) return;
  const kafka = new Kafka({ clientId: "bench-warmup", brokers: brokers.split(","), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  const consumer = kafka.consumer({ groupId: "bench-warmup", maxWaitTimeInMs: 100 });
  await Promise.all([admin.connect(), producer.connect(), consumer.connect()]);
  try {
    await createTopicsWithLeaders(admin, [{ topic: WARMUP_TOPIC, numPartitions: 3 }]);
    await consumer.subscribe({ topics: [WARMUP_TOPIC], fromBeginning: true });
    let consumed = 0;
    await consumer.run({ autoCommitInterval: 100, eachMessage: async () => void consumed++ });
    const until = performance.now() + seconds * 1000;
    let produced = 0;
    const sender = async () => {
      while (performance.now() < until) {
        await producer.send({ topic: WARMUP_TOPIC, acks: -1, messages: [{ key: String(produced % 64), value: "warm" }] });
        produced++;
      }
    };
    await Promise.all(Array.from({ length: 8 }, sender));
    const drained = performance.now() + 10_000;
    while (consumed < produced && performance.now() < drained) await new Promise((resolve) => setTimeout(resolve, 50));
    console.log(`[bench] warmed the private Kafka for ${seconds} s: ${produced} produce requests, ${consumed} messages consumed`);
  } finally {
    await consumer.disconnect();
    await producer.disconnect();
    await admin.deleteTopics({ topics: [WARMUP_TOPIC] }).catch(() => undefined);
    await admin.disconnect();
  }
}

async function hasTopics(brokers: string): Promise<boolean> {
  const admin = new Kafka({ clientId: "bench", brokers: brokers.split(","), logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    return (await admin.listTopics()).some((topic) => topic.startsWith("aviary.") || topic.startsWith("bench."));
  } finally {
    await admin.disconnect();
  }
}

/** The private Kafka's broker process (for its CPU), if it runs. */
export function privateKafkaPid(state: string): number | undefined {
  try {
    const checkout = createHash("sha256").update(repoRoot).digest("hex").slice(0, 8);
    const pid = Number(readFileSync(join(tmpdir(), `aviary-${checkout}-${state}`, "kafka", "kafka.pid"), "utf8").trim());
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(state) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The shared Redis server's process, when `url` is the one infra.sh started. */
export function redisServerPid(url: string): number | undefined {
  try {
    const redisDir = resolve(process.env["AVIARY_INFRA_DIR"] ?? resolve(repo, ".infra"), "redis");
    if (readFileSync(resolve(redisDir, "port"), "utf8").trim() !== new URL(url).port) return undefined;
    const pid = Number(readFileSync(resolve(redisDir, "redis.pid"), "utf8").trim());
    return readFileSync(`/proc/${pid}/comm`, "utf8").startsWith("redis") ? pid : undefined;
  } catch {
    return undefined;
  }
}

export async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 5_000);
    if (keys.length > 0) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== "0");
}

/** CPU ms per item, by process, leaving out processes that used none. */
export function perItem(msByProcess: Record<string, number>, items: number, digits: number): Record<string, number> {
  return Object.fromEntries(Object.entries(msByProcess).filter(([, ms]) => ms > 0).map(([label, ms]) => [label, round(ms / Math.max(1, items), digits)]));
}

export function ratio(a: number, b: number): number {
  const value = a / b;
  return value >= 10 ? Math.round(value) : round(value, 2);
}

/** HEAD, and whether the measured service (or the runtime) has uncommitted changes. */
export function serviceCommit(servicePath: string): string {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repo, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", servicePath, "services/runtime"], { cwd: repo, encoding: "utf8" }).trim() !== "";
    return dirty ? `${head} + uncommitted changes in ${servicePath} or services/runtime` : head;
  } catch {
    return "unknown";
  }
}

/** Replaces the section of `docsPath` between `start` and `end` (the markers), or appends it (to `newDoc` when the file does not exist). */
export async function writeSection(docsPath: string, start: string, end: string, body: string, newDoc = "# Benchmarks\n"): Promise<void> {
  const current = await readFile(docsPath, "utf8").catch(() => newDoc);
  const block = `${start}\n${body}${end}\n`;
  const from = current.indexOf(start);
  const to = current.indexOf(end);
  const next = from !== -1 && to > from ? current.slice(0, from) + block + current.slice(to + end.length + 1) : `${current.replace(/\n*$/, "\n\n")}${block}`;
  await writeFile(docsPath, next);
}

/** Registers and signs in a fresh account (email `<emailPrefix>.<label>…@example.org`). */
export async function signUp(auth: Client<typeof AuthService>, emailPrefix: string, label: string): Promise<{ label: string; userId: string; token: string; call: { headers: Record<string, string> } }> {
  const identity = { case: "email" as const, value: `${uniqueName(`${emailPrefix}.${label}`)}@example.org` };
  const password = "violet-harbour-teapot-42";
  const registered = await auth.register({ identity, password });
  const login = await auth.login({ identity, password });
  const token = login.tokens?.accessToken ?? "";
  return { label, userId: registered.userId.toLowerCase(), token, call: { headers: { authorization: `Bearer ${token}` } } };
}
