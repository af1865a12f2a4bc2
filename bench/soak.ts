// `make soak`: a benchmark, not a test. SOAK_MINUTES (default 30) of mixed
// load at a constant rate through a real Envoy in front of the whole mesh
// (bench/soak-mesh.ts, its own process) on the real PostgreSQL, Redis, Kafka
// and S3: sign-ups, follows, posts, likes, comments, feed and notification
// reads, chat sends, and a few REST realtime streams held open throughout.
// Once a minute it samples the mesh process and Envoy (RSS and open file
// descriptors from /proc), the services' /metrics (live libuv handles and
// requests, event-loop delay p99, Kafka consumer lag per group) and the
// load's own latency (p99 per minute) and errors; writes
// bench/results/soak.json, docs/soak.svg and the "Soak" section of
// docs/reliability.md, and prints whether the run was flat within noise
// (the criterion is `verdictOf` below).
//
// SOAK_MINUTES, SOAK_RATE (operations per second, default 20), SOAK_STREAMS
// (default 4). A run shorter than 30 minutes is labelled as such.
// `node bench/soak.ts --render` rewrites the svg and the section from
// bench/results/soak.json without running.
import { readdirSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { randomUUID } from "node:crypto";
import { uniqueName } from "../services/runtime/test-support/infra.ts";
import { writeSection } from "./stack.ts";
import { quantile, repo, round, spawnServer, teardown } from "./support.ts";

/** What a run was asked for; `--render` takes it from bench/results/soak.json instead. */
interface RunShape {
  minutes: number;
  ratePerSecond: number;
  streams: number;
  date: string;
}
const MINUTES = Number(process.env["SOAK_MINUTES"] ?? 30);
const RATE = Number(process.env["SOAK_RATE"] ?? 20);
const STREAMS = Number(process.env["SOAK_STREAMS"] ?? 4);
const SEED_USERS = 20;
const PASSWORD = "violet-harbour-teapot-42";
/** The first third of a run is warm-up (pools, JIT, caches filling); the verdict fits the rest. */
const WARMUP_FRACTION = 1 / 3;
/** docs/reliability.md when it does not exist yet (the fault matrix writes its own section). */
const RELIABILITY_INTRO =
  "# Reliability\n\nHow the mesh holds up over time and under faults: the soak benchmark (`make soak`) and the fault matrix. Each section is written by the tool named in it.\n";
/** Flat within noise: the fitted growth over the measured part stays below these, per minute. */
const LIMITS = { meshRssMbPerMin: 1, envoyRssMbPerMin: 0.5, meshFdsPerMin: 0.5, activeResourcesPerMin: 1 };
/** ...and the last five minutes' p99 is at most this multiple of the first five after warm-up. */
const P99_GROWTH_LIMIT = 1.5;

interface User {
  userId: string;
  token: string;
}

interface Minute {
  minute: number;
  operations: number;
  errors: number;
  /** Non-200 answers by "<operation> <status>". */
  errorsByStatus: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  meshRssMb: number;
  meshFds: number;
  envoyRssMb: number;
  envoyFds: number;
  activeResources: number;
  eventLoopP99Ms: number;
  consumerLag: Record<string, number>;
  streamsOpen: number;
  streamReconnects: number;
}

// --- the system under test ---------------------------------------------------

// `node bench/soak.ts --render`: rewrite docs/soak.svg and the docs section from the saved results, no run.
if (process.argv.includes("--render")) {
  const saved = JSON.parse(readFileSync(resolve(repo, "bench/results/soak.json"), "utf8")) as RunShape & { verdict: Verdict; profilesNeverSeen: number; perMinute: Minute[] };
  await writeResults(saved, saved.perMinute, saved.verdict, saved.profilesNeverSeen);
  process.exit(0);
}

const cleanup = teardown();
const infoPath = join(tmpdir(), `${uniqueName("soak-mesh")}.json`);
const meshServer = await spawnServer("soak-mesh", "bench/soak-mesh.ts", { SOAK_MESH_INFO: infoPath });
cleanup.steps.push(() => meshServer.stop(60_000));
const info = JSON.parse(readFileSync(infoPath, "utf8")) as { url: string; upstreams: Record<string, string> };
const edge = info.url;
const meshPid = meshServer.process.pid!;
const envoyPid = childrenOf(meshPid).find((pid) => readProc(pid, "comm").trim() === "envoy");
if (envoyPid === undefined) throw new Error("no envoy child of the mesh process");

function readProc(pid: number, file: string): string {
  try {
    return readFileSync(`/proc/${pid}/${file}`, "utf8");
  } catch {
    return "";
  }
}

function childrenOf(pid: number): number[] {
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return tasks.flatMap((task) => readProc(pid, `task/${task}/children`).trim().split(/\s+/).filter(Boolean).map(Number));
}

function rssMb(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readProc(pid, "status"))?.[1];
  return kb === undefined ? Number.NaN : round(Number(kb) / 1024, 1);
}

