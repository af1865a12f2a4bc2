/**
 * A real Jaeger v2 (built once from the Go module proxy and cached by
 * `deploy/local/infra.sh tool jaeger`) for tests that assert on traces: an
 * in-memory store, OTLP/gRPC and OTLP/HTTP receivers and the query API, every
 * listener on a free loopback port (Jaeger's defaults bind all interfaces).
 */
import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { startServerBinary } from "./server-binary.ts";
import { freePort } from "./envoy.ts";
import { repoRoot } from "./infra.ts";

/** A cold build takes ~8 min (then it is cached under ~/.cache/aviary). */
export const JAEGER_BUILD_TIMEOUT_MS = 20 * 60_000;

export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references?: Array<{ refType: string; traceID: string; spanID: string }>;
  processID: string;
  tags?: Array<{ key: string; value: unknown }>;
}

export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string }>;
}

export interface RunningJaeger {
  /** OTLP/HTTP base URL, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  otlpHttpUrl: string;
  /** OTLP/gRPC URL, for Envoy's OpenTelemetry tracer. */
  otlpGrpcUrl: string;
  /** The query service (HTTP API). */
  queryUrl: string;
  /** The trace as the query API returns it; undefined while Jaeger has none of its spans. */
  trace(traceId: string): Promise<JaegerTrace | undefined>;
  output(): string;
  stop(): Promise<void>;
}

/** The cached Jaeger binary, built on first use. */
export async function jaegerBinary(): Promise<string> {
  const { stdout } = await promisify(execFile)(path.join(repoRoot, "deploy/local/infra.sh"), ["tool", "jaeger"], {
    encoding: "utf8",
    timeout: JAEGER_BUILD_TIMEOUT_MS,
  });
  return stdout.trim();
}

function config(ports: { otlpGrpc: number; otlpHttp: number; queryHttp: number; queryGrpc: number }): string {
  // JSON is YAML. No internal metrics server (it would take :8888), memory storage only.
  return JSON.stringify({
    service: {
      extensions: ["jaeger_storage", "jaeger_query"],
      pipelines: { traces: { receivers: ["otlp"], processors: [], exporters: ["jaeger_storage_exporter"] } },
      telemetry: { metrics: { level: "none" }, logs: { level: "warn" } },
    },
    extensions: {
      jaeger_storage: { backends: { memstore: { memory: { max_traces: 10_000 } } } },
      jaeger_query: {
        storage: { traces: "memstore" },
        http: { endpoint: `127.0.0.1:${ports.queryHttp}` },
        grpc: { endpoint: `127.0.0.1:${ports.queryGrpc}` },
      },
    },
    receivers: {
      otlp: { protocols: { grpc: { endpoint: `127.0.0.1:${ports.otlpGrpc}` }, http: { endpoint: `127.0.0.1:${ports.otlpHttp}` } } },
    },
    exporters: { jaeger_storage_exporter: { trace_storage: "memstore" } },
  });
}

export async function startJaeger(options: { readyTimeoutMs?: number } = {}): Promise<RunningJaeger> {
  const binary = await jaegerBinary();
  const ports = { otlpGrpc: await freePort(), otlpHttp: await freePort(), queryHttp: await freePort(), queryGrpc: await freePort() };
  const dir = await mkdtemp(path.join(tmpdir(), "aviary-jaeger-"));
  const configPath = path.join(dir, "jaeger.yaml");
  await writeFile(configPath, config(ports));
  const queryUrl = `http://127.0.0.1:${ports.queryHttp}`;
  const answers = (url: string, init?: RequestInit) => fetch(url, init).then((r) => r.status < 500, () => false);
  // Ready once the query API answers and the OTLP/HTTP receiver accepts requests.
  const child = await startServerBinary({
    name: "jaeger",
    binary,
    args: ["--config", configPath],
    dir,
    ready: async () =>
      (await answers(`${queryUrl}/api/services`)) &&
      (await answers(`http://127.0.0.1:${ports.otlpHttp}/v1/traces`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })),
    ...(options.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: options.readyTimeoutMs }),
  });

  return {
    otlpHttpUrl: `http://127.0.0.1:${ports.otlpHttp}`,
    otlpGrpcUrl: `http://127.0.0.1:${ports.otlpGrpc}`,
    queryUrl,
    async trace(traceId) {
      const res = await fetch(`${queryUrl}/api/traces/${traceId}`);
      if (res.status === 404) return undefined;
      if (!res.ok) throw new Error(`jaeger query answered ${res.status}: ${await res.text()}`);
      const body = (await res.json()) as { data?: JaegerTrace[] };
      return body.data?.[0];
    },
    output: child.output,
    stop: child.stop,
  };
}
