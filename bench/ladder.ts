// `make bench`, the reference ladder: the same unary gRPC no-op
// (grpc.health.v1.Health/Check → SERVING) on five server stacks, each in its
// own process, driven in one run by two load generators written in C and Go
// that cost far less per call than the servers they drive:
//
//   ghz (gRPC, Go; reports status codes, so errors are gRPC errors)
//   h2load (nghttp2's raw HTTP/2 client, C; POSTs a fixed gRPC frame and
//           counts HTTP 200 as success whatever grpc-status says, so each
//           server's reply to those exact bytes is checked once beforehand)
//
// both with 4 connections × 32 streams in flight and one core each
// (ghz --cpus 1, h2load -t 1), for a number of calls sized from a 1 s
// warm-up run to last about BENCH_LADDER_SECONDS. Throughput on a busy 2-core machine is noisy;
// CPU per call is not: each row has the server's CPU (from /proc/<pid>/stat
// around the measured run) and the load generator's (its rusage, from the
// shell that ran it) per call. Results: bench/results/ladder.json and the
// section between the ladder markers of docs/benchmarks.md.
//
//   BENCH_LADDER_SECONDS (default BENCH_SECONDS, else 5)  about how long each measured run lasts
//   BENCH_LADDER_RUNGS (default all)                      comma list of rung keys, e.g. connect,runtime
//   BENCH_LADDER_PROFILE=1                                writes a V8 CPU profile of each Node server to .dev/profiles/
//   node bench/ladder.ts --render                         rewrites the docs section from the saved JSON
import { execFileSync } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import http2 from "node:http2";
import { cpus } from "node:os";
import { resolve } from "node:path";
import { cpuMeter, quantile, repo, round, spawnServer, type ServerProcess } from "./support.ts";
import { callFigures, findTool, ghz as runGhz, runMeasured, type CallFigures, type Extent, type GhzRun } from "./ghz.ts";
import { serviceCommit, writeSection } from "./stack.ts";
import { checkPath, grpcFrame, servingFrame } from "./ladder-server.ts";

const env = process.env;
const SECONDS = Number(env["BENCH_LADDER_SECONDS"] || env["BENCH_SECONDS"] || 5);
const WARMUP_SECONDS = 1;
const CONNECTIONS = 4;
const STREAMS_PER_CONNECTION = 32;
const docsPath = resolve(repo, "docs/benchmarks.md");
const resultsPath = resolve(repo, "bench/results/ladder.json");
const START = "<!-- ladder:start -->";
const END = "<!-- ladder:end -->";
/** What bench/noop-server.ts is: every ratio is against it. */
const BASELINE = "connect";

interface Rung {
  key: string;
  label: string;
  script: string;
  env: Record<string, string>;
}

const RUNGS: readonly Rung[] = [
  { key: "h2-stream", label: "node:http2 stream API, fixed reply", script: "bench/ladder-server.ts", env: { LADDER_SERVER: "h2-stream" } },
  { key: "h2-compat", label: "node:http2 compat API, fixed reply", script: "bench/ladder-server.ts", env: { LADDER_SERVER: "h2-compat" } },
  { key: "grpc-js", label: "@grpc/grpc-js server, no-op", script: "bench/ladder-server.ts", env: { LADDER_SERVER: "grpc-js" } },
  { key: BASELINE, label: "connect-node, bare no-op (bench/noop-server.ts)", script: "bench/noop-server.ts", env: {} },
  { key: "runtime", label: "our runtime, full interceptor chain (server.ts)", script: "bench/ladder-server.ts", env: { LADDER_SERVER: "runtime" } },
  // Issue 17 item 4: the same server as two processes on one port (AVIARY_PROCESSES, runtime/src/processes.ts).
  { key: "runtime-2", label: "our runtime, two processes on one port (AVIARY_PROCESSES=2)", script: "bench/ladder-server.ts", env: { LADDER_SERVER: "runtime", AVIARY_PROCESSES: "2" } },
];

type GeneratorName = "ghz" | "h2load";

/** One generator run (h2load's has the same shape as ghz's). */
type Run = GhzRun;

export interface Row extends CallFigures {
  rung: string;
  label: string;
  generator: GeneratorName;
  serverCpuMs: number;
  serverUsPerCall: number;
  generatorCpuMs: number;
  generatorUsPerCall: number;
  /** The generator's CPU as % of one core over the run: near 100 means it, not the server, may be the limit. */
  generatorCorePercent: number;
  /** The whole machine's busy fraction over the run (other work shares it). */
  machineBusy: number;
  /** This row's calls/s over the bare connect-node no-op's, same generator, same run. */
  throughputVsConnect?: number;
  /** The connect-node no-op's server CPU per call over this row's: the throughput ratio one core would allow. */
  cpuVsConnect?: number;
}

