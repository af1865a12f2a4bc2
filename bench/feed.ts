// `make bench`, feed part (runs after bench/run.ts): fan-out, GetHomeFeed and
// post-to-feed latency on the real stack. Writes bench/results/feed.json and
// the section between the feed markers of docs/benchmarks.md (run.ts rewrites
// that file whole, so this must run after it).
//
// The stack: auth, user, post and feed run as child processes (one each, as
// in production), on a fresh database of the shared PostgreSQL, the shared
// Redis (keys under a prefix of this run, deleted at the end) and a Kafka of
// this run's own (infra.sh in a private state dir): the feed consumes its
// topics from the beginning, and the thousands of posts made here must not
// land in the shared topics every feed test file replays. Media is not
// started: text posts never call it.
//
// Scenarios:
//   fan-out   one post by an author with 10,000 followers (fanned out), then
//             100,000 (merged at read time, the default threshold), then
//             100,000 with FEED_FANOUT_THRESHOLD=off (a second feed process).
//             Followers are seeded into the feed's projection; their
//             timelines are created through the feed's TimelineStore.
//   read      GetHomeFeed (page of 20, timeline in Redis, hydrated through
//             post and user) beside a no-op RPC measured in the same run.
//   e2e       posts at a steady 200/s (open loop) by 20 authors one reader
//             follows; CreatePost returning → in the reader's timeline.
//   paths     the other read paths in the same run, each beside the no-op:
//             GetHomeFeed uncached (a second feed process, api role,
//             FEED_VIEW_CACHE_SECONDS=0), BatchGetPosts and GetPost (post),
//             BatchGetProfiles and ListFollowers (user), GetHome through the
//             BFF (with the notification and chat services' api roles for
//             its unread section).
// BENCH_FEED_ONLY=write runs the write path alone (the 10,000 fan-out and the
// knee: BENCH_FEED_KNEE_RATES posts/s, BENCH_FEED_KNEE_SECONDS each, with
// each process's idle CPU taken out of its CPU per post), on a Kafka of its
// own, the docs untouched: bench/results/feed-write.json.
// BENCH_FEED_KNEE_EVERY_RATE=1 offers every rate even past the knee.
// BENCH_FEED_ONLY=read runs the read rows alone (no fan-out timing, no end to
// end, the docs untouched: bench/results/feed-read.json), to profile them;
// BENCH_FEED_NODE_ARGS adds node flags to feed, post, user and bff (e.g.
// "--cpu-prof --cpu-prof-dir=/tmp/feed-prof"; figures taken with them are not
// the measured ones).
// BENCH_FEED_ALLOC=1 loads bench/alloc-sampler.ts into both feeds, the post
// and the user service, and samples what each allocates per call it serves
// during the ghz rows of the read path: the cached feed in the cached rows,
// the uncached feed, post and user in the uncached row (the rows' latencies
// then carry the sampler's cost); the figures go to stdout and, with
// BENCH_FEED_ONLY=read, into bench/results/feed-read.json.
import { mkdir, mkdtemp, readFile, readdir, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Redis } from "ioredis";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import { PostService } from "@aviary/gen/aviary/post/v1/post_pb";
import { FeedService } from "@aviary/gen/aviary/feed/v1/feed_pb";
import { BffService } from "@aviary/gen/aviary/bff/v1/bff_pb";
import { HealthService } from "@aviary/runtime/health";
import { uniqueName, withClient } from "../services/runtime/test-support/infra.ts";
import { kafkaWarmupNote, ownKafka } from "./stack.ts";
import { freshDatabase } from "../services/runtime/test-support/database.ts";
import { openRedisTimelineStore } from "../services/feed/src/store/timelines-redis.ts";
import { cpuMeter, idleCpu, inParallel, lessIdle, internalListenerEnv, internalTransport, measure, quantile, repo, type Result, round, type ServerProcess, spawnServer, teardown, waitFor } from "./support.ts";
import { countTimelinesHolding, createTimelines, seedFollowers, type SeededAuthor } from "./feed-seed.ts";
import { findGhz, ghzRow, ghzTable, type GhzRow } from "./ghz.ts";
import { SUMMARY_WAIT_MS, type AllocationSummary } from "./alloc-summary.ts";

const env = process.env;
const realStack = Boolean(env["DATABASE_URL"] && env["REDIS_URL"] && env["KAFKA_BROKERS"]);
const durationMs = Number(env["BENCH_SECONDS"] ?? 5) * 1000;
const FANOUT_POSTS = Number(env["BENCH_FEED_FANOUT_POSTS"] ?? 5);
const E2E_RATE = Number(env["BENCH_FEED_E2E_RATE"] ?? 200);
const E2E_SECONDS = Number(env["BENCH_FEED_E2E_SECONDS"] ?? 10);
const E2E_POLL_MS = 2;
const E2E_AUTHORS = 20;
const READ_AUTHORS = 5;
const READ_POSTS_PER_AUTHOR = 40;
const TIMELINE_CAP = 800;
const READ_ONLY = env["BENCH_FEED_ONLY"] === "read";
/**
 * BENCH_FEED_READ_CALLS: each read row makes this many calls (after 200 for warm-up) instead of
 * running for BENCH_SECONDS, so its CPU per call rests on the same number of calls however slow
 * a busy machine makes them (calls/s is then over however long they took).
 */
const READ_CALLS = Number(env["BENCH_FEED_READ_CALLS"] ?? 0);
/** The idle window before each read row, whose CPU is taken off the row's (see `measured`). */
const IDLE_MS = 1_000;
const WRITE_ONLY = env["BENCH_FEED_ONLY"] === "write";
/** The write-path knee: posts/s offered (open loop), each for KNEE_SECONDS, until post → timeline p99 passes KNEE_P99_MS. */
const KNEE_RATES = (env["BENCH_FEED_KNEE_RATES"] ?? "100,200,300,400,500,600,800").split(",").map(Number);
const KNEE_SECONDS = Number(env["BENCH_FEED_KNEE_SECONDS"] ?? 5);
const KNEE_P99_MS = 100;
/** BENCH_FEED_KNEE_EVERY_RATE=1: offer every rate even after one did not hold (CPU per post across rates on a slow machine). */
const KNEE_EVERY_RATE = env["BENCH_FEED_KNEE_EVERY_RATE"] === "1";
const NODE_ARGS = (env["BENCH_FEED_NODE_ARGS"] ?? "").split(" ").filter((arg) => arg !== "");
const ALLOC = env["BENCH_FEED_ALLOC"] === "1";
const docsPath = resolve(repo, "docs/benchmarks.md");
const resultsPath = resolve(repo, READ_ONLY ? "bench/results/feed-read.json" : WRITE_ONLY ? "bench/results/feed-write.json" : "bench/results/feed.json");
const START = "<!-- feed:start -->";
const GHZ_CACHED_ROW = "GetHomeFeed page of 20, cached";
const GRPC_JS_CACHED_ROW = "GetHomeFeed page of 20, cached, on the grpc-js listener";
const END = "<!-- feed:end -->";

if (!realStack) {
  await writeSection("## Feed\n\nNot measured: needs the real stack (DATABASE_URL, REDIS_URL, KAFKA_BROKERS; `make bench` starts it).\n");
  console.log("feed bench skipped: not on the real stack");
  process.exit(0);
}

// --- teardown: whatever happens, nothing of this run is left behind ---------

const { steps: cleanups, run: cleanup } = teardown();

const machine = { cpus: cpus().length, node: process.version, internalTransport, loadAverageAtStart: loadavg().map((l) => round(l)) };
const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
const step = (text: string) => console.log(`[feed bench ${elapsed()}] ${text}`);

try {
  await run();
} finally {
  await cleanup();
}

