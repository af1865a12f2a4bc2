/**
 * THE failure test for fan-out: the Kafka broker is stopped while 1,000
 * posts are created through the post service (its outbox keeps the events
 * while Kafka is down) and started again. Every follower's timeline and
 * paged feed must end with all 1,000 posts, each exactly once.
 *
 * It stops a broker, so everything here (auth, user, post and feed) talks to
 * a private broker of its own: bouncing the shared one would break suites
 * running in parallel.
 */
import test from "ava";
import { eventually, privateServer, type PrivateServer } from "../../runtime/test-support/infra.ts";
import { startTestAuth, type TestAuth } from "../../auth/test/harness.ts";
import { startTestUser, type TestUser } from "../../user/test/harness.ts";
import { startTestFeed, type Account, type TestFeed } from "./harness.ts";

const POSTS = 1_000;
/** Posts created before the broker stops, and before it starts again. */
const OUTAGE_AT = 300;
const RESTART_AT = 700;

let kafka: PrivateServer | undefined;
let auth: TestAuth | undefined;
let user: TestUser | undefined;
let h: TestFeed | undefined;

test.before(async () => {
  kafka = await privateServer("kafka", "feed-kafka-outage");
  const brokers = { KAFKA_BROKERS: kafka.url };
  auth = await startTestAuth(brokers);
  user = await startTestUser(brokers, auth);
  h = await startTestFeed({ ...brokers, FEED_TIMELINE_CAP: "2000" }, { postEnv: brokers, deps: { auth, user } });
});
test.after.always(async () => {
  await h?.close();
  await user?.close();
  await auth?.close();
  await kafka?.down();
});

async function pagedFeed(feed: TestFeed, account: Account): Promise<string[]> {
  const ids: string[] = [];
  let pageToken = "";
  do {
    const page = await feed.client.getHomeFeed({ pageSize: 50, pageToken }, account.call);
    ids.push(...page.items.map((item) => item.post!.postId));
    pageToken = page.nextPageToken;
  } while (pageToken);
  return ids;
}

test.serial("Kafka stopped while 1,000 posts are created: every follower's feed ends with all of them, exactly once", async (t) => {
  t.timeout(300_000);
  const feed = h!;
  const startedAt = Date.now();
  const author = await feed.signUp();
  const followers = await Promise.all([feed.signUp(), feed.signUp(), feed.signUp()]);
  for (const follower of followers) {
    await feed.client.getHomeFeed({}, follower.call);
    await feed.post.user.client.follow({ userId: author.userId }, follower.call);
  }
  await eventually("3 follows in the projection", async () => (await feed.query("select 1 from feed.follows where followee_id = $1", [author.userId])).length === 3, 60_000);

  const created: string[] = [];
  const create = async (from: number, to: number) => {
    // Four writers at a time, like a busy author's clients.
    for (let n = from; n < to; n += 4) {
      const batch = [n, n + 1, n + 2, n + 3].filter((i) => i < to);
      const posts = await Promise.all(batch.map((i) => feed.post.client.createPost({ text: `post ${i}` }, author.call)));
      created.push(...posts.map((reply) => reply.post!.postId));
    }
  };
  // The phases are ordered by awaiting the broker, not by timing: posts
  // OUTAGE_AT..RESTART_AT are created after the stop returned and before the
  // start begins, so they are written while the broker is down whatever the
  // machine's speed; the rest race the broker's start, which is the point.
  await create(0, OUTAGE_AT);
  let at = Date.now();
  await kafka!.stop();
  t.log(`${OUTAGE_AT} posts created, broker stopped (${Date.now() - at} ms)`);
  at = Date.now();
  await create(OUTAGE_AT, RESTART_AT);
  t.log(`${RESTART_AT - OUTAGE_AT} posts created while the broker was down (${Date.now() - at} ms)`);
  const restart = kafka!.start();
  await create(RESTART_AT, POSTS);
  await restart;
  t.log(`${POSTS} posts created, broker back, ${Date.now() - startedAt} ms`);
  t.is(created.length, POSTS);
  await feed.post.service.eventsFlushed(180_000);
  t.log(`outbox flushed ${Date.now() - startedAt} ms`);

  for (const follower of followers) {
    await eventually(`all ${POSTS} in a follower's timeline`, async () => (await feed.timeline(follower.userId))?.length === POSTS, 180_000, 250);
  }
  t.log(`every timeline complete ${Date.now() - startedAt} ms`);
  const expected = [...created].sort();
  for (const follower of followers) {
    t.deepEqual([...(await feed.timeline(follower.userId))!].sort(), expected, "the timeline holds every post");
    const paged = await pagedFeed(feed, follower);
    t.is(paged.length, POSTS, "every post once when paging through");
    t.deepEqual([...paged].sort(), expected);
  }
});