export interface LadderReport {
  at: string;
  node: string;
  cpus: number;
  commit: string;
  seconds: number;
  connections: number;
  streamsPerConnection: number;
  generators: Partial<Record<GeneratorName, string>>;
  skipped: string[];
  rows: Row[];
}

if (process.argv.includes("--render")) {
  const saved = JSON.parse(await readFile(resultsPath, "utf8")) as LadderReport;
  await writeSection(docsPath, START, END, renderSection(saved));
  console.log(`rewrote the ladder section of docs/benchmarks.md from ${resultsPath} (${saved.at})`);
  process.exit(0);
}

/** Pinned versions, as infra.sh builds them (ghz built by go install reports "dev"). */
function versionOf(name: GeneratorName, path: string): string {
  if (name === "ghz") return /ghz-(v[\d.]+)/.exec(path)?.[1] ?? "unknown";
  try {
    // "h2load nghttp2/1.52.0": the tool's name is said once, in the row label.
    return execFileSync(path, ["--version"], { encoding: "utf8" }).split("\n")[0]?.trim().replace(/^h2load /, "") ?? "unknown";
  } catch {
    return "unknown";
  }
}


function ghz(path: string, url: string, extent: Extent): Promise<Run> {
  return runGhz(path, { url, method: "grpc.health.v1.Health.Check", connections: CONNECTIONS, concurrency: CONNECTIONS * STREAMS_PER_CONNECTION }, extent);
}

async function h2load(path: string, url: string, extent: Extent, requestFile: string, logFile: string): Promise<Run> {
  const { stdout, cpuMs } = await runMeasured(path, [
    "-c",
    String(CONNECTIONS),
    "-m",
    String(STREAMS_PER_CONNECTION),
    "-t",
    "1",
    ...("seconds" in extent ? ["-D", String(extent.seconds)] : ["-n", String(extent.calls)]),
    "-d",
    requestFile,
    "-H",
    "content-type: application/grpc",
    "-H",
    "te: trailers",
    `--log-file=${logFile}`,
    `${url}${checkPath}`,
  ]);
  const finished = /finished in ([\d.]+)(ms|s)/.exec(stdout);
  const counts = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout);
  if (finished === null || counts === null) throw new Error(`unexpected h2load output: ${stdout.slice(0, 400)}`);
  // Per-request log: start (µs since epoch), HTTP status, µs until the end of the response.
  const latencies = (await readFile(logFile, "utf8"))
    .split("\n")
    .flatMap((line) => {
      const [, status, us] = line.split("\t");
      return status === "200" && us !== undefined ? [Number(us) / 1000] : [];
    })
    .sort((a, b) => a - b);
  const [failed, errored, timedOut] = [Number(counts[5]), Number(counts[6]), Number(counts[7])];
  const errorKinds = Object.fromEntries(Object.entries({ failed, errored, timeout: timedOut }).filter(([, n]) => n > 0));
  return {
    calls: Number(counts[4]),
    errors: failed + errored + timedOut,
    errorKinds,
    seconds: Number(finished[1]) / (finished[2] === "ms" ? 1000 : 1),
    latenciesMs: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) },
    generatorCpuMs: cpuMs,
  };
}

/**
 * One call with exactly h2load's request (the same frame and headers) over
 * node:http2: the server must answer 200 with the SERVING frame and
 * grpc-status 0, since h2load itself only looks at the HTTP status.
 */
async function probe(url: string, body: Buffer): Promise<void> {
  const session = http2.connect(url);
  try {
    const answer = await new Promise<{ status: number; grpcStatus: string | undefined; body: Buffer }>((done, fail) => {
      const stream = session.request({ ":method": "POST", ":path": checkPath, "content-type": "application/grpc", te: "trailers" });
      let status = 0;
      let grpcStatus: string | undefined;
      const chunks: Buffer[] = [];
      stream.on("response", (headers) => {
        status = Number(headers[":status"]);
        // A trailers-only reply carries grpc-status in the headers.
        grpcStatus ??= headers["grpc-status"]?.toString();
      });
      stream.on("trailers", (trailers) => (grpcStatus = trailers["grpc-status"]?.toString()));
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => done({ status, grpcStatus, body: Buffer.concat(chunks) }));
      stream.on("error", fail);
      stream.end(body);
    });
    if (answer.status !== 200 || answer.grpcStatus !== "0" || !answer.body.equals(servingFrame)) {
      throw new Error(`probe of ${url}${checkPath}: HTTP ${answer.status}, grpc-status ${answer.grpcStatus ?? "none"}, body ${answer.body.toString("hex")}`);
    }
  } finally {
    session.close();
  }
}