async function run(): Promise<void> {
  // --- the stack ------------------------------------------------------------
  step("starting a private Kafka");
  // A write-only run has its own, so it can run beside a read-only one (each empties its Kafka at the start).
  const kafka = await ownKafka(WRITE_ONLY ? "bench-feed-write-kafka" : "bench-feed-kafka", cleanups);
  const database = await freshDatabase(env["DATABASE_URL"]!, "bench_feed");
  cleanups.push(() => database.drop());
  const redisUrl = env["REDIS_URL"]!;
  const prefix = `${uniqueName("benchfeed")}:`;
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  redis.on("error", () => undefined);
  cleanups.push(async () => {
    await deleteKeys(redis, `${prefix}*`);
    redis.disconnect();
  });
  const timelines = openRedisTimelineStore({ url: redisUrl, prefix, cap: TIMELINE_CAP });
  cleanups.push(() => timelines.close());

  const shared = { ...internalListenerEnv, DATABASE_URL: database.url, REDIS_URL: redisUrl, KAFKA_BROKERS: kafka.url, LOG_LEVEL: "info", PAGE_TOKEN_SECRET: "bench-page-token-secret-0123456789" };
  const noMedia = "http://127.0.0.1:9";
  const servers: ServerProcess[] = [];
  cleanups.push(async () => {
    for (const server of servers.reverse()) await server.stop();
  });
  const start = async (label: string, script: string, own: Record<string, string>, nodeArgs: readonly string[] = []) => {
    const server = await spawnServer(label, script, { ...shared, ...own }, nodeArgs);
    servers.push(server);
    return server;
  };
  step("starting noop, auth, user, post and feed");
  const noop = await start("noop", "bench/noop-server.ts", {});
  const authServer = await start("auth", "services/auth/src/main.ts", {
    AUTH_PORT: "0",
    AUTH_CODE_SINK: resolve(repo, ".dev/bench-feed-codes.jsonl"),
    AUTH_LOGIN_FAILURES_PER_IDENTITY: "1000000",
    AUTH_LOGIN_FAILURES_PER_IP: "1000000",
  });
  const jwks = `${authServer.url}/.well-known/jwks.json`;
  // BENCH_FEED_ALLOC: the processes of the read path carry the allocation sampler.
  const allocDir = ALLOC ? (env["ALLOC_SAMPLER_DIR"] ?? (await mkdtemp(join(tmpdir(), "aviary-alloc-")))) : undefined;
  const sampledEnv: Record<string, string> = allocDir === undefined ? {} : { ALLOC_SAMPLER_DIR: allocDir };
  const sampledArgs = allocDir === undefined ? NODE_ARGS : [...NODE_ARGS, `--import=${resolve(repo, "bench/alloc-sampler.ts")}`];
  const userServer = await start("user", "services/user/src/main.ts", { USER_PORT: "0", AUTH_JWKS_URL: jwks, MEDIA_URL: noMedia, ...sampledEnv }, sampledArgs);
  const postServer = await start("post", "services/post/src/main.ts", { POST_PORT: "0", AUTH_JWKS_URL: jwks, USER_URL: userServer.peerUrl, MEDIA_URL: noMedia, ...sampledEnv }, sampledArgs);
  const feedEnv = {
    FEED_PORT: "0",
    AUTH_JWKS_URL: jwks,
    POST_URL: postServer.peerUrl,
    USER_URL: userServer.peerUrl,
    FEED_GROUP: uniqueName("bench_feed"),
    FEED_REDIS_PREFIX: prefix,
    FEED_TIMELINE_CAP: String(TIMELINE_CAP),
  };
  let feedServer = await start("feed-hybrid", "services/feed/src/main.ts", { ...feedEnv, ...sampledEnv }, sampledArgs);
  // The uncached row's own process: same database and timelines, no view cache, no consumers.
  const uncachedFeedServer = await start("feed-uncached", "services/feed/src/main.ts", { ...feedEnv, FEED_ROLE: "api", FEED_VIEW_CACHE_SECONDS: "0", ...sampledEnv }, sampledArgs);
  // GetHome's unread section: the notification and chat services' api roles (nothing unread: the counts are read, not made).
  const notificationServer = await start("notification-api", "services/notification/src/main.ts", {
    NOTIFICATION_PORT: "0",
    NOTIFICATION_ROLE: "api",
    AUTH_JWKS_URL: jwks,
    AUTH_URL: authServer.peerUrl,
    USER_URL: userServer.peerUrl,
    REALTIME_REDIS_PREFIX: prefix,
  });
  const chatServer = await start("chat-api", "services/chat/src/main.ts", { CHAT_PORT: "0", CHAT_ROLE: "api", AUTH_JWKS_URL: jwks, USER_URL: userServer.peerUrl, MEDIA_URL: noMedia, REALTIME_REDIS_PREFIX: prefix }).catch(
    (error: unknown) => {
      // The BFF row needs it; the rest of the run does not.
      console.warn(`the chat service did not start, GetHome is not measured: ${(error as Error).message}`);
      return undefined;
    },
  );
  const bffServer = chatServer
    ? await start(
        "bff",
        "services/bff/src/main.ts",
        { BFF_PORT: "0", AUTH_JWKS_URL: jwks, USER_URL: userServer.peerUrl, FEED_URL: feedServer.peerUrl, NOTIFICATION_URL: notificationServer.peerUrl, CHAT_URL: chatServer.peerUrl },
        NODE_ARGS,
      )
    : undefined;

  // Uncompressed, as the edge calls the services (Envoy's REST transcoding and connect-web's gRPC-web ask for no
  // compression): connect-node's default asks for gzip, and the feed then spent 8–9 % of its CPU gzipping each page.
  const grpc = (baseUrl: string) => createGrpcTransport({ baseUrl, acceptCompression: [] });
  const reference = createClient(HealthService, grpc(noop.url));
  const auth = createClient(AuthService, grpc(authServer.url));
  const users = createClient(UserService, grpc(userServer.url));
  const posts = createClient(PostService, grpc(postServer.url));
  let feed: Client<typeof FeedService> = createClient(FeedService, grpc(feedServer.url));
  const uncachedFeed = createClient(FeedService, grpc(uncachedFeedServer.url));
  const bff = bffServer ? createClient(BffService, grpc(bffServer.url)) : undefined;

  // --- accounts and follows (real: register, login, Follow) -----------------
  step("registering accounts");
  const labels = ["reader", "fan", "author10k", "author100k", ...Array.from({ length: E2E_AUTHORS }, (_, i) => `author${i}`)];
  const accounts = await inParallel(labels, 4, (label) => signUp(auth, label));
  const [reader, fan, author10k, author100k, ...authors] = accounts as [Account, Account, Account, Account, ...Account[]];
  await waitFor(
    "every profile (UserRegistered → user service)",
    async () => (await users.batchGetProfiles({ userIds: accounts.map((a) => a.userId) }, reader.call)).profiles.length === accounts.length,
    60_000,
  );
  step("following");
  const readAuthors = authors.slice(0, READ_AUTHORS);
  for (const author of authors) await users.follow({ userId: author.userId }, reader.call);
  for (const author of readAuthors) await users.follow({ userId: author.userId }, fan.call);
  const feedQuery = <T extends Record<string, unknown>>(text: string, params: unknown[] = []) => withClient(database.url, async (pg) => (await pg.query(text, params)).rows as T[]);
  await waitFor(
    "the follows in the feed's projection (FollowCreated → feed)",
    async () => Number((await feedQuery<{ n: string }>("select count(*) as n from feed.follows where follower_id in ($1, $2)", [reader.userId, fan.userId]))[0]?.n) === authors.length + readAuthors.length,
    60_000,
  );
  // A timeline exists once read (rebuilt from the projection); fan-out only writes existing ones.
  await feed.getHomeFeed({ pageSize: 20 }, reader.call);
  await feed.getHomeFeed({ pageSize: 20 }, fan.call);

  step(`posting ${READ_AUTHORS * READ_POSTS_PER_AUTHOR} posts for the read scenario`);
  const seedPosts = readAuthors.flatMap((author) => Array.from({ length: READ_POSTS_PER_AUTHOR }, (_, i) => ({ author, i })));
  await inParallel(seedPosts, 8, ({ author, i }) => posts.createPost({ text: `read bench post ${i} by ${author.label}` }, author.call));
  const timelineSize = async (userId: string) => (await redis.zcard(timelines.keyOf(userId))) - 1; // minus the marker
  await waitFor("the read scenario's posts in the reader's and the fan's timelines", async () => (await timelineSize(reader.userId)) >= seedPosts.length && (await timelineSize(fan.userId)) >= seedPosts.length, 60_000);

  // --- fan-out ----------------------------------------------------------------
  step(READ_ONLY ? "seeding 100,000 followers (read rows only: no timelines for them)" : "seeding 10,000 + 100,000 followers and their timelines");
  const seedStarted = performance.now();
  const seeded10k = READ_ONLY ? undefined : await seedFollowers(database.url, author10k.userId, 10_000);
  const seeded100k = await seedFollowers(database.url, author100k.userId, 99_999, [fan.userId]);
  const seedSqlMs = performance.now() - seedStarted;
  if (seeded10k) await createTimelines(timelines, [...seeded10k.followers, ...(WRITE_ONLY ? [] : seeded100k.followers)]);
  const seedMs = { followersSql: Math.round(seedSqlMs), timelines: Math.round(performance.now() - seedStarted - seedSqlMs) };
  step(`seeded (${seedMs.followersSql} ms SQL, ${seedMs.timelines} ms timelines)`);

  /** Creates posts one at a time; `readable` resolves once a post counts as delivered; `verify` checks (untimed) and throws if not. */
  const fanOut = async (
    name: string,
    author: Account,
    seededAuthor: SeededAuthor,
    readable: (postId: string) => Promise<boolean>,
    verify: (postId: string) => Promise<void>,
    extra: { until: string; goalMs?: number },
  ): Promise<FanoutResult> => {
    const times: number[] = [];
    // One warm-up post first (not counted): the first large keyset walk and a fresh consumer's partition assignment are not what is measured.
    for (let i = 0; i <= FANOUT_POSTS; i += 1) {
      const created = await posts.createPost({ text: `${name} #${i}` }, author.call);
      const returned = performance.now();
      const postId = (created.post?.postId ?? "").toLowerCase();
      await waitFor(`${name}: post ${postId} delivered`, () => readable(postId), 120_000, 2);
      const took = performance.now() - returned;
      await verify(postId);
      if (i > 0) times.push(took);
      await sleep(200);
    }
    const sorted = [...times].sort((a, b) => a - b);
    const result = { name, followers: seededAuthor.followers.length, posts: times.length, p50Ms: round(quantile(sorted, 0.5), 1), maxMs: round(sorted.at(-1) ?? Number.NaN, 1), allMs: times.map((t) => round(t, 1)), ...extra };
    step(`${name}: p50 ${result.p50Ms} ms, max ${result.maxMs} ms`);
    return result;
  };
  const inLastTimeline = (seededAuthor: SeededAuthor) => async (postId: string) => (await redis.zscore(timelines.keyOf(seededAuthor.lastFollower), postId)) !== null;
  const inAllTimelines = (name: string, seededAuthor: SeededAuthor) => async (postId: string) => {
    const holding = await countTimelinesHolding(redis, timelines.keyOf, seededAuthor.followers, postId);
    if (holding !== seededAuthor.followers.length) throw new Error(`${name}: post ${postId} is in ${holding} of ${seededAuthor.followers.length} timelines once the last follower has it`);
  };

  const fanout: FanoutResult[] = [];
  if (seeded10k) {
    fanout.push(
      await fanOut("10,000 followers, fanned out (threshold 10,000)", author10k, seeded10k, inLastTimeline(seeded10k), inAllTimelines("10k", seeded10k), {
        until: "in all 10,000 timelines (polls the last follower in keyset order, then checks all)",
        goalMs: 100,
      }),
    );
  }
  if (WRITE_ONLY) {
    // The write path alone (BENCH_FEED_ONLY=write): the 10,000 fan-out above and the knee; the docs untouched.
    const writeProcesses = { feed: feedServer.process.pid, post: postServer.process.pid, user: userServer.process.pid, auth: authServer.process.pid, "load generator": process.pid };
    const readerKey = timelines.keyOf(reader.userId);
    const knee = await writeKnee(writeProcesses, (rate, seconds) => endToEnd(redis, readerKey, posts, authors, cpuMeter(writeProcesses), rate, seconds));
    await mkdir(resolve(repo, "bench/results"), { recursive: true });
    await writeFile(resultsPath, `${JSON.stringify({ at: new Date().toISOString(), ...machine, fanout, knee }, null, 2)}\n`);
    console.log(`${fanoutTableOf(fanout)}\n\n${kneeTableOf(knee)}`);
    return;
  }
  const inFansFeed = async (postId: string) => (await feed.getHomeFeed({ pageSize: 20 }, fan.call)).items.some((item) => item.post?.postId.toLowerCase() === postId);
  fanout.push(
    await fanOut(
      "100,000 followers, merged at read time (threshold 10,000)",
      author100k,
      seeded100k,
      inFansFeed,
      async (postId) => {
        if (READ_ONLY) return;
        const holding = await countTimelinesHolding(redis, timelines.keyOf, seeded100k.followers, postId);
        if (holding !== 0) throw new Error(`hybrid: post ${postId} was fanned out into ${holding} timelines although the author is above the threshold`);
      },
      { until: "in a follower's GetHomeFeed (polled back to back); checked in none of the 100,000 timelines" },
    ),
  );

  // --- GetHomeFeed beside the no-op -----------------------------------------
  const readerPage = await feed.getHomeFeed({ pageSize: 20 }, reader.call);
  const fanPage = await feed.getHomeFeed({ pageSize: 20 }, fan.call);
  for (const [who, page] of [["reader", readerPage], ["fan", fanPage]] as const) {
    if (page.items.length !== 20 || page.nextPageToken === "" || page.items.some((item) => item.post === undefined || item.author === undefined)) {
      throw new Error(`read: the ${who}'s first page is not a full hydrated page of 20 (${page.items.length} items)`);
    }
  }
  const uncachedPage = await uncachedFeed.getHomeFeed({ pageSize: 20 }, reader.call);
  if (uncachedPage.items.length !== 20) throw new Error(`read: the uncached feed process answers ${uncachedPage.items.length} items, not 20`);
  // A section can miss its budget on a busy machine: a whole answer within a minute is the check.
  const whole = (answer: Awaited<ReturnType<NonNullable<typeof bff>["getHome"]>>) => answer.feed.length === 20 && answer.errors.length === 0 && answer.profile !== undefined && answer.unread !== undefined;
  let home = await bff?.getHome({}, reader.call);
  if (bff && home && !whole(home)) await waitFor("a whole GetHome", async () => whole((home = await bff.getHome({}, reader.call))), 60_000, 500).catch(() => undefined);
  if (home && !whole(home)) {
    throw new Error(`read: GetHome is not whole (${home.feed.length} feed items, errors: ${home.errors.map((e) => e.section).join(", ") || "none"})`);
  }
  const pagePostIds = readerPage.items.map((item) => item.post!.postId);
  const followedIds = authors.map((author) => author.userId);
  step("measuring GetHomeFeed and the other read paths beside the no-op");
  const processes = () => ({
    feed: feedServer.process.pid,
    "feed (uncached)": uncachedFeedServer.process.pid,
    post: postServer.process.pid,
    user: userServer.process.pid,
    auth: authServer.process.pid,
    bff: bffServer?.process.pid,
    notification: notificationServer.process.pid,
    chat: chatServer?.process.pid,
    noop: noop.process.pid,
    "load generator": process.pid,
  });
  const measured = async (name: string, call: () => Promise<unknown>): Promise<ReadRow> => {
    // What each process burns with no calls at all (consumer polls, timers), over IDLE_MS right before,
    // is taken off its window: on a busy machine a row's calls are few, and that share would swamp them.
    const idle = await idleCpu(processes(), IDLE_MS);
    const meter = cpuMeter(processes());
    let cpu: ReturnType<typeof meter.stop> | undefined;
    const window = (phase: "start" | "end") => (phase === "start" ? meter.start() : (cpu = meter.stop()));
    const result = READ_CALLS > 0 ? await measureCalls(name, 32, call, READ_CALLS, window) : await measure(name, 32, call, durationMs, window);
    const perCall = Object.fromEntries(
      Object.entries(lessIdle(cpu?.msByProcess ?? {}, cpu?.wallMs ?? 0, idle))
        .map(([label, ms]) => [label, round(ms / Math.max(1, result.calls), 2)] as const)
        .filter(([, ms]) => ms > 0),
    );
    return { ...result, throughputVsNoop: 1, p50VsNoop: 1, cpuMsPerCall: perCall, machineBusy: cpu?.machineBusy ?? Number.NaN };
  };
  const read: ReadRow[] = [];
  read.push(await measured("no-op (bare connect-node, Health/Check)", () => reference.check({})));
  read.push(await measured(`GetHomeFeed page of 20 (timeline in Redis; follows ${authors.length} authors)`, () => feed.getHomeFeed({ pageSize: 20 }, reader.call)));
  read.push(await measured("GetHomeFeed page of 20, also follows a 100k author merged at read time", () => feed.getHomeFeed({ pageSize: 20 }, fan.call)));
  const readRows = read.map((r) => ({ ...r, throughputVsNoop: round(r.throughput / read[0]!.throughput, 3), p50VsNoop: round(r.p50Ms / read[0]!.p50Ms, 2) }));
  const halfLoad = await atRate(Math.max(1, Math.round(read[1]!.throughput / 2)), () => feed.getHomeFeed({ pageSize: 20 }, reader.call));
  step(`GetHomeFeed at half its peak (${halfLoad.rate}/s open loop): p50 ${halfLoad.p50Ms} ms, p99 ${halfLoad.p99Ms} ms, ${halfLoad.errors} errors`);

  // The other read paths, with the no-op again right before them (the machine drifts over a run).
  const paths: ReadRow[] = [];
  paths.push(await measured("no-op (bare connect-node, Health/Check)", () => reference.check({})));
  paths.push(await measured("GetHomeFeed page of 20, uncached (FEED_VIEW_CACHE_SECONDS=0: hydrated every call)", () => uncachedFeed.getHomeFeed({ pageSize: 20 }, reader.call)));
  if (bff) paths.push(await measured("GetHome through the BFF (profile + GetHomeFeed page of 20, cached + unread counts)", () => bff.getHome({}, reader.call)));
  paths.push(await measured("BatchGetPosts, the page's 20 posts (block check through the user service)", () => posts.batchGetPosts({ postIds: pagePostIds }, reader.call)));
  paths.push(await measured("GetPost", () => posts.getPost({ postId: pagePostIds[0]! }, reader.call)));
  paths.push(await measured(`BatchGetProfiles, the ${followedIds.length} authors the reader follows`, () => users.batchGetProfiles({ userIds: followedIds }, reader.call)));
  paths.push(await measured("ListFollowers, page of 20", () => users.listFollowers({ userId: readAuthors[0]!.userId, pageSize: 20 }, reader.call)));
  const pathRows = paths.map((r) => ({ ...r, throughputVsNoop: round(r.throughput / paths[0]!.throughput, 3), p50VsNoop: round(r.p50Ms / paths[0]!.p50Ms, 2) }));
  const cached = { feed: feedServer.process.pid };
  const uncached = { "feed (uncached)": uncachedFeedServer.process.pid, post: postServer.process.pid, user: userServer.process.pid };
  const ghzRows = await ghzReadRows(processes, allocDir, [
    { name: "no-op (bare connect-node, Health/Check)", url: noop.url, method: "grpc.health.v1.Health.Check" },
    { name: GHZ_CACHED_ROW, url: feedServer.url, method: "aviary.feed.v1.FeedService.GetHomeFeed", data: { pageSize: 20 }, metadata: reader.call.headers, sample: cached },
    { name: "GetHomeFeed page of 20, uncached", url: uncachedFeedServer.url, method: "aviary.feed.v1.FeedService.GetHomeFeed", data: { pageSize: 20 }, metadata: reader.call.headers, sample: uncached },
    // The same cached call on the feed's grpc-js listener (FEED_INTERNAL_PORT: same handlers and interceptors), where the framework costs least.
    { name: GRPC_JS_CACHED_ROW, url: feedServer.peerUrl, method: "aviary.feed.v1.FeedService.GetHomeFeed", data: { pageSize: 20 }, metadata: reader.call.headers, sample: cached },
    // The latency goal's load (half the peak), offered open loop by ghz, whose own pauses are far shorter than the Node generator's.
    { name: `${GHZ_CACHED_ROW}, at half its peak (open loop)`, url: feedServer.url, method: "aviary.feed.v1.FeedService.GetHomeFeed", data: { pageSize: 20 }, metadata: reader.call.headers, halfOf: GHZ_CACHED_ROW, sample: cached },
    { name: `${GRPC_JS_CACHED_ROW}, at half its peak (open loop)`, url: feedServer.peerUrl, method: "aviary.feed.v1.FeedService.GetHomeFeed", data: { pageSize: 20 }, metadata: reader.call.headers, halfOf: GRPC_JS_CACHED_ROW, sample: cached },
  ]);
  if (READ_ONLY) {
    await mkdir(resolve(repo, "bench/results"), { recursive: true });
    await writeFile(resultsPath, `${JSON.stringify({ at: new Date().toISOString(), ...machine, seconds: durationMs / 1000, readRows, halfLoad, pathRows, ghzRows }, null, 2)}\n`);
    console.log(`GetHomeFeed at half its peak: ${JSON.stringify(halfLoad)}`);
    console.log(ghzTableOf(ghzRows));
    if (ALLOC) console.log(allocationTable(ghzRows));
    for (const row of [...readRows, ...pathRows]) console.log(`${row.name}: ${row.throughput}/s (${row.throughputVsNoop} of no-op), p50 ${row.p50Ms} p99 ${row.p99Ms}, errors ${row.errors}; CPU ms/call ${JSON.stringify(row.cpuMsPerCall)}, busy ${row.machineBusy}`);
    return;
  }

  // --- end to end at a steady rate ---------------------------------------------
  step(`end to end: ${E2E_RATE} posts/s for ${E2E_SECONDS} s`);
  const e2e = await endToEnd(redis, timelines.keyOf(reader.userId), posts, authors, cpuMeter(processes()));
  step(`end to end: p50 ${e2e.p50Ms} ms, p99 ${e2e.p99Ms} ms, ${e2e.createdPerSecond} posts/s created`);
  const knee = await writeKnee(processes(), (rate, seconds) => endToEnd(redis, timelines.keyOf(reader.userId), posts, authors, cpuMeter(processes()), rate, seconds));

  // --- 100k fanned out: a second feed process with the threshold off -----------
  step("restarting the feed with FEED_FANOUT_THRESHOLD=off");
  await feedServer.stop();
  servers.splice(servers.indexOf(feedServer), 1);
  feedServer = await start("feed-off", "services/feed/src/main.ts", { ...feedEnv, FEED_FANOUT_THRESHOLD: "off" });
  feed = createClient(FeedService, grpc(feedServer.url));
  fanout.push(
    await fanOut("100,000 followers, fanned out (FEED_FANOUT_THRESHOLD=off)", author100k, seeded100k, inLastTimeline(seeded100k), inAllTimelines("100k", seeded100k), {
      until: "in all 100,000 timelines (polls the last follower in keyset order, then checks all)",
    }),
  );

  await report({ fanout, readRows, halfLoad, pathRows, ghzRows, e2e, knee, seedMs });
}

