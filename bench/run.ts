// `make bench`: measures RPCs against a reference measured in the same run, and
// writes the figures to bench/results/latest.json and docs/benchmarks.md.
//
// Scenario "auth": the auth service process on the real stack when
// DATABASE_URL, REDIS_URL and KAFKA_BROKERS are set (make bench starts them),
// otherwise on embedded defaults. Each RPC is driven by a fixed number of
// concurrent callers for a fixed time over one HTTP/2 connection (gRPC), from
// this process, and compared with a no-op RPC on a bare connect-node server
// measured in the same run, so the ratios show what the runtime and each RPC's
// own work cost.
import { mkdir, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import pg from "pg";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { edgeUpstreams, startEnvoy } from "../services/runtime/test-support/envoy.ts";
import { HealthService } from "@aviary/runtime/health";
import { measure as measureFor, repo, spawnServer, type Result } from "./support.ts";
import { findGhz, ghzRow, ghzTable as ghzTableOf, type GhzCall, type GhzRow } from "./ghz.ts";
import { writeSection } from "./stack.ts";

const durationMs = Number(process.env["BENCH_SECONDS"] ?? 5) * 1000;
const warmupMs = 1000;
/** Runs `call` from `concurrency` loops for BENCH_SECONDS after the warm-up. */
const measure = (name: string, concurrency: number, call: () => Promise<unknown>): Promise<Result> => measureFor(name, concurrency, call, durationMs, undefined, warmupMs);

const realStack = Boolean(process.env["DATABASE_URL"] && process.env["REDIS_URL"] && process.env["KAFKA_BROKERS"]);

const noop = await spawnServer("noop", "bench/noop-server.ts", {});
const authServer = await spawnServer("auth", "services/auth/src/main.ts", {
  AUTH_PORT: "0",
  // Its internal grpc-js listener too: the edge sends gRPC, gRPC-web and REST there, as deployed.
  AUTH_INTERNAL_PORT: "0",
  LOG_LEVEL: "info",
  AUTH_CODE_SINK: resolve(repo, ".dev/bench-codes.jsonl"),
  PAGE_TOKEN_SECRET: "bench-page-token-secret-0123456789",
  // Brute-force limits would throttle the login loop; they are not what is measured.
  AUTH_LOGIN_FAILURES_PER_IDENTITY: "1000000",
  AUTH_LOGIN_FAILURES_PER_IP: "1000000",
});
const reference = createClient(HealthService, createGrpcTransport({ baseUrl: noop.url }));
const auth = createClient(AuthService, createGrpcTransport({ baseUrl: authServer.url }));

const email = `bench.${Date.now()}@example.org`;
const password = "violet-harbour-teapot-42";
await auth.register({ identity: { case: "email", value: email }, password });
const login = await auth.login({ identity: { case: "email", value: email }, password });
const headers = { authorization: `Bearer ${login.tokens?.accessToken}` };

const results: Result[] = [];
results.push(await measure("no-op (bare connect-node, Health/Check)", 32, () => reference.check({})));
results.push(await measure("GetJwks (full interceptor chain, no I/O)", 32, () => auth.getJwks({})));
results.push(await measure("GetMe (JWT verify + denylist + DB read)", 32, () => auth.getMe({}, { headers })));
results.push(await measure("Login (argon2id 19 MiB/2 passes + session write + outbox)", 4, () => auth.login({ identity: { case: "email", value: email }, password })));

// The same unary rows from ghz (bench/ghz.ts): a Go generator on one core that costs
// a fraction of the Node one above, so the server's own cost shows (issue 17).
const ghzPath = findGhz();
const ghzResults: GhzRow[] = [];
const viaGhz = async (name: string, url: string, method: string, pids: Record<string, number | undefined>, extra: Partial<GhzCall> = {}): Promise<GhzRow | undefined> => {
  if (!("path" in ghzPath)) return undefined;
  const row = await ghzRow(ghzPath.path, name, { url, method, connections: 4, concurrency: 128, ...extra }, durationMs / 1000, pids, 1_000);
  ghzResults.push(row);
  return row;
};
if (!("path" in ghzPath)) console.warn(`ghz rows skipped: ${ghzPath.missing}`);
await viaGhz("no-op (bare connect-node, Health/Check)", noop.url, "grpc.health.v1.Health.Check", { noop: noop.process.pid });
await viaGhz("GetJwks (full interceptor chain, no I/O)", authServer.url, "aviary.auth.v1.AuthService.GetJwks", { auth: authServer.process.pid });
const getMeDirect = await viaGhz("GetMe (JWT verify + denylist + DB read)", authServer.url, "aviary.auth.v1.AuthService.GetMe", { auth: authServer.process.pid }, { metadata: headers });

// Scenario "edge": the same authenticated RPC (GetMe) straight to the service
// and through Envoy, each pair with the same client stack so the ratio is
// Envoy's cost alone: REST through Envoy vs Connect JSON direct (both fetch
// over HTTP/1.1), gRPC-web through Envoy vs gRPC-web direct (both connect-web).
const edgeResults: Result[] = [];
const envoy = await startEnvoy({ ...edgeUpstreams({ auth: authServer }), discardOutput: true }).catch((error: unknown) => {
  console.warn(`edge scenario skipped: ${(error as Error).message.split("\n")[0]}`);
  return undefined;
});
if (envoy !== undefined) {
  const getMeJson = (base: string) => () =>
    fetch(`${base}/aviary.auth.v1.AuthService/GetMe`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: "{}" }).then(ok);
  const getMeRest = () => fetch(`${envoy.url}/v1/auth/me`, { headers }).then(ok);
  const webDirect = createClient(AuthService, createGrpcWebTransport({ baseUrl: authServer.url }));
  const webEdge = createClient(AuthService, createGrpcWebTransport({ baseUrl: envoy.url }));
  edgeResults.push(await measure("GetMe direct, Connect JSON (fetch)", 32, getMeJson(authServer.url)));
  edgeResults.push(await measure("GetMe through Envoy, REST GET /v1/auth/me (fetch)", 32, getMeRest));
  edgeResults.push(await measure("GetMe direct, gRPC-web", 32, () => webDirect.getMe({}, { headers })));
  edgeResults.push(await measure("GetMe through Envoy, gRPC-web", 32, () => webEdge.getMe({}, { headers })));
  // gRPC through Envoy against gRPC straight to the service, both from ghz at the same offered
  // rate (half the direct peak), so the p50 difference is what Envoy adds at that load.
  if (getMeDirect !== undefined && "path" in ghzPath) {
    const rate = Math.max(1, Math.round(getMeDirect.throughput / 2));
    const pids = { auth: authServer.process.pid, envoy: envoy.pid };
    await viaGhz(`GetMe direct, gRPC, ${rate}/s`, authServer.url, "aviary.auth.v1.AuthService.GetMe", pids, { metadata: headers, rps: rate });
    // The edge sends gRPC to the internal listener: straight to that listener is Envoy's own cost.
    await viaGhz(`GetMe direct to the grpc-js listener, gRPC, ${rate}/s`, authServer.peerUrl, "aviary.auth.v1.AuthService.GetMe", pids, { metadata: headers, rps: rate });
    await viaGhz(`GetMe through Envoy, gRPC, ${rate}/s`, envoy.url, "aviary.auth.v1.AuthService.GetMe", pids, { metadata: headers, rps: rate });
    // The reference for Envoy's share: the same hop with only the router
    // (no JWT check, transcoder, CORS, role rules or access log), so what the
    // edge's filters add is told apart from what any proxy in between costs.
    const bare = await startEnvoy({ ...edgeUpstreams({ auth: authServer }), discardOutput: true, routerOnly: true });
    try {
      await viaGhz(`GetMe through Envoy with only its router (the hop alone), gRPC, ${rate}/s`, bare.url, "aviary.auth.v1.AuthService.GetMe", { auth: authServer.process.pid, envoy: bare.pid }, { metadata: headers, rps: rate });
    } finally {
      await bare.stop();
    }
  }
  await envoy.stop();
}

