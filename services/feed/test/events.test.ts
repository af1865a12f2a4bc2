// The consumers against hand-made events on the real Kafka (the same topics,
// keys and headers as the real producers): redelivery of an event id changes
// nothing, a poison event is parked on the dead-letter topic while the
// consumer goes on, and authors above the fan-out threshold (2 here) are
// merged at read time instead of fanned out, also for readers whose process
// had remembered that they follow no such author.
import test from "ava";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { DeliveredEvent, Subscription } from "@aviary/runtime/bus/bus";
import { PostCreatedSchema, PostDeletedSchema } from "@aviary/gen/aviary/events/v1/post_events_pb";
import { FollowCreatedSchema } from "@aviary/gen/aviary/events/v1/user_events_pb";
import { eventually, uniqueName } from "../../runtime/test-support/infra.ts";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { FeedService } from "@aviary/gen/aviary/feed/v1/feed_pb";
import { feedConfigFromEnv, postEventsTopic, startFeedService, userEventsTopic } from "../src/index.ts";
import { MAX_AGE_MS } from "../src/read/merged-authors.ts";
import { startTestFeed, type Account, type TestFeed, CONSUMER_WAIT_MS } from "./harness.ts";

let h: TestFeed;
let dlqSubscription: Subscription | undefined;
const parked: DeliveredEvent[] = [];

test.before(async () => {
  h = await startTestFeed({ FEED_FANOUT_THRESHOLD: "2" });
  dlqSubscription = await h.bus.subscribe({
    groupId: uniqueName("feed_dlq_test"),
    topics: [`${postEventsTopic}.dlq`],
    handle: async (event) => void parked.push(event),
  });
});
test.after.always(async () => {
  await dlqSubscription?.stop();
  await h?.close();
});

const processed = async (eventId: string) => (await h.query("select 1 from feed.processed_events where event_id = $1", [eventId])).length === 1;
const uuid = () => crypto.randomUUID();

/** Makes a user's timeline exist (as a first read would), so fan-out writes it. */
async function openTimeline(userId: string): Promise<void> {
  await h.service.timelines.beginRebuild(userId);
  await h.service.timelines.finishRebuild(userId);
}

test("an event delivered again (same event id) changes nothing", async (t) => {
  const [follower, author, postId] = [uuid(), uuid(), uuid()];
  await Promise.all([openTimeline(follower), openTimeline(author)]);
  const followId = uuid();
  const follow = { followerId: follower, followeeId: author, createdAt: timestampFromDate(new Date()) };
  await h.publish(userEventsTopic, follower, FollowCreatedSchema, follow, followId);
  await h.publish(userEventsTopic, follower, FollowCreatedSchema, follow, followId);

  const createdId = uuid();
  const created = { postId, authorId: author, createdAt: timestampFromDate(new Date(Date.now() - 1000)) };
  await h.publish(postEventsTopic, postId, PostCreatedSchema, created, createdId);
  await eventually("the post fanned out", async () => (await h.timeline(follower))?.includes(postId) ?? false, CONSUMER_WAIT_MS);
  await h.publish(postEventsTopic, postId, PostDeletedSchema, { postId, authorId: author, deletedAt: timestampFromDate(new Date()) });
  // The creation again, after the deletion: must not bring the post back.
  await h.publish(postEventsTopic, postId, PostCreatedSchema, created, createdId);
  // A marker behind it on the same key (same partition): once it is applied, so is everything before it.
  const markerId = await h.publish(postEventsTopic, postId, PostDeletedSchema, { postId, authorId: author, deletedAt: timestampFromDate(new Date()) });
  const followMarker = await h.publish(userEventsTopic, follower, FollowCreatedSchema, { ...follow, followeeId: uuid() });
  await eventually("the markers applied", async () => (await processed(markerId)) && (await processed(followMarker)), CONSUMER_WAIT_MS);

  t.deepEqual(await h.timeline(follower), [], "the post stays out of the follower's timeline");
  t.deepEqual(await h.timeline(author), [], "and out of the author's");
  const [counts] = await h.query<{ followers: string }>("select followers from feed.follower_counts where user_id = $1", [author]);
  t.is(Number(counts?.followers), 1, "the follow counted once");
  const [row] = await h.query<{ n: string }>("select count(*) as n from feed.processed_events where event_id = any($1::uuid[])", [[followId, createdId]]);
  t.is(Number(row?.n), 2);
});