// --- unary rows driven by ghz ---------------------------------------------------

/** A ghz row, with what each sampled process allocated during it (BENCH_FEED_ALLOC), by process label. */
type ReadGhzRow = GhzRow & { allocation?: Record<string, AllocationSummary> };

/** The summary bench/alloc-sampler.ts in process `pid` writes once a sampled row's window closed (it is not in `before`). */
async function newSummary(dir: string, pid: number, before: readonly string[]): Promise<AllocationSummary> {
  let file: string | undefined;
  const ours = (name: string) => name.startsWith(`alloc-${pid}-`) && name.endsWith(".json") && !before.includes(name);
  await waitFor(`the allocation sampler's summary of process ${pid}`, async () => (file = (await readdir(dir)).find(ours)) !== undefined, SUMMARY_WAIT_MS, 100);
  return JSON.parse(await readFile(join(dir, file!), "utf8")) as AllocationSummary;
}

/** Bytes allocated per call in the sampled rows, and the origins that allocated most. */
function allocationTable(rows: readonly ReadGhzRow[]): string {
  const sampled = rows.filter((row) => row.allocation !== undefined);
  if (sampled.length === 0) return "No row was sampled.";
  const top = (summary: AllocationSummary) =>
    summary.byOrigin
      .slice(0, 8)
      .map((o) => `${o.origin} ${o.bytesPerCall}`)
      .join(", ");
  return [
    "| row (ghz) | process | calls it served | bytes allocated per call it served | largest origins, bytes per call |",
    "|---|---|---|---|---|",
    ...sampled.flatMap((row) => Object.entries(row.allocation!).map(([label, a]) => `| ${row.name} | ${label} | ${a.calls} | ${a.bytesPerCall} | ${top(a)} |`)),
  ].join("\n");
}