// Scenario "users": hydration and graph reads of the user service, seeded
// straight into its tables (1,000 and 100,000 followers, 100 profiles), beside
// the same no-op. Follower pages are keyset-paginated on an index, so a page
// should cost the same at 1k and 100k followers, and deep in the list as on top.
const userResults: Result[] = [];
if (realStack) {
  const userServer = await spawnServer("user", "services/user/src/main.ts", {
    USER_PORT: "0",
    LOG_LEVEL: "info",
    AUTH_JWKS_URL: `${authServer.url}/.well-known/jwks.json`,
    PAGE_TOKEN_SECRET: "bench-page-token-secret-0123456789",
  });
  const users = createClient(UserService, createGrpcTransport({ baseUrl: userServer.url }));
  await users.getProfile({ userId: login.userId }, { headers }); // creates the caller's profile
  const seeded = await seedFollowers(process.env["DATABASE_URL"] ?? "", { small: 1_000, large: 100_000, profiles: 100 });
  const ids = seeded.profiles;
  const pairs = ids.map((id, i) => ({ followerId: id, followeeId: i % 2 === 0 ? seeded.smallAccount : seeded.largeAccount }));
  /** The page token `depth` pages into an account's followers. */
  const tokenAt = async (userId: string, depth: number) => {
    let pageToken = "";
    for (let i = 0; i < depth; i += 1) pageToken = (await users.listFollowers({ userId, pageSize: 100, pageToken }, { headers })).nextPageToken;
    return pageToken;
  };
  const smallDeep = await tokenAt(seeded.smallAccount, 5);
  const largeDeep = await tokenAt(seeded.largeAccount, 500);
  userResults.push(await measure("no-op (bare connect-node, Health/Check)", 32, () => reference.check({})));
  userResults.push(await measure("BatchGetProfiles, 100 ids", 32, () => users.batchGetProfiles({ userIds: ids }, { headers })));
  userResults.push(await measure("CheckFollows, 100 pairs", 32, () => users.checkFollows({ pairs }, { headers })));
  userResults.push(await measure("ListFollowers page of 100, 1k followers, first page", 32, () => users.listFollowers({ userId: seeded.smallAccount, pageSize: 100 }, { headers })));
  userResults.push(await measure("ListFollowers page of 100, 100k followers, first page", 32, () => users.listFollowers({ userId: seeded.largeAccount, pageSize: 100 }, { headers })));
  userResults.push(await measure("ListFollowers page of 100, 1k followers, page 6", 32, () => users.listFollowers({ userId: seeded.smallAccount, pageSize: 100, pageToken: smallDeep }, { headers })));
  userResults.push(await measure("ListFollowers page of 100, 100k followers, page 501", 32, () => users.listFollowers({ userId: seeded.largeAccount, pageSize: 100, pageToken: largeDeep }, { headers })));
  // Search over the same ~101k profiles: index prefix scans, so the cost follows the number of matches, not of profiles.
  userResults.push(await measure("SearchUsers, 2 matches among 101k profiles", 32, () => users.searchUsers({ query: "celebrity" }, { headers })));
  userResults.push(await measure("SearchUsers, ~11k matches ('fan 5'), first page of 20", 32, () => users.searchUsers({ query: "fan 5" }, { headers })));
  await viaGhz("no-op again (before the user service rows)", noop.url, "grpc.health.v1.Health.Check", { noop: noop.process.pid });
  await viaGhz("BatchGetProfiles, 100 ids", userServer.url, "aviary.user.v1.UserService.BatchGetProfiles", { user: userServer.process.pid }, { metadata: headers, data: { userIds: ids } });
  await viaGhz("ListFollowers page of 100, 100k followers, first page", userServer.url, "aviary.user.v1.UserService.ListFollowers", { user: userServer.process.pid }, {
    metadata: headers,
    data: { userId: seeded.largeAccount, pageSize: 100 },
  });
  userServer.process.kill("SIGTERM");
}

