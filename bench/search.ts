// `make bench`, search part: PostService.SearchPosts over many posts
// (BENCH_SEARCH_POSTS, default 1,000,000), a page of 20, for a common word, a
// rare word and a hashtag (newest first), and the common and the rare word by
// best match, beside the runtime's no-op measured in the same run. Writes
// bench/results/search.json and the section between the search markers of
// docs/benchmarks.md.
//
// The stack: auth, user and post as child processes on a fresh database of
// the shared PostgreSQL (the shared Redis and Kafka: only the few accounts
// made here publish anything). The authors are real accounts (the search's
// block check asks the user service about them); their posts are seeded
// straight into posts.posts with generate_series, in batches: 12 words each
// from a 10,000-word vocabulary with a Zipf-like (log-uniform) rank, so
// `w0` is in about 60 % of posts and `w5000` in about 0.03 %, plus one of
// 100 hashtags.
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { resolve } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import { PostService, SearchOrder } from "@aviary/gen/aviary/post/v1/post_pb";
import { HealthService } from "@aviary/runtime/health";
import { uniqueName, withClient } from "../services/runtime/test-support/infra.ts";
import { freshDatabase } from "../services/runtime/test-support/database.ts";
import { cpuMeter, inParallel, internalListenerEnv, internalTransport, measure, repo, type Result, round, type ServerProcess, spawnServer, teardown, waitFor } from "./support.ts";
import { serviceCommit, signUp, writeSection } from "./stack.ts";

const env = process.env;
const realStack = Boolean(env["DATABASE_URL"] && env["REDIS_URL"] && env["KAFKA_BROKERS"]);
const POSTS = Number(env["BENCH_SEARCH_POSTS"] ?? 1_000_000);
const durationMs = Number(env["BENCH_SECONDS"] ?? 5) * 1000;
const CONCURRENCY = Number(env["BENCH_SEARCH_CONCURRENCY"] ?? 4);
const AUTHORS = 50;
const SEED_BATCH = 100_000;
const docsPath = resolve(repo, "docs/benchmarks.md");
const resultsPath = resolve(repo, "bench/results/search.json");
const START = "<!-- search:start -->";
const END = "<!-- search:end -->";

if (!realStack) {
  await writeSection(docsPath, START, END, "## Search\n\nNot measured: needs the real stack (DATABASE_URL, REDIS_URL, KAFKA_BROKERS; `make bench` starts it).\n");
  console.log("search bench skipped: not on the real stack");
  process.exit(0);
}

const { steps: cleanups, run: cleanup } = teardown();
const machine = { cpus: cpus().length, node: process.version, internalTransport, loadAverageAtStart: loadavg().map((l) => round(l)) };
const started = performance.now();
const step = (text: string) => console.log(`[search bench ${((performance.now() - started) / 1000).toFixed(1)} s] ${text}`);

try {
  await run();
} finally {
  await cleanup();
}