/**
 * The same calls as the Node generator's rows, from ghz (bench/ghz.ts): 4
 * connections × 32 calls in flight on one core. Skipped (empty) when ghz
 * cannot be built here.
 */
async function ghzReadRows(
  processes: () => Record<string, number | undefined>,
  /** BENCH_FEED_ALLOC: where the processes running bench/alloc-sampler.ts write (undefined: nothing is sampled). */
  allocDir: string | undefined,
  rows: ReadonlyArray<{
    name: string;
    url: string;
    method: string;
    data?: Record<string, unknown>;
    metadata?: Record<string, string>;
    /** Offered open loop at half this earlier row's throughput. */
    halfOf?: string;
    /** The processes (label → pid) whose allocations the row samples when allocDir is set. */
    sample?: Record<string, number | undefined>;
  }>,
): Promise<GhzRow[]> {
  const found = findGhz();
  if (!("path" in found)) {
    console.warn(`the ghz rows are skipped: ${found.missing}`);
    return [];
  }
  step("measuring the read rows again with ghz");
  const out: ReadGhzRow[] = [];
  for (const { name, halfOf, sample, ...call } of rows) {
    const { "load generator": _self, ...servers } = processes();
    const peak = halfOf === undefined ? undefined : out.find((row) => row.name === halfOf)?.throughput;
    const rps = peak === undefined ? {} : { rps: Math.max(1, Math.round(peak / 2)) };
    const sampled = allocDir === undefined ? [] : Object.entries(sample ?? {}).flatMap(([label, pid]) => (pid === undefined ? [] : [{ label, pid }]));
    const before = allocDir === undefined ? [] : await readdir(allocDir);
    const toggle = sampled.length === 0 ? undefined : () => sampled.forEach(({ pid }) => process.kill(pid, "SIGUSR2"));
    const row: ReadGhzRow = await ghzRow(found.path, name, { ...call, ...rps, connections: 4, concurrency: 128 }, durationMs / 1000, servers, IDLE_MS, toggle);
    if (allocDir !== undefined && sampled.length > 0) {
      row.allocation = Object.fromEntries(await Promise.all(sampled.map(async ({ label, pid }) => [label, await newSummary(allocDir, pid, before)] as const)));
    }
    out.push(row);
    step(`ghz ${name}: ${row.throughput}/s (${round(row.throughput / Math.max(1, out[0]!.throughput), 3)} of the first row), p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms, ${row.errors} errors`);
  }
  return out;
}

