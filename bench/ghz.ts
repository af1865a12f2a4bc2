// ghz (gRPC load generator, Go; built by `deploy/local/infra.sh tool ghz`)
// for the benchmarks' unary rows: it costs the machine a fraction of what a
// Node load generator does, and it reports gRPC status codes, so an error is
// a gRPC error. Calls are made from the descriptor set (gen/aviary.binpb),
// with the request as JSON and the caller's token as metadata.
//
// A row is a fixed number of calls, sized from a warm-up run of WARMUP_SECONDS
// to last about `seconds`: a timed ghz run ends by cancelling the calls in
// flight and reports them as Unavailable.
import { execFile, execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { cpuMeter, idleCpu, lessIdle, repo, round } from "./support.ts";

export interface GhzRun {
  calls: number;
  errors: number;
  /** Non-OK outcomes by gRPC status name. */
  errorKinds: Record<string, number>;
  seconds: number;
  latenciesMs: { p50: number; p99: number };
  /** The generator's own CPU (user + system), ms. */
  generatorCpuMs: number;
}

/** How long a run lasts: a time (the warm-up, which also gauges the rate), or a number of calls (the measured run). */
export type Extent = { seconds: number } | { calls: number };

export interface GhzCall {
  /** The server, "http://127.0.0.1:43121". */
  url: string;
  /** "package.Service.Method", e.g. "aviary.feed.v1.FeedService.GetHomeFeed". */
  method: string;
  /** The request as protobuf JSON. */
  data?: Record<string, unknown>;
  /** Metadata, e.g. { authorization: "Bearer …" }. */
  metadata?: Record<string, string>;
  connections: number;
  /** Calls in flight across all connections. */
  concurrency: number;
  /** Offered rate (calls/s); unset: as fast as the calls in flight allow. */
  rps?: number;
}

/** Where a load generator `infra.sh tool` builds or installs (ghz, h2load) is, or why it is not there. */
export function findTool(name: string): { path: string } | { missing: string } {
  try {
    return { path: execFileSync(resolve(repo, "deploy/local/infra.sh"), ["tool", name], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim() };
  } catch (error) {
    return { missing: `${name}: ${((error as { stderr?: string }).stderr ?? (error as Error).message).trim().split("\n").pop() ?? ""}` };
  }
}

/** Where ghz is, or why it is not there. */
export const findGhz = (): { path: string } | { missing: string } => findTool("ghz");

/**
 * Runs a command through bash, whose `times` builtin then prints the
 * children's user and system CPU: the generator has exited by then, so /proc
 * no longer has it, but its rusage was collected by the shell.
 */
export function runMeasured(command: string, args: readonly string[]): Promise<{ stdout: string; cpuMs: number }> {
  return new Promise((done, fail) => {
    execFile("bash", ["-c", '"$@"; rc=$?; times >&2; exit $rc', "bash", command, ...args], { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null) {
        fail(new Error(`${command} failed: ${stderr.trim().split("\n").slice(-6).join(" / ")}`));
        return;
      }
      // `times`: the shell's own line, then its children's: "0m1.234s 0m0.567s".
      const last = stderr.trim().split("\n").pop() ?? "";
      const m = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(last);
      if (m === null) {
        fail(new Error(`no CPU times from bash after ${command}: ${last}`));
        return;
      }
      const seconds = (minutes: string | undefined, secs: string | undefined) => Number(minutes) * 60 + Number(secs);
      done({ stdout, cpuMs: Math.round((seconds(m[1], m[2]) + seconds(m[3], m[4])) * 1000) });
    });
  });
}

/** One ghz run of `call`, on one core (`--cpus 1`). */
export async function ghz(path: string, call: GhzCall, extent: Extent): Promise<GhzRun> {
  const { stdout, cpuMs } = await runMeasured(path, [
    "--insecure",
    "--protoset",
    resolve(repo, "gen/aviary.binpb"),
    "--call",
    call.method,
    "--data",
    JSON.stringify(call.data ?? {}),
    ...(call.metadata === undefined ? [] : ["--metadata", JSON.stringify(call.metadata)]),
    "--connections",
    String(call.connections),
    "--concurrency",
    String(call.concurrency),
    ...(call.rps === undefined ? [] : ["--rps", String(call.rps)]),
    "--cpus",
    "1",
    ...("seconds" in extent ? ["--duration", `${extent.seconds}s`] : ["--total", String(extent.calls)]),
    "--format",
    "json",
    new URL(call.url).host,
  ]);
  const report = JSON.parse(stdout) as {
    total: number;
    statusCodeDistribution?: Record<string, number>;
    latencyDistribution?: Array<{ percentage: number; latency: number }> | null;
  };
  const codes = report.statusCodeDistribution ?? {};
  const errorKinds = Object.fromEntries(Object.entries(codes).filter(([code]) => code !== "OK"));
  const at = (p: number) => (report.latencyDistribution ?? []).find((d) => d.percentage === p)?.latency ?? Number.NaN;
  return {
    calls: codes["OK"] ?? 0,
    errors: Object.values(errorKinds).reduce((a, b) => a + b, 0),
    errorKinds,
    seconds: report.total / 1e9,
    latenciesMs: { p50: at(50) / 1e6, p99: at(99) / 1e6 },
    generatorCpuMs: cpuMs,
  };
}

export const WARMUP_SECONDS = 1;

/**
 * A warm-up of WARMUP_SECONDS, then a measured run of as many calls as the
 * warm-up's rate makes in `seconds` (at least four per call in flight);
 * `window` is told when the measured run starts and ends (CPU samples).
 */
export async function ghzFixed(path: string, call: GhzCall, seconds: number, window?: (phase: "start" | "end") => void): Promise<GhzRun> {
  const warmup = await ghz(path, call, { seconds: WARMUP_SECONDS });
  const calls = Math.max(call.concurrency * 4, Math.round((warmup.calls / Math.max(warmup.seconds, 0.001)) * seconds));
  window?.("start");
  const run = await ghz(path, call, { calls });
  window?.("end");
  return run;
}

/** What every row driven by an external generator reports (ghz here, ghz and h2load in the ladder). */
export interface CallFigures {
  calls: number;
  errors: number;
  errorKinds: Record<string, number>;
  throughput: number;
  p50Ms: number;
  p99Ms: number;
}

/** A run's figures as a row reports them. */
export function callFigures(run: GhzRun): CallFigures {
  return {
    calls: run.calls,
    errors: run.errors,
    errorKinds: run.errorKinds,
    throughput: Math.round(run.calls / run.seconds),
    p50Ms: round(run.latenciesMs.p50),
    p99Ms: round(run.latenciesMs.p99),
  };
}

/** A benchmark row measured with ghz. */
export interface GhzRow extends CallFigures {
  name: string;
  /** CPU per call of each process the call reaches (from /proc), and ghz's own ("ghz"). */
  cpuMsPerCall: Record<string, number>;
  /** Share of all cores in use over the measured run. */
  machineBusy: number;
}

/**
 * ghzFixed for one row, with the CPU of `processes` (label → pid) over the
 * measured run. With `idleMs`, what each process uses over that long with no
 * calls, right before the row, is taken off its window at the same rate (as
 * the Node generator's rows do): an open-loop row at a low rate would
 * otherwise count the processes' idle polling as the calls' cost.
 */
export async function ghzRow(
  path: string,
  name: string,
  call: GhzCall,
  seconds: number,
  processes: Record<string, number | undefined>,
  idleMs = 0,
  /** Also told when the measured calls start and end (after the warm-up). */
  window?: (phase: "start" | "end") => void,
): Promise<GhzRow> {
  const idle = idleMs > 0 ? await idleCpu(processes, idleMs) : {};
  const meter = cpuMeter(processes);
  let cpu: ReturnType<typeof meter.stop> | undefined;
  const run = await ghzFixed(path, call, seconds, (phase) => {
    if (phase === "start") meter.start();
    else cpu = meter.stop();
    window?.(phase);
  });
  const net = lessIdle(cpu?.msByProcess ?? {}, cpu?.wallMs ?? 0, idle);
  const perCall = (ms: number) => round(ms / Math.max(1, run.calls), 3);
  return {
    name,
    ...callFigures(run),
    cpuMsPerCall: { ...Object.fromEntries(Object.entries(net).map(([label, ms]) => [label, perCall(ms)])), ghz: perCall(run.generatorCpuMs) },
    machineBusy: cpu?.machineBusy ?? Number.NaN,
  };
}

/** Rows as a markdown table. */
export function ghzTable(rows: readonly GhzRow[], heading: string): string {
  if (rows.length === 0) return "Not measured (ghz could not be built here).";
  return [
    `| ${heading} | calls/s | p50 ms | p99 ms | errors | CPU ms per call | machine busy |`,
    "|---|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.throughput} | ${r.p50Ms} | ${r.p99Ms} | ${r.errors}${r.errors > 0 ? ` (${Object.entries(r.errorKinds).map(([k, n]) => `${k} ${n}`).join(", ")})` : ""} | ${Object.entries(r.cpuMsPerCall).map(([k, v]) => `${k} ${v}`).join(", ")} | ${Math.round(r.machineBusy * 100)} % |`,
    ),
  ].join("\n");
}