async function run(): Promise<void> {
  const database = await freshDatabase(env["DATABASE_URL"]!, "bench_search");
  cleanups.push(() => database.drop());
  const shared = { ...internalListenerEnv, DATABASE_URL: database.url, LOG_LEVEL: "info", PAGE_TOKEN_SECRET: "bench-page-token-secret-0123456789" };
  const servers: ServerProcess[] = [];
  cleanups.push(async () => {
    for (const server of servers.reverse()) await server.stop();
  });
  const start = async (label: string, script: string, own: Record<string, string>) => {
    const server = await spawnServer(label, script, { ...shared, ...own });
    servers.push(server);
    return server;
  };
  const noMedia = "http://127.0.0.1:9";
  step("starting noop, auth, user and post");
  const noop = await start("search-noop", "bench/noop-server.ts", {});
  const authServer = await start("search-auth", "services/auth/src/main.ts", { AUTH_PORT: "0", AUTH_CODE_SINK: resolve(repo, ".dev/bench-search-codes.jsonl") });
  const jwks = `${authServer.url}/.well-known/jwks.json`;
  const userServer = await start("search-user", "services/user/src/main.ts", { USER_PORT: "0", AUTH_JWKS_URL: jwks, MEDIA_URL: noMedia, USER_PROFILES_GROUP: uniqueName("bench_search_profiles") });
  const postServer = await start("search-post", "services/post/src/main.ts", { POST_PORT: "0", AUTH_JWKS_URL: jwks, USER_URL: userServer.peerUrl, MEDIA_URL: noMedia, POST_GROUP: uniqueName("bench_search_post") });

  const grpc = (baseUrl: string) => createGrpcTransport({ baseUrl });
  const reference = createClient(HealthService, grpc(noop.url));
  const auth = createClient(AuthService, grpc(authServer.url));
  const users = createClient(UserService, grpc(userServer.url));
  const posts = createClient(PostService, grpc(postServer.url));

  step(`registering ${AUTHORS} authors and a reader`);
  const accounts = await inParallel(["reader", ...Array.from({ length: AUTHORS }, (_, i) => `author${i}`)], 4, (label) => signUp(auth, "bench.search", label));
  const [reader, ...authors] = accounts;
  const authorIds = authors.map((a) => a.userId);
  await waitFor("the authors' profiles", async () => (await users.batchGetProfiles({ userIds: authorIds }, reader!.call)).profiles.length === AUTHORS, 60_000);

  step(`seeding ${POSTS.toLocaleString("en")} posts`);
  const seedStarted = performance.now();
  await withClient(database.url, async (pg) => {
    for (let from = 1; from <= POSTS; from += SEED_BATCH) {
      const to = Math.min(POSTS, from + SEED_BATCH - 1);
      // The inner select refers to g, so it is evaluated per row (12 fresh words each).
      await pg.query(
        `insert into posts.posts (id, author_id, text, hashtags, created_at)
         select gen_random_uuid(), ($1::uuid[])[1 + g % $2],
                (select string_agg('w' || (floor(exp(random() * ln(10001))) - 1)::int, ' ') from generate_series(1, 12) where g > 0) || ' #tag' || (g % 100),
                array['tag' || (g % 100)],
                now() - make_interval(secs => $3 - g)
         from generate_series($4::int, $5::int) g`,
        [authorIds, AUTHORS, POSTS, from, to],
      );
    }
    await pg.query("analyze posts.posts");
  });
  const seedMs = Math.round(performance.now() - seedStarted);
  const counts = await withClient(database.url, async (pg) => {
    const count = async (where: string) => Number((await pg.query(`select count(*)::int as n from posts.posts where ${where}`)).rows[0].n);
    return {
      common: await count(`to_tsvector('simple', text) @@ websearch_to_tsquery('simple', 'w0') and deleted_at is null`),
      rare: await count(`to_tsvector('simple', text) @@ websearch_to_tsquery('simple', 'w5000') and deleted_at is null`),
      hashtag: await count(`hashtags @> array['tag7'] and deleted_at is null`),
    };
  });
  step(`seeded in ${seedMs} ms; matches: w0 ${counts.common}, w5000 ${counts.rare}, #tag7 ${counts.hashtag}`);

  const processes = () => ({ post: postServer.process.pid, user: userServer.process.pid, noop: noop.process.pid, "load generator": process.pid });
  const measured = async (name: string, call: () => Promise<unknown>) => {
    const meter = cpuMeter(processes());
    let cpu: ReturnType<typeof meter.stop> | undefined;
    const result: Result = await measure(name, CONCURRENCY, call, durationMs, (phase) => (phase === "start" ? meter.start() : (cpu = meter.stop())));
    step(`${name}: p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, ${result.throughput}/s`);
    return { ...result, machineBusy: round(cpu?.machineBusy ?? Number.NaN, 2) };
  };
  const page = (query: string, order: SearchOrder, matches: number) => async () => {
    const answer = await posts.searchPosts({ query, order, pageSize: 20 }, reader!.call);
    if (answer.posts.length !== Math.min(20, matches)) throw new Error(`${query}: ${answer.posts.length} posts, expected ${Math.min(20, matches)}`);
  };
  const rows = [
    await measured("no-op (bare connect-node, Health/Check)", () => reference.check({})),
    await measured(`common word (w0, ${counts.common} matches), newest`, page("w0", SearchOrder.NEWEST, counts.common)),
    await measured(`rare word (w5000, ${counts.rare} matches), newest`, page("w5000", SearchOrder.NEWEST, counts.rare)),
    await measured(`hashtag (#tag7, ${counts.hashtag} matches), newest`, page("#tag7", SearchOrder.NEWEST, counts.hashtag)),
    await measured(`common word (w0), best match`, page("w0", SearchOrder.BEST_MATCH, counts.common)),
    await measured(`rare word (w5000), best match`, page("w5000", SearchOrder.BEST_MATCH, counts.rare)),
  ];

  const at = new Date().toISOString();
  const results = { at, commit: serviceCommit("services/post"), machine, posts: POSTS, seedMs, matches: counts, concurrency: CONCURRENCY, rows };
  await mkdir(resolve(repo, "bench/results"), { recursive: true });
  await writeFile(resultsPath, `${JSON.stringify(results, null, 2)}\n`);
  const table = [
    "| a page of 20 | calls | errors | per second | p50 ms | p99 ms | machine busy |",
    "|---|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.name} | ${r.calls} | ${r.errors} | ${r.throughput} | ${r.p50Ms} | ${r.p99Ms} | ${Math.round(r.machineBusy * 100)} % |`),
  ].join("\n");
  const section =
    `## Search\n\n` +
    `Written by \`node bench/search.ts\` (${at}; Node ${machine.node}, ${machine.cpus} cores, load average ${machine.loadAverageAtStart.join(" / ")} at the start; ` +
    `commit ${results.commit}). Raw figures: \`bench/results/search.json\`.\n` +
    `PostService.SearchPosts over **${POSTS.toLocaleString("en")} posts** (BENCH_SEARCH_POSTS) by ${AUTHORS} authors, seeded with generate_series in ${seedMs} ms: ` +
    `12 words each from a 10,000-word vocabulary with a Zipf-like rank, so the common word w0 is in ${counts.common} posts and the rare w5000 in ${counts.rare}; ` +
    `one of 100 hashtags each (#tag7: ${counts.hashtag}). Each call: a page of 20 through the whole read (the SQL skeleton, then the block check with the user service, media and likes), ` +
    `${CONCURRENCY} loops on one HTTP/2 connection, ${durationMs / 1000} s after a 1 s warm-up; the no-op in the same run. ` +
    `auth, user and post run as child processes on this machine with the load generator and PostgreSQL.\n` +
    (POSTS < 1_000_000 ? `**A validation run at ${POSTS.toLocaleString("en")} posts, not the 1,000,000 of the goal** (\`BENCH_SEARCH_POSTS=1000000\`, the default, is the real one).\n` : "") +
    `\n${table}\n\n` +
    `Reading the figures: newest first, a common word walks posts_created_idx and stops at the page (the expression statistics of migration 0003 tell the planner how common the word is), ` +
    `a rare word or a hashtag reads its few matches from the GIN index, so both stay near the cost of the read pipeline itself. ` +
    `Best match for a common word must rank every match (ts_rank over each matching post), so it grows with the number of matches: that row is the price of relevance order, ` +
    `and the reason newest is the default.\n`;
  await writeSection(docsPath, START, END, section);
  console.log(table);
}
