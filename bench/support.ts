// Plumbing of the benchmarks (bench/run.ts, bench/feed.ts): server processes,
// the fixed-concurrency measurement, percentiles.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { internalPortSettings } from "../deploy/envoy/routes.ts";

export const repo = resolve(import.meta.dirname, "..");

export interface ServerProcess {
  url: string;
  /** What peers are given to call it: its internal grpc-js listener ("grpc://…") when it serves one, else `url`. */
  peerUrl: string;
  process: ChildProcess;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts a server process and resolves with the URL it announces on stdout
 * (the runtime's "listening" line, JSON with `url`). Its output goes to
 * `.dev/bench-<label>.log` (read it when a scenario fails), not to the
 * bench's own output, and is not kept in memory. An env value of undefined
 * removes the variable (e.g. KAFKA_BROKERS, for the in-process bus).
 */
export function spawnServer(label: string, script: string, env: Record<string, string | undefined>, nodeArgs: readonly string[] = []): Promise<ServerProcess> {
  mkdirSync(resolve(repo, ".dev"), { recursive: true });
  const log = createWriteStream(resolve(repo, `.dev/bench-${label}.log`));
  const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", "--disable-warning=TimeoutNegativeWarning", ...nodeArgs, script], {
    cwd: repo,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stderr.pipe(log);
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  const stop = async (graceMs = 5_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const killed = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(killed);
  };
  return new Promise((resolveUrl, reject) => {
    let pending = "";
    let announced = false;
    child.stdout.on("data", (chunk: Buffer) => {
      log.write(chunk);
      if (announced) return;
      pending += chunk.toString("utf8");
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const urls = announcedUrls(line);
        if (urls !== undefined) {
          announced = true;
          pending = "";
          resolveUrl({ url: urls.url, peerUrl: urls.peerUrl, process: child, stop });
          return;
        }
      }
    });
    child.once("exit", (code) => {
      if (!announced) reject(new Error(`${script} exited with ${code} before announcing its URL (see .dev/bench-${label}.log)`));
    });
  });
}

function announcedUrls(line: string): { url: string; peerUrl: string } | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const parsed = JSON.parse(line) as { url?: unknown; peerUrl?: unknown };
    if (typeof parsed.url !== "string") return undefined;
    // The runtime's "listening" line says what peers call it on (RunningServer.peerUrl).
    return { url: parsed.url, peerUrl: typeof parsed.peerUrl === "string" ? parsed.peerUrl : parsed.url };
  } catch {
    return undefined;
  }
}

/**
 * How the services of a benchmark call each other (BENCH_INTERNAL_TRANSPORT):
 * "grpc-js" (the default, as deployed) gives every spawned service an
 * internal listener on a free port, for peers to reach at `peerUrl`;
 * "connect" serves none, so `peerUrl` is the connect-node port, as before.
 */
export const internalTransport: "grpc-js" | "connect" = process.env["BENCH_INTERNAL_TRANSPORT"] === "connect" ? "connect" : "grpc-js";

/** The environment that gives a spawned service its internal listener under `internalTransport` (each reads only its own). */
export const internalListenerEnv: Record<string, string> =
  internalTransport === "connect"
    ? {}
    : Object.fromEntries(Object.keys(internalPortSettings).map((variable) => [variable, "0"]));

export interface Result {
  name: string;
  concurrency: number;
  seconds: number;
  calls: number;
  errors: number;
  throughput: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * Runs `call` from `concurrency` loops for `durationMs` after `warmupMs`;
 * latencies from after the warm-up only. `window` is told when the measured
 * window starts and ends (to take CPU samples over it).
 */
export async function measure(
  name: string,
  concurrency: number,
  call: () => Promise<unknown>,
  durationMs: number,
  window?: (phase: "start" | "end") => void,
  warmupMs = 1_000,
): Promise<Result> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: unknown;
  const measureFrom = performance.now() + warmupMs;
  const started = setTimeout(() => window?.("start"), warmupMs);
  const end = measureFrom + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          await call();
        } catch (error) {
          errors += 1;
          firstError ??= error;
        }
        if (t0 >= measureFrom) latencies.push(performance.now() - t0);
      }
    }),
  );
  clearTimeout(started);
  window?.("end");
  if (firstError !== undefined) console.warn(`${name}: ${errors} errors, first: ${(firstError as Error).message}`);
  const sorted = latencies.sort((a, b) => a - b);
  return {
    name,
    concurrency,
    seconds: durationMs / 1000,
    calls: sorted.length,
    errors,
    throughput: Math.round(sorted.length / (durationMs / 1000)),
    p50Ms: round(quantile(sorted, 0.5)),
    p99Ms: round(quantile(sorted, 0.99)),
  };
}

