// The internal transport decision (issue 17): the same handler behind the same
// interceptor chain, served by connect-node or by @grpc/grpc-js
// (services/runtime/src/grpc-js/), and called through connect-node's gRPC
// transport or the grpc-js one. Every server is bench/transport-server.ts
// (our runtime's startServer, GetJwks, full chain) in its own process.
//
// Scenarios, each at the same load: CONCURRENCY callers in flight from this
// process, WARMUP_CALLS calls to warm the JIT up (on a crowded machine a timed
// warm-up can be a few dozen calls, and cold code is what gets measured),
// then BENCH_TRANSPORT_CALLS measured calls:
//   no-op     GetJwks answered at once: one server
//   hop       GetJwks making one internal call (Health/Check) to a second
//             server: the caller's client and server side and the callee's
// Throughput from a Node load generator is bounded by the generator itself
// (it is one process on the same 2 cores), so the figure to compare is CPU
// per call, from /proc/<pid>/stat around the measured window, per process;
// the load generator's own CPU per call is beside it.
//
//   BENCH_TRANSPORT_CALLS (default 3000)   measured calls per scenario
//   node bench/transport.ts --render    rewrites the docs section from the saved JSON
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { createGrpcJsTransport } from "@aviary/runtime/grpc-js/transport";
import { cpuMeter, quantile, repo, round, spawnServer, teardown, type ServerProcess } from "./support.ts";
import { serviceCommit, writeSection } from "./stack.ts";

const env = process.env;
const CALLS = Number(env["BENCH_TRANSPORT_CALLS"] || 3000);
const WARMUP_CALLS = 1000;
const CONCURRENCY = 32;
const docsPath = resolve(repo, "docs/benchmarks.md");
const resultsPath = resolve(repo, "bench/results/transport.json");
const START = "<!-- transport:start -->";
const END = "<!-- transport:end -->";

type Kind = "connect" | "grpc-js";

interface Scenario {
  key: string;
  label: string;
  /** The listener (server library) the load generator calls. */
  server: Kind;
  /** The load generator's client library. */
  client: Kind;
  /** With a hop: the library on both sides of the internal call. */
  hop?: Kind;
}

const SCENARIOS: readonly Scenario[] = [
  { key: "noop-connect", label: "no-op, served by connect-node", server: "connect", client: "connect" },
  { key: "noop-grpc-js", label: "no-op, served by grpc-js", server: "grpc-js", client: "connect" },
  { key: "noop-grpc-js-client", label: "no-op, served by grpc-js, grpc-js client", server: "grpc-js", client: "grpc-js" },
  { key: "hop-connect", label: "one hop, connect-node on both sides", server: "connect", client: "connect", hop: "connect" },
  { key: "hop-grpc-js", label: "one hop, grpc-js on both sides", server: "grpc-js", client: "connect", hop: "grpc-js" },
];