/** The ghz rows at half the peak, as a clause of the feed section's summary. */
function halfPeakNote(rows: readonly GhzRow[]): string {
  const half = rows.filter((row) => row.name.endsWith("at half its peak (open loop)"));
  if (half.length === 0) return "";
  return `; from ghz at half its peak, ${half.map((row) => `p99 ${row.p99Ms} ms at ${row.throughput}/s ${row.name.includes("grpc-js") ? "on the grpc-js listener" : "on the connect-node port"} (${row.p99Ms <= 25 ? "met" : "not met"})`).join(", ")}`;
}

function ghzTableOf(rows: readonly GhzRow[]): string {
  return ghzTable(rows, "call (ghz, 4 connections × 32 in flight, one core)");
}

// --- end to end -----------------------------------------------------------------

interface E2eResult {
  targetRate: number;
  seconds: number;
  scheduled: number;
  created: number;
  createErrors: number;
  /** Posts handed to CreatePost per second over the sending window (open loop: the schedule does not wait for answers). */
  sentPerSecond: number;
  /** Posts created per second, first send to last CreatePost answer. */
  createdPerSecond: number;
  createP50Ms: number;
  createP99Ms: number;
  seen: number;
  missing: number;
  /** Posts seen in the timeline before their CreatePost answer arrived (counted as 0 ms). */
  seenBeforeAnswer: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  pollEveryMs: number;
  meanPollIntervalMs: number;
  /** CPU time per created post, by process, from the first send until the last post was seen. */
  cpuMsPerPost: Record<string, number>;
  /** The same window's CPU ms by process, and its length (to take out what the processes spend idle: `marginalCpu`). */
  cpuMs: Record<string, number>;
  cpuWallMs: number;
  /** Share of the machine's CPU time in use over that window (all processes, databases included). */
  machineBusy: number;
}

async function endToEnd(
  redis: Redis,
  readerKey: string,
  posts: Client<typeof PostService>,
  authors: Account[],
  meter: ReturnType<typeof cpuMeter>,
  rate = E2E_RATE,
  seconds = E2E_SECONDS,
): Promise<E2eResult> {
  const total = rate * seconds;
  const sends: Array<{ sentAt: number; sentEpoch: number; returnedAt?: number; postId?: string; failed?: boolean }> = [];
  const seen = new Map<string, number>();
  let polling = true;
  let polls = 0;
  // The window polled: posts scored from slightly before the oldest send not yet seen (scores are created_at, epoch ms, same clock).
  let oldestUnseen = 0;
  const windowStart = () => {
    while (oldestUnseen < sends.length && (sends[oldestUnseen]!.failed || (sends[oldestUnseen]!.postId !== undefined && seen.has(sends[oldestUnseen]!.postId!)))) oldestUnseen += 1;
    return (sends[oldestUnseen]?.sentEpoch ?? Date.now()) - 1_000;
  };
  const pollStarted = performance.now();
  const poller = (async () => {
    while (polling) {
      const members = await redis.zrevrangebyscore(readerKey, "+inf", windowStart(), "LIMIT", 0, 400);
      const now = performance.now();
      for (const member of members) if (!seen.has(member)) seen.set(member, now);
      polls += 1;
      await sleep(E2E_POLL_MS);
    }
  })();

  const inflight: Array<Promise<void>> = [];
  const begin = performance.now() + 50;
  meter.start();
  const fire = (index: number) => {
    const author = authors[index % authors.length]!;
    const send: (typeof sends)[number] = { sentAt: performance.now(), sentEpoch: Date.now() };
    sends.push(send);
    inflight.push(
      posts.createPost({ text: `e2e bench post ${index}` }, author.call).then(
        (created) => {
          send.returnedAt = performance.now();
          send.postId = (created.post?.postId ?? "").toLowerCase();
        },
        () => {
          send.failed = true;
        },
      ),
    );
  };
  await openLoop(begin, total, rate, (index) => fire(index));
  const lastSent = performance.now();
  await Promise.all(inflight);
  const lastReturned = Math.max(...sends.map((s) => s.returnedAt ?? 0));
  const created = sends.filter((s) => s.postId !== undefined);
  await waitFor("every end-to-end post in the reader's timeline", async () => created.every((s) => seen.has(s.postId!)), 60_000, 20).catch((error: unknown) =>
    console.warn((error as Error).message),
  );
  polling = false;
  await poller;
  const pollSpan = performance.now() - pollStarted;
  const cpu = meter.stop();

  const latencies = created.filter((s) => seen.has(s.postId!)).map((s) => Math.max(0, seen.get(s.postId!)! - s.returnedAt!));
  const seenBeforeAnswer = created.filter((s) => seen.has(s.postId!) && seen.get(s.postId!)! < s.returnedAt!).length;
  latencies.sort((a, b) => a - b);
  const createLatencies = created.map((s) => s.returnedAt! - s.sentAt).sort((a, b) => a - b);
  const firstSent = sends[0]?.sentAt ?? begin;
  return {
    targetRate: rate,
    seconds,
    scheduled: total,
    created: created.length,
    createErrors: sends.length - created.length,
    sentPerSecond: round(sends.length / ((lastSent - firstSent) / 1000), 1),
    createdPerSecond: round(created.length / ((lastReturned - firstSent) / 1000), 1),
    createP50Ms: round(quantile(createLatencies, 0.5), 1),
    createP99Ms: round(quantile(createLatencies, 0.99), 1),
    seen: latencies.length,
    missing: created.length - latencies.length,
    seenBeforeAnswer,
    p50Ms: round(quantile(latencies, 0.5), 1),
    p99Ms: round(quantile(latencies, 0.99), 1),
    maxMs: round(latencies.at(-1) ?? Number.NaN, 1),
    pollEveryMs: E2E_POLL_MS,
    meanPollIntervalMs: round(pollSpan / Math.max(1, polls), 2),
    cpuMsPerPost: Object.fromEntries(Object.entries(cpu.msByProcess).filter(([, ms]) => ms > 0).map(([label, ms]) => [label, round(ms / Math.max(1, created.length), 2)])),
    cpuMs: cpu.msByProcess,
    cpuWallMs: cpu.wallMs,
    machineBusy: cpu.machineBusy,
  };
}