/** The q-quantile of an ascending list (nearest rank); NaN when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

export function round(value: number, digits = 2): number {
  return Number(value.toFixed(digits));
}

/** Polls `condition` every `everyMs` until true; throws naming `what` after `timeoutMs`. */
export async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Runs `work` over `items` with at most `concurrency` in flight. */
export async function inParallel<T, R>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index]!, index);
      }
    }),
  );
  return results;
}

/**
 * CPU time (user + system) used by processes over a window, from
 * /proc/<pid>/stat, plus how busy the whole machine was: to see which
 * process a scenario is bound by. Empty where /proc is missing (not Linux).
 */
export function cpuMeter(processes: Record<string, number | undefined>): { start(): void; stop(): { msByProcess: Record<string, number>; machineBusy: number; wallMs: number } } {
  const ticksToMs = 10; // USER_HZ is 100 on Linux
  const sample = () => {
    const byProcess: Record<string, number> = {};
    for (const [label, pid] of Object.entries(processes)) {
      const ms = pid === process.pid ? (process.cpuUsage().user + process.cpuUsage().system) / 1000 : processTicks(pid) * ticksToMs;
      if (!Number.isNaN(ms)) byProcess[label] = ms;
    }
    return { byProcess, machine: machineTicks(), at: performance.now() };
  };
  let first = sample();
  return {
    start() {
      first = sample();
    },
    stop() {
      const last = sample();
      const msByProcess: Record<string, number> = {};
      for (const [label, ms] of Object.entries(last.byProcess)) msByProcess[label] = Math.round(ms - (first.byProcess[label] ?? ms));
      const total = last.machine.total - first.machine.total;
      return { msByProcess, machineBusy: total > 0 ? round(1 - (last.machine.idle - first.machine.idle) / total, 2) : Number.NaN, wallMs: Math.round(last.at - first.at) };
    },
  };
}

/**
 * CPU ms per second each process spends with nothing offered (consumers
 * polling, metrics, timers), over `ms`: what a row takes off its window, so
 * its CPU per call is what the calls cost, not what the processes spend
 * anyway (on a busy machine a row's calls are few, and that share would
 * swamp them).
 */
export function idleCpu(processes: Record<string, number | undefined>, ms: number): Promise<Record<string, number>> {
  return idleRates(cpuMeter(processes), ms);
}

/** idleCpu by any meter (stack.ts fullMeter counts PostgreSQL's backends too). */
export async function idleRates(meter: { start(): void; stop(): { msByProcess: Record<string, number>; wallMs: number } }, ms: number): Promise<Record<string, number>> {
  meter.start();
  await sleep(ms);
  const cpu = meter.stop();
  return Object.fromEntries(Object.entries(cpu.msByProcess).map(([label, used]) => [label, used / (cpu.wallMs / 1000)]));
}

/** A window's CPU ms by process less what each spends idle (`idle`, ms per second) over as long; never below 0. */
export function lessIdle(msByProcess: Record<string, number>, wallMs: number, idle: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(msByProcess).map(([label, ms]) => [label, Math.max(0, ms - ((idle[label] ?? 0) * wallMs) / 1000)]));
}

/** CPU ticks of `pid` and of the processes it started (AVIARY_PROCESSES workers), alive ones read from /proc. */
function processTicks(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    // The command name (field 2) may hold spaces; fields after its closing parenthesis are fixed.
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    const own = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
    return own + childrenOf(pid).reduce((sum, child) => sum + (processTicks(child) || 0), 0);
  } catch {
    return Number.NaN;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter((s) => s !== "").map(Number);
  } catch {
    return [];
  }
}

function machineTicks(): { idle: number; total: number } {
  try {
    const values = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
    return { idle: (values[3] ?? 0) + (values[4] ?? 0), total: values.reduce((a, b) => a + b, 0) };
  } catch {
    return { idle: Number.NaN, total: Number.NaN };
  }
}

/**
 * What a benchmark must undo however it ends: steps pushed as it goes, run
 * newest first, once (also on SIGINT/SIGTERM, then exit 130); a failing step
 * is reported and the rest still run.
 */
export function teardown(): { steps: Array<() => Promise<unknown>>; run(): Promise<void> } {
  const steps: Array<() => Promise<unknown>> = [];
  let running: Promise<void> | undefined;
  const run = (): Promise<void> =>
    (running ??= (async () => {
      for (const step of steps.reverse()) await step().catch((error: unknown) => console.warn(`cleanup: ${(error as Error).message}`));
    })());
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => void run().finally(() => process.exit(130)));
  return { steps, run };
}