export interface Row {
  scenario: string;
  label: string;
  server: Kind;
  client: Kind;
  hop: Kind | null;
  calls: number;
  errors: number;
  throughput: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU ms per call by process: "server" (the one called), "callee" (the hop's), "generator" (this process). */
  cpuMsPerCall: Record<string, number>;
  machineBusy: number;
}

interface Report {
  at: string;
  commit: string;
  calls: number;
  warmupCalls: number;
  concurrency: number;
  rows: Row[];
}

if (process.argv.includes("--render")) {
  const saved = JSON.parse(await readFile(resultsPath, "utf8")) as Report;
  await writeSection(docsPath, START, END, render(saved));
  console.log(`rewrote the transport section of docs/benchmarks.md from ${resultsPath} (${saved.at})`);
  process.exit(0);
}

const transportFor = (kind: Kind, baseUrl: string): Transport & { close?: () => void } =>
  kind === "grpc-js" ? createGrpcJsTransport({ baseUrl }) : createGrpcTransport({ baseUrl });

const cleanup = teardown();
const rows: Row[] = [];
try {
  for (const scenario of SCENARIOS) {
    const started: ServerProcess[] = [];
    try {
      let callee: ServerProcess | undefined;
      if (scenario.hop !== undefined) {
        callee = await spawnServer(`transport-${scenario.key}-callee`, "bench/transport-server.ts", { LISTENER: scenario.hop, HOP_URL: undefined });
        started.push(callee);
      }
      const server = await spawnServer(`transport-${scenario.key}`, "bench/transport-server.ts", {
        LISTENER: scenario.server,
        HOP_URL: callee?.url,
        ...(scenario.hop === undefined ? {} : { HOP_TRANSPORT: scenario.hop }),
      });
      started.push(server);
      const transport = transportFor(scenario.client, server.url);
      const client = createClient(AuthService, transport);
      const meter = cpuMeter({ server: server.process.pid, ...(callee === undefined ? {} : { callee: callee.process.pid }), generator: process.pid });
      await drive(WARMUP_CALLS, () => client.getJwks({}));
      meter.start();
      const result = await drive(CALLS, () => client.getJwks({}));
      const cpu = meter.stop();
      transport.close?.();
      const perCall = Object.fromEntries(Object.entries(cpu.msByProcess).map(([label, ms]) => [label, round(ms / Math.max(1, result.calls), 3)]));
      const row: Row = {
        scenario: scenario.key,
        label: scenario.label,
        server: scenario.server,
        client: scenario.client,
        hop: scenario.hop ?? null,
        calls: result.calls,
        errors: result.errors,
        throughput: result.throughput,
        p50Ms: result.p50Ms,
        p99Ms: result.p99Ms,
        cpuMsPerCall: perCall,
        machineBusy: cpu.machineBusy,
      };
      rows.push(row);
      console.log(JSON.stringify(row));
    } finally {
      for (const p of started.reverse()) await p.stop();
    }
  }
} finally {
  await cleanup.run();
}

const report: Report = { at: new Date().toISOString(), commit: serviceCommit("bench"), calls: CALLS, warmupCalls: WARMUP_CALLS, concurrency: CONCURRENCY, rows };
await mkdir(resolve(repo, "bench/results"), { recursive: true });
await writeFile(resultsPath, `${JSON.stringify(report, null, 2)}\n`);
await writeSection(docsPath, START, END, render(report));
console.log(`wrote ${resultsPath} and the transport section of docs/benchmarks.md`);

/** `total` calls of `call` from CONCURRENCY loops; latencies, errors and the rate over the run. */
async function drive(total: number, call: () => Promise<unknown>): Promise<{ calls: number; errors: number; throughput: number; p50Ms: number; p99Ms: number }> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: unknown;
  let issued = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (issued < total) {
        issued += 1;
        const t0 = performance.now();
        try {
          await call();
          latencies.push(performance.now() - t0);
        } catch (error) {
          errors += 1;
          firstError ??= error;
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  if (firstError !== undefined) console.warn(`${errors} errors, first: ${(firstError as Error).message}`);
  const sorted = latencies.sort((a, b) => a - b);
  return { calls: sorted.length, errors, throughput: Math.round(sorted.length / seconds), p50Ms: round(quantile(sorted, 0.5)), p99Ms: round(quantile(sorted, 0.99)) };
}

function render(r: Report): string {
  const byKey = new Map(r.rows.map((row) => [row.scenario, row]));
  const serverSide = (row: Row) => (row.cpuMsPerCall["server"] ?? 0) + (row.cpuMsPerCall["callee"] ?? 0);
  const ratio = (a: string, b: string) => {
    const x = byKey.get(a);
    const y = byKey.get(b);
    return x === undefined || y === undefined || serverSide(y) === 0 ? "n/a" : `${round(serverSide(x) / serverSide(y), 2)}×`;
  };
  const lines = [
    "## Internal transport: connect-node vs @grpc/grpc-js (`bench/transport.ts`)",
    "",
    `${r.at}, commit ${r.commit}. Load generator: this Node process (connect-node's gRPC transport unless the row says grpc-js client), ` +
      `${r.concurrency} calls in flight over one HTTP/2 connection, ${r.calls} measured calls after ${r.warmupCalls} to warm up. Every server is our runtime's ` +
      "`startServer` (full interceptor chain, user-token auth configured) serving `AuthService/GetJwks` (public) on its connect-node listener " +
      "or its grpc-js one (`grpcJsPort`), one process each; the hop rows make one `Health/Check` call to a second such server per call through " +
      "`createServiceClient` over the named transport. CPU is user + system from `/proc/<pid>/stat` over the measured window, per call. " +
      "The generator shares the 2 cores and bounds calls/s, so compare CPU per call, not calls/s.",
    "",
    "| scenario | calls/s | p50 ms | p99 ms | errors | server CPU ms/call | callee CPU ms/call | generator CPU ms/call | machine busy |",
    "|---|---|---|---|---|---|---|---|---|",
    ...r.rows.map(
      (row) =>
        `| ${row.label} | ${row.throughput} | ${row.p50Ms} | ${row.p99Ms} | ${row.errors} | ${row.cpuMsPerCall["server"] ?? "n/a"} | ${row.cpuMsPerCall["callee"] ?? "—"} | ${row.cpuMsPerCall["generator"] ?? "n/a"} | ${row.machineBusy} |`,
    ),
    "",
    `Server-side CPU per call, grpc-js ÷ connect-node: no-op ${ratio("noop-grpc-js", "noop-connect")}, one hop (both servers) ${ratio("hop-grpc-js", "hop-connect")}.`,
    "",
  ];
  return lines.join("\n");
}
