// The Grafana dashboards in deploy/grafana/dashboards, checked against what
// really exists: every PromQL expression parses (promtool, from Debian's
// prometheus package via deploy/local/infra.sh), names only metrics that are
// exported today — the services' instruments (found in the code, named as the
// OpenTelemetry Prometheus exporter names them) and Envoy's (scraped from a
// real Envoy started with the edge config) — uses only labels those metrics
// carry, and filters rpc_method only by RPCs the contracts define. Grafana
// provisions them from the folder compose mounts. The alert rules'
// expressions (deploy/prometheus/alerts.yml) are held to the same checks.
import test from "ava";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse } from "yaml";
import { startEnvoy } from "../../services/runtime/test-support/envoy.ts";
import { alertExpressions, dashboardExpressions, dashboardFiles, dashboards, interpolate, repoRoot } from "./promql.ts";

const files = dashboardFiles;
const expressions = () => [...dashboardExpressions(), ...alertExpressions()];

const FUNCTIONS = new Set(
  "abs absent absent_over_time avg avg_over_time bottomk ceil changes clamp clamp_max clamp_min count count_over_time count_values delta deriv exp floor group histogram_quantile holt_winters idelta increase irate label_join label_replace last_over_time ln log10 log2 max max_over_time min min_over_time predict_linear quantile quantile_over_time rate resets round scalar sgn sort sort_desc sqrt stddev stddev_over_time stdvar sum sum_over_time time timestamp topk vector".split(" "),
);
const KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless", "inf", "nan"]);

/** Metric names and label names an expression uses. */
export function namesIn(expr: string): { metrics: string[]; labels: string[] } {
  const labels: string[] = [];
  let text = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  text = text.replace(/\{([^}]*)\}/g, (_m, inner: string) => {
    for (const matcher of inner.split(",")) {
      const name = /^\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)/.exec(matcher)?.[1];
      if (name) labels.push(name);
    }
    return " ";
  });
  text = text.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_m, _k, inner: string) => {
    for (const name of inner.split(",").map((s) => s.trim()).filter(Boolean)) labels.push(name);
    return " ";
  });
  text = text.replace(/\[[^\]]*\]/g, " ");
  // Numbers (1e-9 is not a metric named e).
  text = text.replace(/(?<![\w:])\d+(?:\.\d+)?(?:e[+-]?\d+)?/gi, " ");
  const metrics: string[] = [];
  for (const match of text.matchAll(/[a-zA-Z_:][\w:]*/g)) {
    const word = match[0];
    const next = text.slice(match.index! + word.length).trimStart();
    if (FUNCTIONS.has(word) && next.startsWith("(")) continue;
    if (KEYWORDS.has(word.toLowerCase())) continue;
    metrics.push(word);
  }
  return { metrics, labels };
}

/** The services' own instruments, as @opentelemetry/exporter-prometheus names them (checked against a real scrape when this was written). */
function serviceMetrics(): Map<string, Set<string>> {
  const sources: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory() && entry.name !== "node_modules" && entry.name !== "test") walk(full);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts")) sources.push(readFileSync(full, "utf8"));
    }
  };
  for (const service of readdirSync(path.join(repoRoot, "services"))) walk(path.join(repoRoot, "services", service, "src"));
  const metrics = new Map<string, Set<string>>();
  const add = (name: string, labels: string[]) => metrics.set(name, new Set([...labels, "service", "job", "instance"]));
  for (const source of sources) {
    for (const m of source.matchAll(/\bcreate(Counter|UpDownCounter|Histogram|Gauge|ObservableGauge|ObservableCounter|ObservableUpDownCounter)\(\s*"([^"]+)"/g)) {
      const [, kind, raw] = m;
      const name = raw!.replace(/[^a-zA-Z0-9_:]/g, "_");
      // The attribute keys recorded with it, read from the call sites is brittle: the runtime's and the known ones are listed.
      const labels = [...RPC_LABELS, ...INSTRUMENT_LABELS];
      if (kind === "Histogram") for (const suffix of ["_bucket", "_sum", "_count"]) add(name + suffix, [...labels, "le"]);
      else if (kind === "Counter" || kind === "ObservableCounter") add(name.endsWith("_total") ? name : `${name}_total`, labels);
      else add(name, labels);
    }
  }
  add("up", []);
  add("target_info", ["service_name"]);
  return metrics;
}
const RPC_LABELS = ["rpc_system", "rpc_service", "rpc_method", "status"];
// ratelimit.decisions {rule, code}; auth.code_deliveries {channel, outcome}; the runtime's metrics.ts:
// events.consumed {group, topic, outcome}, kafka.consumer.lag {group, topic, partition}, outbox.* {outbox},
// cache.lookups {cache, keyspace, result}, push.deliveries {provider, verdict}.
const INSTRUMENT_LABELS = ["rule", "code", "channel", "outcome", "group", "topic", "partition", "outbox", "cache", "keyspace", "result", "provider", "verdict"];