/**
 * Seeds two accounts with `small` and `large` followers (each follower with a
 * profile, follow times a second apart) and `profiles` more profiles, in SQL:
 * going through the RPCs would take longer than the measurement.
 */
async function seedFollowers(databaseUrl: string, counts: { small: number; large: number; profiles: number }) {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const account = async (followers: number) => {
      const { rows } = await client.query<{ id: string }>("insert into users.profiles (user_id, display_name) values (gen_random_uuid(), 'celebrity') returning user_id as id");
      const id = rows[0]?.id ?? "";
      await client.query(
        `with fans as (
           insert into users.profiles (user_id, display_name)
           select gen_random_uuid(), 'fan ' || g from generate_series(1, $2::int) g
           returning user_id)
         insert into users.follows (follower_id, followee_id, created_at)
         select user_id, $1::uuid, now() - (row_number() over () || ' seconds')::interval from fans`,
        [id, followers],
      );
      await client.query("update users.profiles set follower_count = $2 where user_id = $1", [id, followers]);
      return id;
    };
    const smallAccount = await account(counts.small);
    const largeAccount = await account(counts.large);
    const { rows } = await client.query<{ id: string }>(
      "insert into users.profiles (user_id, display_name) select gen_random_uuid(), 'profile ' || g from generate_series(1, $1::int) g returning user_id as id",
      [counts.profiles],
    );
    await client.query("analyze users.follows");
    await client.query("analyze users.profiles");
    return { smallAccount, largeAccount, profiles: rows.map((row) => row.id) };
  } finally {
    await client.end();
  }
}