function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

/** `name{labels} value` lines of a Prometheus text page, for the metric `name`. */
function samples(page: string, name: string): Array<{ labels: string; value: number }> {
  const found: Array<{ labels: string; value: number }> = [];
  for (const line of page.split("\n")) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (match && match[1] === name) found.push({ labels: match[2] ?? "", value: Number(match[3]) });
  }
  return found;
}

async function metricsOf(service: string): Promise<string> {
  const url = info.upstreams[service];
  if (!url) return "";
  return fetch(`${url}/metrics`).then((r) => r.text(), () => "");
}

// --- the load ----------------------------------------------------------------

const users: User[] = [];
/** Sign-ups whose profile did not appear within two minutes. */
let profilesNeverSeen = 0;
const posts: string[] = [];
let latencies: number[] = [];
let operations = 0;
let errorsByStatus: Record<string, number> = {};

/** One request through the edge, timed; a non-200 is counted under "<label> <status>" (the label names the route, not the ids). */
async function call(label: string, method: string, path: string, token: string | undefined, body?: unknown): Promise<unknown> {
  const started = performance.now();
  let status = "network";
  try {
    const response = await fetch(`${edge}${path}`, {
      method,
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    status = String(response.status);
    const text = await response.text();
    if (!response.ok) return undefined;
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  } finally {
    latencies.push(performance.now() - started);
    operations++;
    if (status !== "200") errorsByStatus[`${label} ${status}`] = (errorsByStatus[`${label} ${status}`] ?? 0) + 1;
  }
}

async function signUp(): Promise<void> {
  const email = `${uniqueName("soak")}@example.org`;
  await call("register", "POST", "/v1/auth/register", undefined, { email, password: PASSWORD });
  const login = (await call("login", "POST", "/v1/auth/login", undefined, { email, password: PASSWORD })) as { userId: string; tokens: { accessToken: string } } | undefined;
  if (!login) return;
  const user = { userId: login.userId, token: login.tokens.accessToken };
  // The profile is made by the user service's consumer of the account event; until it exists, following,
  // messaging or liking as this user is a 404. Joins the pool once it does (polled, not counted as load).
  const deadline = performance.now() + 120_000;
  while (performance.now() < deadline) {
    const profile = await fetch(`${edge}/v1/users/${user.userId}`, { headers: { authorization: `Bearer ${user.token}` } }).then((r) => r.status, () => 0);
    if (profile === 200) {
      users.push(user);
      return;
    }
    await sleep(1_000);
  }
  profilesNeverSeen++;
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;
/** Two different users: one acting, one acted on (following or messaging oneself is a 400, not load). */
function pair(): [User, User] {
  const actor = pick(users);
  let other = pick(users);
  while (other === actor) other = pick(users);
  return [actor, other];
}

/** One operation of the mix, by weight. */
const MIX: Array<[number, () => Promise<unknown>]> = [
  [1, () => signUp()],
  [2, () => {
    const [actor, other] = pair();
    return call("follow", "POST", `/v1/users/${other.userId}:follow`, actor.token, {});
  }],
  [3, async () => {
    const created = (await call("post", "POST", "/v1/posts", pick(users).token, { text: `soak ${randomUUID()}` })) as { post?: { postId: string } } | undefined;
    if (created?.post) posts.push(created.post.postId);
    // A bounded window of recent posts: likes and comments go to what is fresh, as they would.
    if (posts.length > 500) posts.splice(0, posts.length - 500);
  }],
  [3, () => (posts.length > 0 ? call("like", "POST", `/v1/posts/${pick(posts)}:like`, pick(users).token, {}) : Promise.resolve())],
  [2, () => (posts.length > 0 ? call("comment", "POST", `/v1/posts/${pick(posts)}/comments`, pick(users).token, { text: "soak comment" }) : Promise.resolve())],
  [4, () => call("feed", "GET", "/v1/feed?page_size=20", pick(users).token)],
  [2, () => {
    const [actor, other] = pair();
    return call("message", "POST", "/v1/messages", actor.token, { directUserId: other.userId, clientMessageId: randomUUID(), text: "soak message" });
  }],
  [2, () => call("notifications", "GET", "/v1/notifications?page_size=20", pick(users).token)],
];
const totalWeight = MIX.reduce((sum, [weight]) => sum + weight, 0);

function nextOperation(): () => Promise<unknown> {
  let r = Math.random() * totalWeight;
  for (const [weight, operation] of MIX) {
    if ((r -= weight) < 0) return operation;
  }
  return MIX[0]![1];
}

// A few REST realtime streams held open for the whole run, reopened when the server rotates them.
const streamsAbort = new AbortController();
let streamsOpen = 0;
let streamReconnects = 0;
async function holdStream(user: User): Promise<void> {
  while (!streamsAbort.signal.aborted) {
    try {
      const response = await fetch(`${edge}/v1/realtime/stream`, { headers: { authorization: `Bearer ${user.token}` }, signal: streamsAbort.signal });
      if (response.body) {
        streamsOpen++;
        try {
          for await (const _ of response.body) {
            // Drained, not parsed: the soak watches the server side of a long-lived stream.
          }
        } finally {
          streamsOpen--;
        }
      }
    } catch {
      // Aborted at the end, or dropped: reopened below unless aborted.
    }
    if (streamsAbort.signal.aborted) break;
    streamReconnects++;
    await sleep(1_000);
  }
}

// --- the run -----------------------------------------------------------------

const results: Minute[] = [];
let exitCode = 0;
try {
  await Promise.all(Array.from({ length: SEED_USERS }, () => signUp()));
  if (users.length < 2) throw new Error("could not sign up the soak's first users");
  const streams = users.slice(0, STREAMS).map((user) => holdStream(user));
  console.log(`soak: ${MINUTES} min at ${RATE} operations/s through ${edge} (mesh pid ${meshPid}, envoy pid ${envoyPid}), ${STREAMS} realtime streams`);

  const inFlight = new Set<Promise<unknown>>();
  const startedAt = performance.now();
  const intervalMs = 1_000 / RATE;
  let sent = 0;
  for (let minute = 1; minute <= MINUTES; minute++) {
    latencies = [];
    operations = 0;
    errorsByStatus = {};
    const reconnectsBefore = streamReconnects;
    const minuteEnd = startedAt + minute * 60_000;
    // Open-loop at a constant rate: operations start on schedule whether or not earlier ones finished.
    while (performance.now() < minuteEnd) {
      const due = startedAt + sent * intervalMs;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      sent++;
      const operation = nextOperation()().finally(() => inFlight.delete(operation));
      inFlight.add(operation);
    }
    results.push(await sampleMinute(minute, streamReconnects - reconnectsBefore));
    const m = results.at(-1)!;
    console.log(
      `minute ${minute}: ${m.operations} ops, ${m.errors} errors ${JSON.stringify(m.errorsByStatus)}, p99 ${m.p99Ms} ms; mesh ${m.meshRssMb} MB / ${m.meshFds} fds / ${m.activeResources} handles, envoy ${m.envoyRssMb} MB; loop p99 ${m.eventLoopP99Ms} ms; lag ${JSON.stringify(m.consumerLag)}`,
    );
  }
  await Promise.allSettled(inFlight);
  streamsAbort.abort();
  await Promise.allSettled(streams);

  const verdict = verdictOf(results);
  await writeResults({ minutes: MINUTES, ratePerSecond: RATE, streams: STREAMS, date: new Date().toISOString() }, results, verdict, profilesNeverSeen);
  console.log(`soak: ${verdict.flat ? "PASS" : "FAIL"} — ${verdict.summary}; ${profilesNeverSeen} sign-ups never got a profile`);
  if (!verdict.flat) exitCode = 1;
} catch (error) {
  console.error(error);
  exitCode = 1;
} finally {
  streamsAbort.abort();
  await cleanup.run();
}
process.exit(exitCode);

async function sampleMinute(minute: number, reconnects: number): Promise<Minute> {
  const sorted = [...latencies].sort((a, b) => a - b);
  const [feedPage, notificationPage, chatPage] = await Promise.all([metricsOf("feed"), metricsOf("notification"), metricsOf("chat")]);
  const consumerLag: Record<string, number> = {};
  for (const page of [feedPage, notificationPage, chatPage]) {
    for (const { labels, value } of samples(page, "kafka_consumer_lag")) {
      // Groups carry a per-run suffix (uniqueName); the prefix names the consumer.
      const group = /group="([^"]*)"/.exec(labels)?.[1]?.replace(/_[0-9a-z]+_[0-9a-f]{8}/, "") ?? "?";
      consumerLag[group] = (consumerLag[group] ?? 0) + value;
    }
  }
  // Every service of the mesh runs in one process: one service's page speaks for it (its delay histogram covers the last minute).
  const loopP99 = samples(feedPage, "nodejs_eventloop_delay_seconds").find((s) => s.labels.includes('quantile="p99"'))?.value ?? Number.NaN;
  const errors = Object.values(errorsByStatus).reduce((sum, n) => sum + n, 0);
  return {
    minute,
    operations,
    errors,
    errorsByStatus,
    p50Ms: round(quantile(sorted, 0.5), 1),
    p99Ms: round(quantile(sorted, 0.99), 1),
    meshRssMb: rssMb(meshPid),
    meshFds: openFds(meshPid),
    envoyRssMb: rssMb(envoyPid!),
    envoyFds: openFds(envoyPid!),
    activeResources: samples(feedPage, "nodejs_active_resources")[0]?.value ?? Number.NaN,
    eventLoopP99Ms: round(loopP99 * 1000, 1),
    consumerLag,
    streamsOpen,
    streamReconnects: reconnects,
  };
}

// --- the verdict ---------------------------------------------------------------

/** Least-squares slope of `ys` against minute numbers. */
function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

interface Verdict {
  flat: boolean;
  measuredFrom: number;
  slopes: Record<keyof typeof LIMITS, number>;
  p99Growth: number;
  summary: string;
}

/**
 * Flat within noise: over the minutes after warm-up, the least-squares slope
 * of mesh RSS, Envoy RSS, mesh file descriptors and live handles each stays
 * under its LIMITS, and the p99 of the last five minutes is at most
 * P99_GROWTH_LIMIT times that of the first five measured ones (fewer when the
 * run is short).
 */
function verdictOf(minutes: readonly Minute[]): Verdict {
  const measuredFrom = Math.min(minutes.length, Math.max(1, Math.floor(minutes.length * WARMUP_FRACTION) + 1));
  const measured = minutes.filter((m) => m.minute >= measuredFrom);
  const xs = measured.map((m) => m.minute);
  const slopes = {
    meshRssMbPerMin: round(slope(xs, measured.map((m) => m.meshRssMb)), 2),
    envoyRssMbPerMin: round(slope(xs, measured.map((m) => m.envoyRssMb)), 2),
    meshFdsPerMin: round(slope(xs, measured.map((m) => m.meshFds)), 2),
    activeResourcesPerMin: round(slope(xs, measured.map((m) => m.activeResources)), 2),
  };
  const window = Math.min(5, Math.max(1, Math.floor(measured.length / 2)));
  const mean = (items: readonly Minute[]) => items.reduce((sum, m) => sum + m.p99Ms, 0) / Math.max(1, items.length);
  const p99Growth = round(mean(measured.slice(-window)) / Math.max(0.001, mean(measured.slice(0, window))), 2);
  const over = (Object.keys(LIMITS) as Array<keyof typeof LIMITS>).filter((k) => slopes[k] >= LIMITS[k]);
  if (p99Growth > P99_GROWTH_LIMIT) over.push("p99Growth" as never);
  const summary = `minutes ${measuredFrom}–${minutes.length}: slopes ${JSON.stringify(slopes)} (limits ${JSON.stringify(LIMITS)}), p99 last/first ${window} min ${p99Growth}× (limit ${P99_GROWTH_LIMIT}×)${over.length > 0 ? `; over: ${over.join(", ")}` : ""}`;
  return { flat: over.length === 0, measuredFrom, slopes, p99Growth, summary };
}

// --- output --------------------------------------------------------------------

async function writeResults(run: RunShape, minutes: readonly Minute[], verdict: Verdict, profilesNeverSeen: number): Promise<void> {
  const { ratePerSecond: RATE, streams: STREAMS } = run;
  const label = run.minutes >= 30 ? `${run.minutes}-minute run` : `${run.minutes}-minute validation run (not the 30-minute soak; too short for a verdict on slow leaks)`;
  await mkdir(resolve(repo, "bench/results"), { recursive: true });
  await writeFile(
    resolve(repo, "bench/results/soak.json"),
    `${JSON.stringify({ label, ...run, limits: LIMITS, p99GrowthLimit: P99_GROWTH_LIMIT, verdict, profilesNeverSeen, perMinute: minutes }, null, 2)}\n`,
  );
  await writeFile(resolve(repo, "docs/soak.svg"), chart(minutes, label));
  const rows = minutes.map(
    (m) =>
      `| ${m.minute} | ${m.operations} | ${m.errors} | ${m.p50Ms} | ${m.p99Ms} | ${m.meshRssMb} | ${m.meshFds} | ${m.activeResources} | ${m.envoyRssMb} | ${m.eventLoopP99Ms} | ${Object.values(m.consumerLag).reduce((a, b) => a + b, 0)} | ${m.streamsOpen} |`,
  );
  const body =
    `## Soak\n\n` +
    `**${label}**, ${run.date.slice(0, 10)}, on a shared 2-core machine. \`make soak\` (bench/soak.ts; SOAK_MINUTES, SOAK_RATE, SOAK_STREAMS): ` +
    `${RATE} operations/s at a constant rate (open loop) through a real Envoy in front of the whole mesh on real PostgreSQL, Redis, Kafka and S3 — ` +
    `sign-ups, follows, posts, likes, comments, feed reads, chat sends and notification reads by weight — plus ${STREAMS} REST realtime streams held open. ` +
    `The services run in one Node process (services/runtime/test-support/mesh.ts, in bench/soak-mesh.ts), so "mesh" is that process; Envoy is its own. ` +
    `Sampled at the end of each minute: RSS and open file descriptors from /proc, live libuv handles and requests (\`nodejs_active_resources\`) and the event-loop delay p99 over the minute (\`nodejs_eventloop_delay_seconds\`) from /metrics, ` +
    `the summed \`kafka_consumer_lag\` of the feed, notification and chat groups (on the shared Kafka their topics also carry whatever else runs on the machine), and the load's latency and errors (any status but 200) over the minute. ` +
    `A sign-up joins the acting users once its profile (made by the user service from the account event) answers; ${profilesNeverSeen} never did within two minutes.\n\n` +
    `Flat within noise means: after the first third (warm-up), the least-squares slope per minute of mesh RSS < ${LIMITS.meshRssMbPerMin} MB, Envoy RSS < ${LIMITS.envoyRssMbPerMin} MB, mesh fds < ${LIMITS.meshFdsPerMin}, live handles < ${LIMITS.activeResourcesPerMin}; ` +
    `and the p99 of the last five minutes at most ${P99_GROWTH_LIMIT}× that of the first five measured. ` +
    `This run${run.minutes < 30 ? " (too short for the criterion to say anything about leaks; it checks the mechanics)" : ""}: **${verdict.flat ? "flat" : "not flat"}** — ${verdict.summary}.\n\n` +
    `![soak](soak.svg)\n\n` +
    `| minute | ops | errors | p50 ms | p99 ms | mesh RSS MB | mesh fds | live handles | Envoy RSS MB | loop p99 ms | consumer lag | streams |\n` +
    `|---|---|---|---|---|---|---|---|---|---|---|---|\n` +
    `${rows.join("\n")}\n\n`;
  await writeSection(resolve(repo, "docs/reliability.md"), "<!-- soak:start -->", "<!-- soak:end -->", body, RELIABILITY_INTRO);
}

/** A small SVG of four panels (one polyline per series, minutes on x), written by hand: no plotting service. */
function chart(minutes: readonly Minute[], label: string): string {
  const panels: Array<{ title: string; series: Array<{ name: string; color: string; values: number[] }> }> = [
    { title: "RSS (MB)", series: [{ name: "mesh", color: "#1f77b4", values: minutes.map((m) => m.meshRssMb) }, { name: "envoy", color: "#ff7f0e", values: minutes.map((m) => m.envoyRssMb) }] },
    { title: "open fds / live handles", series: [{ name: "mesh fds", color: "#2ca02c", values: minutes.map((m) => m.meshFds) }, { name: "live handles", color: "#d62728", values: minutes.map((m) => m.activeResources) }] },
    { title: "latency p99 / event-loop p99 (ms)", series: [{ name: "load p99", color: "#9467bd", values: minutes.map((m) => m.p99Ms) }, { name: "loop p99", color: "#8c564b", values: minutes.map((m) => m.eventLoopP99Ms) }] },
    { title: "consumer lag (events)", series: [{ name: "lag", color: "#e377c2", values: minutes.map((m) => Object.values(m.consumerLag).reduce((a, b) => a + b, 0)) }] },
  ];
  const width = 900;
  const panelHeight = 160;
  const margin = { left: 60, right: 20, top: 28, bottom: 24 };
  const plotWidth = width - margin.left - margin.right;
  const parts: string[] = [];
  panels.forEach((panel, index) => {
    const top = 50 + index * (panelHeight + margin.top + margin.bottom);
    const all = panel.series.flatMap((s) => s.values).filter((v) => Number.isFinite(v));
    const max = Math.max(1, ...all) * 1.1;
    const x = (i: number) => margin.left + (minutes.length <= 1 ? plotWidth / 2 : (i / (minutes.length - 1)) * plotWidth);
    const y = (v: number) => top + panelHeight - (v / max) * panelHeight;
    parts.push(`<text x="${margin.left}" y="${top - 8}" font-size="13" font-weight="bold">${panel.title}</text>`);
    parts.push(`<rect x="${margin.left}" y="${top}" width="${plotWidth}" height="${panelHeight}" fill="none" stroke="#ccc"/>`);
    parts.push(`<text x="${margin.left - 6}" y="${top + 10}" font-size="11" text-anchor="end">${round(max, 0)}</text>`);
    parts.push(`<text x="${margin.left - 6}" y="${top + panelHeight}" font-size="11" text-anchor="end">0</text>`);
    parts.push(`<text x="${margin.left}" y="${top + panelHeight + 16}" font-size="11">minute 1</text>`);
    parts.push(`<text x="${margin.left + plotWidth}" y="${top + panelHeight + 16}" font-size="11" text-anchor="end">minute ${minutes.length}</text>`);
    panel.series.forEach((s, k) => {
      const points = s.values.map((v, i) => (Number.isFinite(v) ? `${round(x(i), 1)},${round(y(v), 1)}` : "")).filter(Boolean).join(" ");
      parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${points}"/>`);
      parts.push(`<text x="${margin.left + plotWidth - 10 - k * 110}" y="${top - 8}" font-size="11" fill="${s.color}" text-anchor="end">${s.name}</text>`);
    });
  });
  const height = 50 + panels.length * (panelHeight + margin.top + margin.bottom);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">\n<text x="${margin.left}" y="18" font-size="14">Soak: ${label}</text>\n${parts.join("\n")}\n</svg>\n`;
}