/** The metric families a real Envoy with the loopback edge config exports, with their labels. */
async function envoyMetrics(): Promise<Map<string, Set<string>>> {
  // Counters and gauges exist from the start; histograms only once observed, so one request goes
  // through to an upstream that answers every call with a gRPC error (and the rate-limit service
  // does not answer: the edge fails open).
  const upstream = http2.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/grpc", "grpc-status": "5", "grpc-message": "stub" });
    res.end();
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const envoy = await startEnvoy({ upstreams: { auth: url, auth_jwks: url }, rateLimitService: "http://127.0.0.1:9", readyTimeoutMs: 30_000 });
  try {
    await fetch(`${envoy.url}/v1/auth/register`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    const text = await (await fetch(`${envoy.adminUrl}/stats/prometheus`)).text();
    const metrics = new Map<string, Set<string>>();
    for (const line of text.split("\n")) {
      const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? /.exec(line);
      if (!m) continue;
      const labels = metrics.get(m[1]!) ?? new Set(["service", "job", "instance"]);
      for (const pair of (m[2] ?? "").matchAll(/([a-zA-Z_]\w*)="/g)) labels.add(pair[1]!);
      metrics.set(m[1]!, labels);
    }
    return metrics;
  } finally {
    await envoy.stop();
    upstream.close();
  }
}

/** Every RPC name in the contracts (and the gRPC health protocol's). */
function rpcNames(): Set<string> {
  const names = new Set(["Check", "Watch"]);
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".proto")) for (const m of readFileSync(full, "utf8").matchAll(/^\s*rpc\s+(\w+)\s*\(/gm)) names.add(m[1]!);
    }
  };
  walk(path.join(repoRoot, "proto"));
  return names;
}

test("the four dashboards exist, with unique uids, on the provisioned Prometheus datasource", (t) => {
  t.deepEqual(files.sort(), ["events-pipeline.json", "mesh-overview.json", "realtime.json", "service-red.json"]);
  const uids = dashboards.map((d) => d.json.uid);
  t.is(new Set(uids).size, uids.length);
  const datasources = parse(readFileSync(path.join(repoRoot, "deploy/grafana/provisioning/datasources/datasources.yml"), "utf8")).datasources as any[];
  const prometheusUid = datasources.find((d) => d.type === "prometheus").uid;
  for (const { file, json } of dashboards) {
    const panels = (json.panels as any[]).filter((p) => p.type !== "row" && p.type !== "text");
    t.true(panels.length >= 3, `${file} has panels`);
    for (const panel of panels) {
      t.is(panel.datasource?.uid, prometheusUid, `${file}: ${panel.title}`);
      t.true(panel.targets.length > 0, `${file}: ${panel.title} has a query`);
    }
  }
});

test("Grafana in compose provisions the dashboards folder", (t) => {
  const compose = parse(readFileSync(path.join(repoRoot, "deploy/docker-compose.yml"), "utf8"), { merge: true });
  const mounts = new Map<string, string>((compose.services.grafana.volumes as string[]).map((v) => [v.split(":")[0]!, v.split(":")[1]!]));
  const provider = parse(readFileSync(path.join(repoRoot, "deploy/grafana/provisioning/dashboards/dashboards.yml"), "utf8")).providers[0];
  t.is(mounts.get("./grafana/dashboards"), provider.options.path);
  t.is(mounts.get("./grafana/provisioning"), "/etc/grafana/provisioning");
});

test("every expression names only exported metrics and their labels, and only RPCs that exist", async (t) => {
  const known = new Map([...serviceMetrics(), ...(await envoyMetrics())]);
  t.true(known.has("rpc_server_requests_total") && known.has("envoy_cluster_upstream_rq_total"), "both sources found");
  const rpcs = rpcNames();
  const all = expressions();
  t.true(all.length > 30, `${all.length} expressions`);
  for (const { where, expr } of all) {
    const { metrics, labels } = namesIn(interpolate(expr));
    t.true(metrics.length > 0, `${where}: no metric in ${expr}`);
    const labelSets = metrics.map((m) => known.get(m));
    for (const [i, metric] of metrics.entries()) t.truthy(labelSets[i], `${where}: ${metric} is not exported by any service or by Envoy`);
    const allowed = new Set(labelSets.flatMap((set) => [...(set ?? [])]));
    for (const label of labels) t.true(allowed.has(label), `${where}: label ${label} is not on ${metrics.join(", ")}`);
    for (const m of expr.matchAll(/rpc_method(?:=|=~|!=|!~)"([^"]+)"/g)) {
      if (m[1]!.startsWith("$")) continue;
      for (const name of m[1]!.split("|")) t.true(rpcs.has(name), `${where}: no RPC ${name}`);
    }
  }
});

test("every expression parses (promtool check rules)", (t) => {
  const promtool = execFileSync(path.join(repoRoot, "deploy/local/infra.sh"), ["tool", "promtool"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
  const rules = expressions().map(({ expr }, i) => ({ record: `aviary:dashboard_expr:${i}`, expr: interpolate(expr) }));
  const dir = mkdtempSync(path.join(tmpdir(), "aviary-dashboards-"));
  try {
    const file = path.join(dir, "rules.json");
    // Rule files are YAML; JSON is YAML.
    writeFileSync(file, JSON.stringify({ groups: [{ name: "dashboards", rules }] }));
    const run = spawnSync(promtool, ["check", "rules", file], { encoding: "utf8" });
    t.is(run.status, 0, `promtool rejected a dashboard expression:\n${run.stdout}${run.stderr}`);
    t.regex(run.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