// --- a fixed number of calls ----------------------------------------------------------

/** `calls` calls from `concurrency` loops after a warm-up of 200; the window is those calls, however long they take. */
async function measureCalls(name: string, concurrency: number, call: () => Promise<unknown>, calls: number, window: (phase: "start" | "end") => void): Promise<Result> {
  const run = async (count: number, latencies?: number[]) => {
    let next = 0;
    let errors = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) {
          next += 1;
          const t0 = performance.now();
          await call().catch(() => {
            errors += 1;
          });
          latencies?.push(performance.now() - t0);
        }
      }),
    );
    return errors;
  };
  await run(200);
  const latencies: number[] = [];
  window("start");
  const started = performance.now();
  const errors = await run(calls, latencies);
  const seconds = (performance.now() - started) / 1000;
  window("end");
  if (errors > 0) console.warn(`${name}: ${errors} errors`);
  latencies.sort((a, b) => a - b);
  return { name, concurrency, seconds: round(seconds, 1), calls: latencies.length, errors, throughput: Math.round(latencies.length / seconds), p50Ms: round(quantile(latencies, 0.5)), p99Ms: round(quantile(latencies, 0.99)) };
}

// --- open loop at a fixed rate ------------------------------------------------------

/** Calls `fire` `total` times at `rate` per second from `begin` (performance.now ms), on schedule: never waiting for earlier calls. */
async function openLoop(begin: number, total: number, rate: number, fire: (index: number, due: number) => void): Promise<void> {
  for (let index = 0; index < total; ) {
    const due = begin + (index * 1000) / rate;
    const now = performance.now();
    if (now < due) {
      await sleep(Math.max(1, Math.floor(due - now)));
      continue;
    }
    fire(index, due);
    index += 1;
  }
}

interface RateResult {
  rate: number;
  seconds: number;
  calls: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * Calls at a steady `rate` for BENCH_SECONDS after a 1 s warm-up, open loop:
 * a call's latency counts from when it was due, not when it was sent, so a
 * load generator falling behind shows as latency rather than hiding it.
 */
async function atRate(rate: number, call: () => Promise<unknown>): Promise<RateResult> {
  const warmupMs = 1_000;
  const total = Math.round((rate * (warmupMs + durationMs)) / 1000);
  const latencies: number[] = [];
  let errors = 0;
  const inflight: Array<Promise<void>> = [];
  const begin = performance.now();
  await openLoop(begin, total, rate, (_index, due) => {
    const counted = due - begin >= warmupMs;
    inflight.push(
      call().then(
        () => {
          if (counted) latencies.push(performance.now() - due);
        },
        () => {
          errors += 1;
        },
      ),
    );
  });
  await Promise.all(inflight);
  latencies.sort((a, b) => a - b);
  return { rate, seconds: durationMs / 1000, calls: latencies.length, errors, p50Ms: round(quantile(latencies, 0.5)), p99Ms: round(quantile(latencies, 0.99)) };
}

// --- the write-path knee ------------------------------------------------------------

/**
 * CPU ms per created post by process with the idle rate taken out: what a
 * post costs, not what the process spends anyway. On a slow or contended
 * machine few posts share a long window, and the idle share would swamp the
 * plain per-post figure.
 */
function marginalCpu(r: E2eResult, idle: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(lessIdle(r.cpuMs, r.cpuWallMs, idle)).map(([label, ms]) => [label, round(ms / Math.max(1, r.created), 2)]));
}

interface KneeResult {
  /** The highest rate offered whose post → timeline p99 stayed within p99GoalMs, every post created and seen; undefined if none did. */
  kneeRate: number | undefined;
  p99GoalMs: number;
  /** CPU ms per second by process before the first step, with nothing posted. */
  idleCpuMsPerSecond: Record<string, number>;
  steps: Array<E2eResult & { marginalCpuMsPerPost: Record<string, number> }>;
}

function holdsRate(r: E2eResult): boolean {
  return r.createErrors === 0 && r.missing === 0 && r.p99Ms <= KNEE_P99_MS && r.createdPerSecond >= 0.95 * r.targetRate;
}

/** Offers each of KNEE_RATES for KNEE_SECONDS (open loop), lowest first, until one does not hold (`holdsRate`); every step drains before the next. */
async function writeKnee(processes: Record<string, number | undefined>, run: (rate: number, seconds: number) => Promise<E2eResult>): Promise<KneeResult> {
  const idle = await idleCpu(processes, 3_000);
  const steps: KneeResult["steps"] = [];
  let kneeRate: number | undefined;
  let failed = false;
  for (const rate of KNEE_RATES) {
    step(`knee: ${rate} posts/s for ${KNEE_SECONDS} s`);
    const result = await run(rate, KNEE_SECONDS);
    steps.push({ ...result, marginalCpuMsPerPost: marginalCpu(result, idle) });
    step(`knee: ${rate}/s → ${result.createdPerSecond}/s created, in timeline p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, CPU ms/post ${JSON.stringify(result.cpuMsPerPost)}, idle taken out ${JSON.stringify(steps.at(-1)!.marginalCpuMsPerPost)}`);
    if (!holdsRate(result)) {
      if (!KNEE_EVERY_RATE) break;
      failed = true;
    } else if (!failed) kneeRate = rate;
  }
  return { kneeRate, p99GoalMs: KNEE_P99_MS, idleCpuMsPerSecond: Object.fromEntries(Object.entries(idle).map(([label, v]) => [label, round(v, 1)])), steps };
}

function ms(value: number): string {
  return Number.isNaN(value) ? "—" : String(value);
}

function fanoutTableOf(fanout: FanoutResult[]): string {
  return [
    "| post by an author with | until | posts | p50 ms | max ms | each ms | goal |",
    "|---|---|---|---|---|---|---|",
    ...fanout.map((r) => `| ${r.name} | ${r.until} | ${r.posts} | ${ms(r.p50Ms)} | ${ms(r.maxMs)} | ${r.allMs.join(", ")} | ${r.goalMs === undefined ? "—" : `≤ ${r.goalMs} ms`} |`),
  ].join("\n");
}

