/**
 * Two failure tests against real Kafka and Redis:
 * - the feed consumer, running as a process of its own (FEED_ROLE=consumer),
 *   is SIGKILLed mid-stream and started again: no post missing, none twice;
 * - Redis loses every timeline (FLUSHALL, then an outage): GetHomeFeed
 *   answers the same posts, rebuilt from (or read straight from) Postgres.
 * Timelines live in a private Redis (FEED_REDIS_URL), which this file alone
 * flushes and stops; the API runs in this process (FEED_ROLE=api).
 */
import test from "ava";
import type { ChildProcess } from "node:child_process";
import { eventually, privateServer, type PrivateServer } from "../../runtime/test-support/infra.ts";
import { startServiceProcess } from "../../runtime/test-support/child.ts";
import { startTestFeed, type Account, type TestFeed } from "./harness.ts";

const POSTS = 400;
const KILL_AFTER = 80;

let redis: PrivateServer | undefined;
let h: TestFeed | undefined;
const consumers = new Set<ChildProcess>();

test.before(async () => {
  redis = await privateServer("redis", "feed-redis-loss");
  h = await startTestFeed({ FEED_ROLE: "api", FEED_REDIS_URL: redis.url, FEED_TIMELINE_CAP: "2000" });
});
test.after.always(async () => {
  for (const child of consumers) child.kill("SIGKILL");
  await h?.close();
  await redis?.down();
});

/** Starts `main.ts` as the consumer role; resolves once it has joined its group and listens. */
async function startConsumer(feed: TestFeed): Promise<ChildProcess> {
  const child = await startServiceProcess({ entry: "services/feed/src/main.ts", env: { ...feed.env, FEED_ROLE: "consumer" }, ready: "feed service listening" });
  consumers.add(child);
  child.on("exit", () => consumers.delete(child));
  return child;
}

async function pagedFeed(feed: TestFeed, account: Account, pageSize = 50): Promise<string[]> {
  const ids: string[] = [];
  let pageToken = "";
  do {
    const page = await feed.client.getHomeFeed({ pageSize, pageToken }, account.call);
    ids.push(...page.items.map((item) => item.post!.postId));
    pageToken = page.nextPageToken;
  } while (pageToken);
  return ids;
}

async function follow(feed: TestFeed, followers: Account[], author: Account): Promise<void> {
  for (const follower of followers) {
    await feed.client.getHomeFeed({}, follower.call);
    await feed.post.user.client.follow({ userId: author.userId }, follower.call);
  }
  await eventually("the follows in the projection", async () => (await feed.query("select 1 from feed.follows where followee_id = $1", [author.userId])).length === followers.length, 60_000);
}

test.serial("the consumer process SIGKILLed mid-stream and restarted: no post missing, none duplicated", async (t) => {
  t.timeout(240_000);
  const feed = h!;
  let consumer = await startConsumer(feed);
  const author = await feed.signUp();
  const followers = await Promise.all([feed.signUp(), feed.signUp()]);
  await follow(feed, followers, author);

  const created: string[] = [];
  const creating = (async () => {
    for (let n = 0; n < POSTS; n += 2) {
      const batch = await Promise.all([n, n + 1].map((i) => feed.post.client.createPost({ text: `post ${i}` }, author.call)));
      created.push(...batch.map((r) => r.post!.postId));
    }
  })();
  await eventually(`${KILL_AFTER} posts applied`, async () => ((await feed.timeline(followers[0]!.userId))?.length ?? 0) >= KILL_AFTER, 60_000, 10);
  consumer.kill("SIGKILL");
  await new Promise((resolve) => consumer.once("exit", resolve));
  const appliedAtKill = (await feed.timeline(followers[0]!.userId))?.length ?? 0;
  t.log(`consumer killed with ${appliedAtKill} of ${POSTS} posts in the first follower's timeline`);
  t.true(appliedAtKill < POSTS, "killed mid-stream");

  consumer = await startConsumer(feed);
  await creating;
  await feed.post.service.eventsFlushed(60_000);
  const expected = [...created].sort();
  for (const follower of followers) {
    await eventually(`all ${POSTS} in a follower's timeline`, async () => (await feed.timeline(follower.userId))?.length === POSTS, 120_000, 100);
    t.deepEqual([...(await feed.timeline(follower.userId))!].sort(), expected);
    const paged = await pagedFeed(feed, follower);
    t.is(paged.length, POSTS, "each post once");
    t.deepEqual([...paged].sort(), expected);
  }
  const [row] = await feed.query<{ n: string }>("select count(*) as n from feed.posts where author_id = $1", [author.userId]);
  t.is(Number(row?.n), POSTS, "the projection holds each post once");
});

test.serial("Redis flushed, then down: GetHomeFeed answers the same posts, from Postgres", async (t) => {
  t.timeout(120_000);
  const feed = h!;
  if (consumers.size === 0) await startConsumer(feed);
  const [reader, bob, cat] = await Promise.all([feed.signUp(), feed.signUp(), feed.signUp()]);
  await follow(feed, [reader], bob);
  await follow(feed, [reader], cat);
  for (let i = 0; i < 30; i++) await feed.post.client.createPost({ text: `p${i}` }, [bob, cat, reader][i % 3]!.call);
  await eventually("30 posts in the reader's timeline", async () => (await feed.timeline(reader.userId))?.length === 30, 60_000);
  const before = await pagedFeed(feed, reader, 7);
  t.is(before.length, 30);

  await feed.redis.flushall();
  t.is(await feed.timeline(reader.userId), null, "the timeline is gone");
  t.deepEqual(await pagedFeed(feed, reader, 7), before, "the same posts, in the same order, page by page");
  t.deepEqual(await feed.timeline(reader.userId), before, "the timeline was rebuilt");

  await redis!.stop();
  try {
    t.deepEqual(await pagedFeed(feed, reader, 7), before, "with Redis down, straight from Postgres");
  } finally {
    await redis!.start();
  }
});