async function main(): Promise<void> {
  const wanted = (env["BENCH_LADDER_RUNGS"] ?? "").split(",").filter((k) => k !== "");
  const rungs = wanted.length === 0 ? RUNGS : RUNGS.filter((r) => wanted.includes(r.key));
  const skipped: string[] = [];
  const generators: Array<{ name: GeneratorName; path: string }> = [];
  for (const name of ["ghz", "h2load"] as const) {
    const found = findTool(name);
    if ("path" in found) generators.push({ name, path: found.path });
    else skipped.push(found.missing);
  }
  const profileDir = resolve(repo, ".dev/profiles");
  const profiling = env["BENCH_LADDER_PROFILE"] === "1";
  if (profiling) await mkdir(profileDir, { recursive: true });
  const work = resolve(repo, ".dev/ladder");
  await mkdir(work, { recursive: true });
  const requestFile = resolve(work, "check-request.bin");
  const logFile = resolve(work, "h2load.log");
  // HealthCheckRequest{} is zero bytes: the frame is the 5-byte prefix alone.
  const requestFrame = grpcFrame(new Uint8Array(0));
  await writeFile(requestFile, requestFrame);

  const rows: Row[] = [];
  for (const rung of rungs) {
    const nodeArgs = profiling ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${rung.key}.cpuprofile`] : [];
    let server: ServerProcess | undefined;
    try {
      server = await spawnServer(`ladder-${rung.key}`, rung.script, rung.env, nodeArgs);
      await probe(server.url, requestFrame);
      for (const generator of generators) {
        const drive = (extent: Extent) => (generator.name === "ghz" ? ghz(generator.path, server!.url, extent) : h2load(generator.path, server!.url, extent, requestFile, logFile));
        // The warm-up (JIT, connections) is not counted; its rate sizes the
        // measured run, which then has a fixed number of calls: a timed run
        // ends with calls cut in flight (ghz reports those as Unavailable).
        const warmup = await drive({ seconds: WARMUP_SECONDS });
        const calls = Math.max(CONNECTIONS * STREAMS_PER_CONNECTION * 4, Math.round((warmup.calls / warmup.seconds) * SECONDS));
        const meter = cpuMeter({ server: server.process.pid });
        meter.start();
        const run = await drive({ calls });
        const cpu = meter.stop();
        const serverCpuMs = cpu.msByProcess["server"] ?? Number.NaN;
        rows.push({
          rung: rung.key,
          label: rung.label,
          generator: generator.name,
          ...callFigures(run),
          serverCpuMs,
          serverUsPerCall: round((serverCpuMs * 1000) / Math.max(1, run.calls), 1),
          generatorCpuMs: run.generatorCpuMs,
          generatorUsPerCall: round((run.generatorCpuMs * 1000) / Math.max(1, run.calls), 1),
          generatorCorePercent: round((run.generatorCpuMs / Math.max(1, cpu.wallMs)) * 100, 0),
          machineBusy: cpu.machineBusy,
        });
        console.log(`${rung.key} / ${generator.name}: ${Math.round(run.calls / run.seconds)} calls/s, server ${rows.at(-1)?.serverUsPerCall} µs CPU/call, ${run.errors} errors`);
      }
    } catch (error) {
      skipped.push(`${rung.key}: ${(error as Error).message}`);
      console.warn(`ladder rung ${rung.key} failed: ${(error as Error).message}`);
    } finally {
      // SIGTERM: the servers exit cleanly on it, which is when --cpu-prof writes.
      await server?.stop();
    }
  }
  await rm(logFile, { force: true });

  for (const row of rows) {
    const baseline = rows.find((r) => r.rung === BASELINE && r.generator === row.generator);
    if (baseline === undefined) continue;
    row.throughputVsConnect = round(row.throughput / Math.max(1, baseline.throughput), 2);
    row.cpuVsConnect = round(baseline.serverUsPerCall / row.serverUsPerCall, 2);
  }

  const report: LadderReport = {
    at: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    commit: serviceCommit("bench"),
    seconds: SECONDS,
    connections: CONNECTIONS,
    streamsPerConnection: STREAMS_PER_CONNECTION,
    generators: Object.fromEntries(generators.map((g) => [g.name, versionOf(g.name, g.path)])),
    skipped,
    rows,
  };
  await mkdir(resolve(repo, "bench/results"), { recursive: true });
  await writeFile(resultsPath, `${JSON.stringify(report, null, 2)}\n`);
  await writeSection(docsPath, START, END, renderSection(report));
  console.log(renderTable(report.rows));
  if (rows.length === 0) process.exitCode = 1;
}

function renderTable(rows: readonly Row[]): string {
  return [
    "| server | load generator | calls/s | p50 ms | p99 ms | errors | server CPU µs/call | generator CPU µs/call | generator CPU, % of a core | machine busy | calls/s vs connect-node | CPU/call vs connect-node |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.label} | ${r.generator} | ${r.throughput} | ${r.p50Ms} | ${r.p99Ms} | ${r.errors}${r.errors > 0 ? ` (${Object.entries(r.errorKinds).map(([k, n]) => `${k} ${n}`).join(", ")})` : ""} | ${r.serverUsPerCall} | ${r.generatorUsPerCall} | ${r.generatorCorePercent} | ${Math.round(r.machineBusy * 100)} % | ${r.throughputVsConnect ?? "–"} | ${r.cpuVsConnect ?? "–"} |`,
    ),
  ].join("\n");
}