/** CPU ms per post of the post service and the feed (its consumer), the write path's own cost. */
function writePathCpu(perPost: Record<string, number>): number {
  return round((perPost["post"] ?? 0) + (perPost["feed"] ?? 0), 2);
}

function kneeTableOf(knee: KneeResult): string {
  return [
    `| posts/s offered | created/s | CreatePost p50 / p99 ms | in timeline p50 ms | p99 ms | max ms | errors / not seen | CPU ms per post: post + feed (idle taken out) | by process (idle taken out) | CPU ms per post, plain: post + feed | machine busy | holds (p99 ≤ ${knee.p99GoalMs} ms) |`,
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...knee.steps.map(
      (r) =>
        `| ${r.targetRate} | ${r.createdPerSecond} | ${r.createP50Ms} / ${r.createP99Ms} | ${ms(r.p50Ms)} | ${ms(r.p99Ms)} | ${ms(r.maxMs)} | ${r.createErrors} / ${r.missing} | ${writePathCpu(r.marginalCpuMsPerPost)} | ${Object.entries(r.marginalCpuMsPerPost)
          .sort(([, a], [, b]) => b - a)
          .map(([label, v]) => `${label} ${v}`)
          .join(", ")} | ${writePathCpu(r.cpuMsPerPost)} | ${Math.round(r.machineBusy * 100)} % | ${holdsRate(r) ? "yes" : "no"} |`,
    ),
  ].join("\n");
}

// --- helpers ---------------------------------------------------------------------

interface Account {
  label: string;
  userId: string;
  call: { headers: Record<string, string> };
}

interface FanoutResult {
  name: string;
  followers: number;
  posts: number;
  p50Ms: number;
  maxMs: number;
  allMs: number[];
  until: string;
  goalMs?: number;
}

async function signUp(auth: Client<typeof AuthService>, label: string): Promise<Account> {
  const identity = { case: "email" as const, value: `${uniqueName(`feedbench.${label}`)}@example.org` };
  const password = "violet-harbour-teapot-42";
  const registered = await auth.register({ identity, password });
  const login = await auth.login({ identity, password });
  return { label, userId: registered.userId.toLowerCase(), call: { headers: { authorization: `Bearer ${login.tokens?.accessToken ?? ""}` } } };
}

async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 5_000);
    if (keys.length > 0) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== "0");
}

// --- output ------------------------------------------------------------------------

type ReadRow = Result & {
  throughputVsNoop: number;
  p50VsNoop: number;
  /** CPU time per measured call, by process, over the measured window. */
  cpuMsPerCall: Record<string, number>;
  /** Share of the machine's CPU time in use over the window (all processes, databases included). */
  machineBusy: number;
};