noop.process.kill("SIGTERM");
authServer.process.kill("SIGTERM");

/** Resolves for 2xx, rejects otherwise (counted as an error), and drains the body. */
async function ok(response: Response): Promise<void> {
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
}

/** A result beside the reference measured for it in the same run. */
interface Compared extends Result {
  reference: string;
  throughputVsReference: number;
  p50VsReference: number;
}

/** Each result against `referenceOf(index)` (the no-op, or the direct call an edge row pairs with). */
function compare(list: Result[], referenceOf: (index: number) => Result | undefined): Compared[] {
  return list.flatMap((r, i) => {
    const reference = referenceOf(i);
    if (reference === undefined) return [];
    return [
      {
        ...r,
        reference: reference.name,
        throughputVsReference: Number((r.throughput / reference.throughput).toFixed(3)),
        p50VsReference: Number((r.p50Ms / reference.p50Ms).toFixed(2)),
      },
    ];
  });
}

const authRows = compare(results, () => results[0]);
// Edge rows come in pairs: direct, then the same call through Envoy.
const edgeRows = compare(edgeResults, (i) => edgeResults[i - (i % 2)]);
// The user-service rows against the no-op measured just before them.
const userRows = compare(userResults, () => userResults[0]);

const report = {
  at: new Date().toISOString(),
  stack: realStack ? "real (PostgreSQL, Redis, Kafka)" : "embedded (PGlite, memory cache, memory bus)",
  node: process.version,
  cpus: (await import("node:os")).cpus().length,
  scenarios: { auth: authRows, edge: edgeRows, users: userRows, ghz: ghzResults },
};
const resultsDir = resolve(import.meta.dirname, "results");
await mkdir(resultsDir, { recursive: true });
await writeFile(resolve(resultsDir, "latest.json"), `${JSON.stringify(report, null, 2)}\n`);