function renderSection(report: LadderReport): string {
  const gens = Object.entries(report.generators).map(([name, version]) => `${name} ${version}`).join(", ");
  const runtime = report.rows.filter((r) => r.rung === "runtime");
  const goal = runtime.map((r) => `${r.generator}: ${r.throughputVsConnect ?? "–"} by calls/s, ${r.cpuVsConnect ?? "–"} by server CPU per call`).join("; ");
  // Item 4 of issue 17: does a second process on the same port add throughput on this machine's cores?
  const scaling = runtime
    .map((one) => {
      const two = report.rows.find((r) => r.rung === "runtime-2" && r.generator === one.generator);
      return two === undefined ? undefined : `${one.generator}: ${one.throughput} → ${two.throughput} calls/s (${round(two.throughput / Math.max(1, one.throughput), 2)}×)`;
    })
    .filter((s) => s !== undefined)
    .join("; ");
  return (
    `## Reference ladder (unary no-op)\n\n` +
    `Written by \`bench/ladder.ts\` (${report.at}, Node ${report.node}, ${report.cpus} cores, ${report.commit}). Raw figures: \`bench/results/ladder.json\`.\n` +
    `Every server answers grpc.health.v1.Health/Check with SERVING, each in its own Node process; load generators: ${gens || "none found"},\n` +
    `${report.connections} connections × ${report.streamsPerConnection} streams in flight, one core each (ghz \`--cpus 1\`, h2load \`-t 1\`); each row is a fixed number of calls sized to last about ${report.seconds} s\n` +
    `from the rate of a 1 s warm-up run before it (a timed run would end with calls cut in flight, which ghz counts as errors).\n` +
    `ghz speaks gRPC and counts non-OK statuses as errors; h2load POSTs a fixed gRPC frame and counts HTTP 200 as success, so each server's\n` +
    `reply to those bytes (200, the SERVING frame, grpc-status 0) is checked once before it is driven. Server CPU is from /proc/<pid>/stat around\n` +
    `the measured run; the generator's is its own user + system time; "machine busy" is the share of all cores in use over the run, other work included.\n` +
    `On a shared machine calls/s move with the load around them; CPU per call moves less (though on a machine busy at 100 % it still\n` +
    `swings between runs), so the last column (the connect-node no-op's server CPU per call over the row's) is the steadier ratio.\n\n` +
    `${report.rows.length === 0 ? "Not measured." : renderTable(report.rows)}\n\n` +
    `Goal from issue 17: our runtime's no-op with the full interceptor chain at ≥ 0.8 of the bare connect-node no-op — here ${goal || "not measured"}.\n` +
    `One process vs two on one port (AVIARY_PROCESSES=2; the generator holds one of the ${report.cpus} cores): ${scaling || "not measured"}.\n` +
    (report.skipped.length === 0 ? "" : `\nSkipped: ${report.skipped.join("; ")}.\n`)
  );
}

await main();