async function report(results: {
  fanout: FanoutResult[];
  readRows: ReadRow[];
  halfLoad: RateResult;
  pathRows: ReadRow[];
  ghzRows: GhzRow[];
  e2e: E2eResult;
  knee: KneeResult;
  seedMs: Record<string, number>;
}): Promise<void> {
  const at = new Date().toISOString();
  const json = { at, stack: "real (PostgreSQL, Redis, Kafka; services as child processes)", ...machine, seconds: durationMs / 1000, ...results };
  await mkdir(resolve(repo, "bench/results"), { recursive: true });
  await writeFile(resultsPath, `${JSON.stringify(json, null, 2)}\n`);

  const { fanout, readRows, halfLoad, pathRows, e2e, knee } = results;
  const fanoutTable = fanoutTableOf(fanout);
  const rpcTable = (rows: readonly ReadRow[]) =>
    [
      "| RPC | callers | calls/s | p50 ms | p99 ms | calls/s vs no-op | p50 vs no-op | errors |",
      "|---|---|---|---|---|---|---|---|",
      ...rows.map((r) => `| ${r.name} | ${r.concurrency} | ${r.throughput} | ${r.p50Ms} | ${r.p99Ms} | ${r.throughputVsNoop} | ${r.p50VsNoop} | ${r.errors} |`),
    ].join("\n");
  const readTable = rpcTable(readRows);
  const pathTable = rpcTable(pathRows);
  const cpuTable = [
    "| where the CPU went | CPU ms per call (or post), by process | machine busy |",
    "|---|---|---|",
    ...[...readRows, ...pathRows.slice(1)].map((r) => `| ${r.name} | ${cpuCellOf(r.cpuMsPerCall)} | ${Math.round(r.machineBusy * 100)} % |`),
    `| end to end, per post created | ${cpuCellOf(e2e.cpuMsPerPost)} | ${Math.round(e2e.machineBusy * 100)} % |`,
  ].join("\n");
  const e2eTable = [
    "| target | sent/s | created/s | posts created | CreatePost p50 / p99 ms | in timeline p50 ms | p99 ms | max ms | not seen | seen before CreatePost answered | poll interval (mean) |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
    `| ${e2e.targetRate}/s for ${e2e.seconds} s | ${e2e.sentPerSecond} | ${e2e.createdPerSecond} | ${e2e.created} of ${e2e.scheduled} (${e2e.createErrors} errors) | ${e2e.createP50Ms} / ${e2e.createP99Ms} | ${ms(e2e.p50Ms)} | ${ms(e2e.p99Ms)} | ${ms(e2e.maxMs)} | ${e2e.missing} | ${e2e.seenBeforeAnswer} | ${e2e.meanPollIntervalMs} ms |`,
  ].join("\n");
  const ratio = readRows[1]?.throughputVsNoop ?? Number.NaN;
  const tenK = fanout[0];
  const section =
    `## Feed\n\n` +
    `Written by \`node bench/feed.ts\` (${at}; Node ${machine.node}, ${machine.cpus} cores, load average ${machine.loadAverageAtStart.join(" / ")} at the start). Raw figures: \`bench/results/feed.json\`.\n` +
    `Everything runs on this one machine, the load generator included: auth, user, post and feed as child processes (one each; internal hops over ${machine.internalTransport}, BENCH_INTERNAL_TRANSPORT), the no-op reference,\n` +
    `PostgreSQL (a fresh database), Redis (the shared one, keys under a prefix of the run), and a Kafka started for the run and ${kafkaWarmupNote} (the feed consumes from the beginning).\n` +
    `Posts go through PostService.CreatePost → outbox → Kafka → the feed's consumer → Redis, as in production.\n\n` +
    `### Fan-out\n\n` +
    `Followers are seeded into the feed's own projection (feed.follows, follower_counts) and their timelines created (empty) through the feed's TimelineStore,\n` +
    `in ${results.seedMs["followersSql"]} ms (SQL) and ${results.seedMs["timelines"]} ms (110,000 timelines); the authors are real accounts. The clock starts when CreatePost answers;\n` +
    `fan-out writes followers in keyset order of follower id (FEED_FANOUT_BATCH=1000), so the last follower's timeline is polled (every 2 ms), then every timeline is checked, untimed.\n` +
    `One warm-up post per row is not counted. The followers' timelines hold only this run's posts (small sorted sets): writes into full 800-entry timelines cost somewhat more.\n\n` +
    `${fanoutTable}\n\n` +
    `### GetHomeFeed\n\n` +
    `A page of 20 from a timeline in Redis, hydrated with one BatchGetPosts (post service, which asks the user service about blocks) and one BatchGetProfiles;\n` +
    `the reader follows ${READ_AUTHORS} authors with ${READ_POSTS_PER_AUTHOR} posts each (and ${E2E_AUTHORS - READ_AUTHORS} more). The second row's reader also follows the 100,000-follower author,\n` +
    `whose posts are merged from Postgres at read time. Each row: ${durationMs / 1000} s after a 1 s warm-up, one HTTP/2 connection; the no-op is measured in the same run.\n` +
    `Goal: at least 70 % of the no-op's throughput (the first row), p99 ≤ 25 ms at half of its peak load.\n\n${readTable}\n\n` +
    `### The other read paths\n\n` +
    `The same way, after the no-op once more: GetHomeFeed on a second feed process (api role, FEED_VIEW_CACHE_SECONDS=0, so every call hydrates), GetHome through the BFF\n` +
    `(GetProfile, GetHomeFeed on the first feed process, unread counts from the notification and chat services' api roles), and the calls hydration makes, straight to their services as the reader.\n\n${pathTable}\n\n` +
    `### GetHomeFeed driven by ghz\n\n` +
    `The no-op and both GetHomeFeed processes again, from ghz (Go; bench/ghz.ts) instead of the Node generator above: one core, 4 connections × 32 calls in flight, a fixed number of calls\n` +
    `sized from a 1 s warm-up to last about ${durationMs / 1000} s. CPU per call includes ghz's own (its rusage) and every service the call reaches, less what each service used in the idle second before the row (as above).\n` +
    `The rows \"at half its peak\" offer half the throughput of the row they name, open loop (ghz --rps): the load of the latency goal (p99 ≤ 25 ms).\n\n${ghzTableOf(results.ghzRows)}\n\n` +
    `### End to end\n\n` +
    `${E2E_AUTHORS} authors, followed by one reader, post at a steady ${e2e.targetRate}/s for ${e2e.seconds} s on an open-loop schedule (a send does not wait for earlier answers).\n` +
    `Latency: from CreatePost answering until the post is in the reader's Redis timeline (what GetHomeFeed serves), found by polling the timeline's newest entries\n` +
    `every ${e2e.pollEveryMs} ms plus the round trip (mean interval ${e2e.meanPollIntervalMs} ms: the figures carry that resolution). Goal: p50 ≤ 50 ms, p99 ≤ 250 ms (the feed issue); at 200 posts/s p50 ≤ 30 ms, p99 ≤ 100 ms (the performance issue).\n\n${e2eTable}\n\n` +
    `### Write path: the knee\n\n` +
    `The same posts and reader, offered open loop at rising rates (${KNEE_SECONDS} s each, every step drained before the next) until one does not hold: the knee is the highest rate ` +
    `with post → timeline p99 ≤ ${knee.p99GoalMs} ms, every post created and seen, and at least 95 % of the rate created. CPU per post is from /proc over each step (the figure that holds on a busy machine). ` +
    `Goal: knee ≥ 400 posts/s on 2 cores; CPU per post (post + feed) at most half of the 6.08 ms measured before the write-path work (3.75 post + 2.33 feed).\n\n${kneeTableOf(knee)}\n\n` +
    `Knee: ${knee.kneeRate === undefined ? "none of the rates held" : `${knee.kneeRate} posts/s`} (goal ≥ 400: ${(knee.kneeRate ?? 0) >= 400 ? "met" : "not met"}).\n\n` +
    `Reading the figures: ${tenK ? `a post reaches all 10,000 timelines in ${tenK.p50Ms} ms at the median (goal ≤ ${tenK.goalMs} ms at the median, ${tenK.p50Ms <= (tenK.goalMs ?? 0) ? "met" : "not met"}; the feed issue's ≤ 1 s for the slowest, ${tenK.maxMs <= 1000 ? "met" : "not met"})` : ""}; ` +
    `above the threshold the post is readable as soon as the consumer records it, with no fan-out at all, while fanning it out to 100,000 costs the time in the last row.\n` +
    `GetHomeFeed keeps ${ratio} of the no-op's throughput (goal ≥ 0.7, ${ratio >= 0.7 ? "met" : "not met"}; at half that load, ${halfLoad.rate} calls/s open loop, p99 ${halfLoad.p99Ms} ms, goal ≤ 25 ms, ${halfLoad.p99Ms <= 25 ? "met" : "not met"}${halfPeakNote(results.ghzRows)}): a call costs ${serviceCpu(readRows[1])} ms of CPU in the services ` +
    `(feed; post for BatchGetPosts; user twice, for BatchGetProfiles and for the post service's block check) against ${serviceCpu(readRows[0])} ms for the no-op, with the machine ${Math.round((readRows[1]?.machineBusy ?? Number.NaN) * 100)} % busy, ` +
    `so on ${machine.cpus} cores shared with the load generator and the databases the read path is CPU-bound well before the no-op is.\n` +
    `End to end, p50 ${ms(e2e.p50Ms)} ms (goal ≤ 50 ms: ${e2e.p50Ms <= 50 ? "met" : "not met"}; ≤ 30 ms: ${e2e.p50Ms <= 30 ? "met" : "not met"}) and p99 ${ms(e2e.p99Ms)} ms (goal ≤ 250 ms: ${e2e.p99Ms <= 250 ? "met" : "not met"}; ≤ 100 ms: ${e2e.p99Ms <= 100 ? "met" : "not met"}) at ${e2e.createdPerSecond} posts/s created.\n\n` +
    `Figures move by tens of percent between runs on a machine this small and shared.\n\n` +
    `Where the CPU went (from /proc, over each measured window, less what each process used in the idle second before the row, scaled to the window's length; PostgreSQL, Redis and Kafka are in "machine busy" only):\n\n${cpuTable}\n` +
    (await readPathsBeforeAfter([...readRows, ...pathRows]));
  await writeSection(section);
  console.log(fanoutTable);
  console.log(readTable);
  console.log(e2eTable);
  console.log(kneeTableOf(knee));
  console.log(cpuTable);
}

/**
 * The read paths before the issue-17 read work beside this run, by row name:
 * bench/results/feed-read-before.json holds a `BENCH_FEED_ONLY=read` run of
 * the code before it (recorded once; see docs/decisions.md, "The read paths").
 */
async function readPathsBeforeAfter(rows: readonly ReadRow[]): Promise<string> {
  const recorded = await readFile(resolve(repo, "bench/results/feed-read-before.json"), "utf8").catch(() => undefined);
  if (recorded === undefined) return "";
  const before = JSON.parse(recorded) as { at: string; readRows: ReadRow[]; pathRows: ReadRow[] };
  const byName = new Map([...before.readRows, ...before.pathRows].map((row) => [row.name, row]));
  const lines = rows.flatMap((row) => {
    const old = byName.get(row.name);
    if (old === undefined || row.name.startsWith("no-op")) return [];
    return [`| ${row.name} | ${serviceCpu(old)} → ${serviceCpu(row)} | ${cpuCellOf(old.cpuMsPerCall)} | ${cpuCellOf(row.cpuMsPerCall)} | ${old.throughputVsNoop} → ${row.throughputVsNoop} |`];
  });
  return (
    `\n### Read paths before and after the read-path work\n\n` +
    `Before: the code before it, measured ${before.at} (\`bench/results/feed-read-before.json\`); after: this run. CPU ms per call as above.\n\n` +
    `| RPC | services' CPU ms per call, before → after | before, by process | after, by process | calls/s vs no-op, before → after |\n|---|---|---|---|---|\n${lines.join("\n")}\n`
  );
}

function cpuCellOf(byProcess: Record<string, number>): string {
  return Object.entries(byProcess)
    .sort(([, a], [, b]) => b - a)
    .map(([label, ms]) => `${label} ${ms}`)
    .join(", ");
}

/** CPU ms per call summed over every process but the load generator. */
function serviceCpu(row: ReadRow | undefined): number {
  if (row === undefined) return Number.NaN;
  return round(Object.entries(row.cpuMsPerCall).reduce((sum, [label, ms]) => (label === "load generator" ? sum : sum + ms), 0), 1);
}

/** Replaces the feed section of docs/benchmarks.md (between the markers), or appends it. */
async function writeSection(body: string): Promise<void> {
  const current = await readFile(docsPath, "utf8").catch(() => "# Benchmarks\n");
  const block = `${START}\n${body}${END}\n`;
  const from = current.indexOf(START);
  const to = current.indexOf(END);
  const next = from !== -1 && to > from ? current.slice(0, from) + block + current.slice(to + END.length + 1) : `${current.replace(/\n*$/, "\n\n")}${block}`;
  await writeFile(docsPath, next);
}