test("a poison event goes to the dead-letter topic with the reason, and the consumer keeps going", async (t) => {
  const key = uuid();
  const poisonId = uuid();
  await h.bus.publish([
    {
      topic: postEventsTopic,
      key,
      value: new Uint8Array([0xff, 0xff, 0xff]),
      headers: { "event-id": poisonId, "event-type": PostCreatedSchema.typeName, "content-type": "application/x-protobuf" },
    },
  ]);
  const badIds = await h.publish(postEventsTopic, key, PostCreatedSchema, { postId: "not-a-uuid", authorId: uuid(), createdAt: timestampFromDate(new Date()) });
  // A good event behind them on the same partition.
  const [author, postId] = [uuid(), key];
  await openTimeline(author);
  await h.publish(postEventsTopic, key, PostCreatedSchema, { postId, authorId: author, createdAt: timestampFromDate(new Date()) });

  // Other suites' feed groups read the shared topic too and park their own copies: look at ours.
  const ours = (eventId: string) => parked.find((e) => e.headers["event-id"] === eventId && e.headers["dlq-group"] === h.env["FEED_GROUP"]);
  await eventually("both poison events parked", () => [poisonId, badIds].every((id) => ours(id) !== undefined), 60_000);
  await eventually("the good event after them applied", async () => (await h.timeline(author))?.includes(postId) ?? false, 60_000);
  const poison = ours(poisonId)!;
  t.regex(poison.headers["dlq-reason"] ?? "", /not a valid aviary\.events\.v1\.PostCreated/);
  t.is(poison.headers["dlq-original-topic"], postEventsTopic);
  t.is(poison.headers["dlq-group"], h.env["FEED_GROUP"]);
  t.regex(ours(badIds)!.headers["dlq-reason"] ?? "", /invalid post_id/);
  t.false(await processed(poisonId));
});

test("hybrid: an author above the threshold is not fanned out, yet is in the followers' feeds", async (t) => {
  const big = await h.signUp();
  const fans: Account[] = [];
  for (let i = 0; i < 3; i++) fans.push(await h.signUp());
  const small = await h.signUp();
  for (const fan of fans) {
    await h.client.getHomeFeed({}, fan.call); // timelines exist
    await h.post.user.client.follow({ userId: big.userId }, fan.call);
  }
  await h.post.user.client.follow({ userId: small.userId }, fans[0]!.call);
  await eventually("3 followers in the projection", async () => {
    const [row] = await h.query<{ followers: string }>("select followers from feed.follower_counts where user_id = $1", [big.userId]);
    return Number(row?.followers) === 3;
  }, CONSUMER_WAIT_MS);
  await h.client.getHomeFeed({}, big.call);

  const bigPost = (await h.post.client.createPost({ text: "to my many fans" }, big.call)).post!;
  const smallPost = (await h.post.client.createPost({ text: "to my one fan" }, small.call)).post!;
  await eventually("the small author's post fanned out", async () => (await h.timeline(fans[0]!.userId))?.includes(smallPost.postId) ?? false, CONSUMER_WAIT_MS);
  await eventually("the big author's post in the projection", async () => (await h.query("select 1 from feed.posts where post_id = $1 and not fanned_out", [bigPost.postId])).length === 1, CONSUMER_WAIT_MS);

  for (const fan of fans) t.false((await h.timeline(fan.userId))?.includes(bigPost.postId), "not written to a follower's timeline");
  t.true((await h.timeline(big.userId))?.includes(bigPost.postId), "but to the author's own");
  const feed = await h.client.getHomeFeed({}, fans[0]!.call);
  t.deepEqual(feed.items.map((i) => i.post!.postId), [smallPost.postId, bigPost.postId], "merged at read time, newest first");
  t.is(feed.items[1]?.author?.userId, big.userId);
  for (const fan of fans.slice(1)) t.deepEqual((await h.client.getHomeFeed({}, fan.call)).items.map((i) => i.post!.postId), [bigPost.postId]);

  // Paging across both sources: page size 1.
  const first = await h.client.getHomeFeed({ pageSize: 1 }, fans[0]!.call);
  const second = await h.client.getHomeFeed({ pageSize: 1, pageToken: first.nextPageToken }, fans[0]!.call);
  t.deepEqual([...first.items, ...second.items].map((i) => i.post!.postId), [smallPost.postId, bigPost.postId]);
  t.is(second.nextPageToken, "");

  await h.post.client.deletePost({ postId: bigPost.postId }, big.call);
  await eventually("the big author's deleted post leaves the merge", async () => (await h.client.getHomeFeed({}, fans[1]!.call)).items.length === 0, CONSUMER_WAIT_MS);
  t.pass();
});

