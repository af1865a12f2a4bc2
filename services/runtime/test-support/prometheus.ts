/**
 * A real Prometheus (Debian's package, unpacked into ~/.cache/aviary by
 * `deploy/local/infra.sh tool prometheus`, the same package as promtool) for
 * tests that assert on scraped metrics: a generated scrape config over the
 * targets a test started, a private TSDB in a temp dir, the web API on a free
 * loopback port, a 1 s scrape interval.
 */
import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { freePort } from "./envoy.ts";
import { repoRoot } from "./infra.ts";
import { startServerBinary } from "./server-binary.ts";

export interface ScrapeTarget {
  /** The job label (and the `service` label, as deploy/prometheus/prometheus.yml sets it). */
  service: string;
  /** http://127.0.0.1:PORT */
  url: string;
  /** Default /metrics. */
  metricsPath?: string;
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface RunningPrometheus {
  url: string;
  /** An instant query; throws on a query error (bad PromQL), resolves with the vector (a scalar as one sample). */
  query(expr: string): Promise<PromSample[]>;
  /** Resolves once every target has been scraped successfully at least `scrapes` times after this call. */
  scraped(scrapes?: number, timeoutMs?: number): Promise<void>;
  output(): string;
  stop(): Promise<void>;
}

export async function prometheusBinary(): Promise<string> {
  const { stdout } = await promisify(execFile)(path.join(repoRoot, "deploy/local/infra.sh"), ["tool", "prometheus"], { encoding: "utf8", timeout: 5 * 60_000 });
  return stdout.trim();
}

export async function startPrometheus(targets: ScrapeTarget[], options: { readyTimeoutMs?: number } = {}): Promise<RunningPrometheus> {
  const binary = await prometheusBinary();
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), "aviary-prometheus-"));
  const configPath = path.join(dir, "prometheus.yml");
  // JSON is YAML.
  await writeFile(
    configPath,
    JSON.stringify({
      global: { scrape_interval: "1s", scrape_timeout: "1s", evaluation_interval: "1s" },
      scrape_configs: targets.map((t) => ({
        job_name: t.service,
        metrics_path: t.metricsPath ?? "/metrics",
        static_configs: [{ targets: [new URL(t.url).host], labels: { service: t.service } }],
      })),
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const server = await startServerBinary({
    name: "prometheus",
    binary,
    args: [`--config.file=${configPath}`, `--storage.tsdb.path=${path.join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"],
    dir,
    ready: () => fetch(`${url}/-/ready`).then((r) => r.ok, () => false),
    ...(options.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: options.readyTimeoutMs }),
  });

  const api = async <T>(pathAndQuery: string): Promise<T> => {
    const body = (await (await fetch(`${url}${pathAndQuery}`)).json()) as { status: string; data: T; error?: string };
    if (body.status !== "success") throw new Error(`prometheus ${pathAndQuery}: ${body.error}`);
    return body.data;
  };

  return {
    url,
    async query(expr) {
      const data = await api<{ resultType: string; result: PromSample[] | [number, string] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
      if (data.resultType === "scalar") return [{ metric: {}, value: data.result as [number, string] }];
      return data.result as PromSample[];
    },
    async scraped(scrapes = 1, timeoutMs = 30_000) {
      // Polls the targets API: each target's lastScrape must move past `since` (scrapes times) with health up.
      const deadline = Date.now() + timeoutMs;
      const seen = new Map<string, { last: string; count: number }>();
      let since: Map<string, string> | undefined;
      for (;;) {
        const { activeTargets } = await api<{ activeTargets: Array<{ scrapeUrl: string; lastScrape: string; health: string; lastError: string }> }>("/api/v1/targets?state=active");
        since ??= new Map(activeTargets.map((t) => [t.scrapeUrl, t.lastScrape]));
        for (const t of activeTargets) {
          const prev = seen.get(t.scrapeUrl) ?? { last: since.get(t.scrapeUrl) ?? "", count: 0 };
          if (t.health === "up" && t.lastScrape !== prev.last) seen.set(t.scrapeUrl, { last: t.lastScrape, count: prev.count + 1 });
        }
        const lagging = activeTargets.filter((t) => (seen.get(t.scrapeUrl)?.count ?? 0) < scrapes);
        if (activeTargets.length === targets.length && lagging.length === 0) return;
        if (Date.now() > deadline) {
          throw new Error(`targets not scraped ${scrapes}× within ${timeoutMs} ms: ${lagging.map((t) => `${t.scrapeUrl} (${t.health}: ${t.lastError})`).join(", ")}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    },
    output: server.output,
    stop: server.stop,
  };
}
