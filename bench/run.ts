// `make bench`: measures RPCs against a reference measured in the same run, and
// writes the figures to bench/results/latest.json and docs/benchmarks.md.
//
// Scenario "auth": the auth service on the real stack when DATABASE_URL,
// REDIS_URL and KAFKA_BROKERS are set (make bench starts them), otherwise on
// embedded defaults. Each RPC is driven by a fixed number of concurrent
// callers for a fixed time over one HTTP/2 connection (gRPC), and compared with
// grpc.health.v1.Health/Check on the same server — a no-op through the same
// interceptor chain — so the ratio shows what the RPC's own work costs.
import { mkdir, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { HealthService } from "@aviary/runtime/health";
import { authConfigFromEnv, startAuthService } from "@aviary/auth";

interface Result {
  name: string;
  concurrency: number;
  seconds: number;
  calls: number;
  errors: number;
  throughput: number;
  p50Ms: number;
  p99Ms: number;
}

const durationMs = Number(process.env["BENCH_SECONDS"] ?? 5) * 1000;
const warmupMs = 1000;

/** Runs `call` from `concurrency` loops for the duration; latencies from after the warm-up only. */
async function measure(name: string, concurrency: number, call: () => Promise<unknown>): Promise<Result> {
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const measureFrom = started + warmupMs;
  const end = measureFrom + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          await call();
        } catch {
          errors += 1;
        }
        if (t0 >= measureFrom) latencies.push(performance.now() - t0);
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
  return {
    name,
    concurrency,
    seconds: durationMs / 1000,
    calls: latencies.length,
    errors,
    throughput: Math.round(latencies.length / (durationMs / 1000)),
    p50Ms: Number(at(0.5).toFixed(2)),
    p99Ms: Number(at(0.99).toFixed(2)),
  };
}

const realStack = Boolean(process.env["DATABASE_URL"] && process.env["REDIS_URL"] && process.env["KAFKA_BROKERS"]);
const service = await startAuthService(
  authConfigFromEnv({
    ...process.env,
    AUTH_PORT: "0",
    LOG_LEVEL: "warn",
    AUTH_CODE_SINK: resolve(import.meta.dirname, "../.dev/bench-codes.jsonl"),
    // Brute-force limits would throttle the login loop; they are not what is measured.
    AUTH_LOGIN_FAILURES_PER_IDENTITY: "1000000",
    AUTH_LOGIN_FAILURES_PER_IP: "1000000",
  }),
);
const transport = createGrpcTransport({ baseUrl: service.url });
const auth = createClient(AuthService, transport);
const health = createClient(HealthService, transport);

const email = `bench.${Date.now()}@example.org`;
const password = "violet-harbour-teapot-42";
await auth.register({ identity: { case: "email", value: email }, password });
const login = await auth.login({ identity: { case: "email", value: email }, password });
const headers = { authorization: `Bearer ${login.tokens?.accessToken}` };

const results: Result[] = [];
results.push(await measure("noop Health/Check", 32, () => health.check({})));
results.push(await measure("GetJwks (public, no I/O)", 32, () => auth.getJwks({})));
results.push(await measure("GetMe (JWT verify + denylist + DB read)", 32, () => auth.getMe({}, { headers })));
results.push(await measure("Login (argon2id 19 MiB/2 passes + session write + outbox)", 4, () => auth.login({ identity: { case: "email", value: email }, password })));
await service.close();

const reference = results[0] as Result;
const rows = results.map((r) => ({
  ...r,
  throughputVsNoop: Number((r.throughput / reference.throughput).toFixed(3)),
  p50VsNoop: Number((r.p50Ms / reference.p50Ms).toFixed(2)),
}));
const report = {
  at: new Date().toISOString(),
  stack: realStack ? "real (PostgreSQL, Redis, Kafka)" : "embedded (PGlite, memory cache, memory bus)",
  node: process.version,
  cpus: (await import("node:os")).cpus().length,
  scenarios: { auth: rows },
};
const resultsDir = resolve(import.meta.dirname, "results");
await mkdir(resultsDir, { recursive: true });
await writeFile(resolve(resultsDir, "latest.json"), `${JSON.stringify(report, null, 2)}\n`);

const table = [
  "| RPC | callers | calls/s | p50 ms | p99 ms | calls/s vs no-op | p50 vs no-op | errors |",
  "|---|---|---|---|---|---|---|---|",
  ...rows.map((r) => `| ${r.name} | ${r.concurrency} | ${r.throughput} | ${r.p50Ms} | ${r.p99Ms} | ${r.throughputVsNoop} | ${r.p50VsNoop} | ${r.errors} |`),
].join("\n");
await writeFile(
  resolve(import.meta.dirname, "../docs/benchmarks.md"),
  `# Benchmarks\n\nWritten by \`make bench\` (${report.at}, ${report.stack}, Node ${report.node}, ${report.cpus} cores).\n` +
    `Raw figures: \`bench/results/latest.json\`. Each RPC runs for ${durationMs / 1000} s after a ${warmupMs / 1000} s warm-up over one HTTP/2 connection (gRPC);\n` +
    `the reference is grpc.health.v1.Health/Check on the same server, through the same interceptor chain.\n\n## Auth\n\n${table}\n`,
);
console.log(table);