test("a process that remembered a reader follows no merged author learns of a follow and of an author crossing the threshold", async (t) => {
  // An api-role process: it applies no events, so only the consumer's notifications can tell it (read/merged-authors.ts).
  const api = await startFeedService(feedConfigFromEnv({ ...h.env, FEED_ROLE: "api", FEED_VIEW_CACHE_SECONDS: "0" }));
  t.teardown(() => api.close());
  const feed = createClient(FeedService, createGrpcTransport({ baseUrl: api.url }));
  const ids = async (reader: Account) => (await feed.getHomeFeed({}, reader.call)).items.map((i) => i.post!.postId);
  // Shorter than the answer's age limit: what the test sees comes from a notification, not from expiry.
  const notified = MAX_AGE_MS / 2;
  const followers = async (userId: string, n: number) =>
    eventually(`${n} followers in the projection`, async () => Number((await h.query<{ followers: string }>("select followers from feed.follower_counts where user_id = $1", [userId]))[0]?.followers) === n, CONSUMER_WAIT_MS);

  // 1. A follow: the reader follows nobody merged, then follows an author whose post is merged.
  const big = await h.signUp();
  for (let i = 0; i < 3; i++) await h.post.user.client.follow({ userId: big.userId }, (await h.signUp()).call);
  await followers(big.userId, 3);
  const bigPost = (await h.post.client.createPost({ text: "merged for everyone" }, big.call)).post!;
  await eventually("the big author's post in the projection", async () => (await h.query("select 1 from feed.posts where post_id = $1 and not fanned_out", [bigPost.postId])).length === 1, CONSUMER_WAIT_MS);
  const reader = await h.signUp();
  t.deepEqual(await ids(reader), [], "remembered: follows no merged author");
  await h.post.user.client.follow({ userId: big.userId }, reader.call);
  await eventually("the merged post in the api process's feed after the follow", async () => (await ids(reader)).includes(bigPost.postId), notified, 50);

  // 2. Crossing the threshold: the reader follows a small author (fanned out), who then gains followers.
  const rising = await h.signUp();
  const other = await h.signUp();
  await h.post.user.client.follow({ userId: rising.userId }, other.call);
  await followers(rising.userId, 1);
  t.false((await ids(other)).length > 0, "remembered: follows no merged author");
  for (let i = 0; i < 2; i++) await h.post.user.client.follow({ userId: rising.userId }, (await h.signUp()).call);
  await followers(rising.userId, 3);
  const risingPost = (await h.post.client.createPost({ text: "my first post above the threshold" }, rising.call)).post!;
  await eventually("the rising author's post in the projection, not fanned out", async () => (await h.query("select 1 from feed.posts where post_id = $1 and not fanned_out", [risingPost.postId])).length === 1, CONSUMER_WAIT_MS);
  t.false((await h.timeline(other.userId))?.includes(risingPost.postId) ?? false, "not in the follower's timeline: only the merge can show it");
  await eventually("the rising author's post in the api process's feed", async () => (await ids(other)).includes(risingPost.postId), notified, 50);
});