function markdownTable(rows: Compared[], labels: { first: string; vs: string; missing: string }): string {
  if (rows.length === 0) return labels.missing;
  return [
    `| ${labels.first} | callers | calls/s | p50 ms | p99 ms | calls/s vs ${labels.vs} | p50 vs ${labels.vs} | errors |`,
    "|---|---|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.name} | ${r.concurrency} | ${r.throughput} | ${r.p50Ms} | ${r.p99Ms} | ${r.throughputVsReference} | ${r.p50VsReference} | ${r.errors} |`),
  ].join("\n");
}

const table = markdownTable(authRows, { first: "RPC", vs: "no-op", missing: "Not measured." });
const edgeTable = markdownTable(edgeRows, { first: "path", vs: "direct", missing: "Not measured: Envoy is not installed (`make envoy`)." });
const usersTable = markdownTable(userRows, {
  first: "RPC",
  vs: "no-op",
  missing: "Not measured: needs the real stack (DATABASE_URL, REDIS_URL, KAFKA_BROKERS; `make bench` starts it).",
});
const ghzTable = ghzTableOf(ghzResults, "RPC (ghz, 4 connections × 32 in flight, one core)");
// Between its own markers: the other benchmarks' sections follow in the same file.
await writeSection(
  resolve(import.meta.dirname, "../docs/benchmarks.md"),
  "<!-- run:start -->",
  "<!-- run:end -->",
  `Written by \`make bench\` (${report.at}, ${report.stack}, Node ${report.node}, ${report.cpus} cores).\n` +
    `Raw figures: \`bench/results/latest.json\`. Each RPC runs for ${durationMs / 1000} s after a ${warmupMs / 1000} s warm-up over one HTTP/2 connection (gRPC);\n` +
    `the reference is a no-op grpc.health.v1.Health/Check on a bare connect-node server (no runtime); servers run in their own processes.\n\n## Auth\n\n${table}\n\n` +
    `Reading the figures: the load generator is one Node process on one of the machine's cores, and it saturates near the no-op's rate;\n` +
    `a ratio close to 1 therefore says the server-side cost (runtime interceptors, JWT verification, the DB read) hides behind the client's,\n` +
    `not that it is zero. Login is bound by argon2id by design (about 19 MiB and 2 passes per attempt). The ghz rows below do not have that limit.\n\n` +
    `## Edge\n\nThe same authenticated RPC (GetMe) straight to the auth service and through Envoy (JWT check, transcoding, access log);\n` +
    `each through-Envoy row is compared with the direct row above it, which uses the same client stack.\n` +
    `Goal from the edge issue: Envoy adds at most 30 % to p50 and keeps at least 70 % of direct throughput (issue 17: at most 20 % to p50 at the same load: the ghz pair below).\n\n${edgeTable}\n\n` +
    `## Users\n\nHydration and graph reads of the user service on PostgreSQL, seeded with one account of 1,000 and one of 100,000 followers;\n` +
    `the no-op is measured again right before. Follower pages are keyset-paginated on (followee, created_at, follower), so the 1k and 100k rows,\n` +
    `and the first and deep pages, should cost the same.\n\n${usersTable}\n\n` +
    `## Unary rows driven by ghz\n\nThe rows above again from ghz (bench/ghz.ts): a fixed number of calls sized from a 1 s warm-up to last about ${durationMs / 1000} s,\n` +
    `CPU per call from /proc for the servers (less what each used in the idle second before the row) and ghz's own rusage. The GetMe rows at a fixed rate compare gRPC at the same load straight to the service's main port (connect-node),\n` +
    `straight to its internal grpc-js listener, and through Envoy, which sends gRPC, gRPC-web and REST to that listener (Connect to the main port; docs/decisions.md, "The edge on the internal listeners"):\n` +
    `through Envoy vs the grpc-js row is Envoy's own cost, through Envoy vs the main-port row what a client of the edge gains or pays against calling the service's main port;\n` +
    `the last row is the same hop through an Envoy with only its router (no filters, no access log), so the full row less it is what the edge's filters add.\n\n${ghzTable}\n`,
);
console.log(table);
console.log(edgeTable);
console.log(usersTable);
console.log(ghzTable);
