// The home feed end to end: real auth, user, media and post services publish
// to the real Kafka; the feed service consumes, fans out into Redis and
// answers GetHomeFeed hydrated from the post and user services. Each test
// signs up its own users, so tests run concurrently.
import test from "ava";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { FeedService } from "@aviary/gen/aviary/feed/v1/feed_pb";
import { BadRequestSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { eventually } from "../../runtime/test-support/infra.ts";
import { feedConfigFromEnv, startFeedService } from "../src/index.ts";
import { rejection, startTestFeed, type Account, type TestFeed, CONSUMER_WAIT_MS } from "./harness.ts";

let h: TestFeed;
test.before(async () => {
  h = await startTestFeed();
});
test.after.always(async () => {
  await h?.close();
});

/** Every post id of an account's home feed, paging through with `pageSize`. */
async function feedIds(account: Account, pageSize = 50): Promise<string[]> {
  const ids: string[] = [];
  let pageToken = "";
  for (let pages = 0; pages < 100; pages++) {
    const page = await h.client.getHomeFeed({ pageSize, pageToken }, account.call);
    ids.push(...page.items.map((item) => item.post!.postId));
    if (!page.nextPageToken) return ids;
    pageToken = page.nextPageToken;
  }
  throw new Error("more than 100 pages");
}

async function signUpWithTimeline(): Promise<Account> {
  const account = await h.signUp();
  // The first read builds the (empty) timeline; fan-out only writes timelines that exist.
  await h.client.getHomeFeed({}, account.call);
  return account;
}

const post = async (author: Account, text: string) => (await h.post.client.createPost({ text }, author.call)).post!;
const followeeCount = async (followerId: string) =>
  Number((await h.query<{ n: string }>("select count(*) as n from feed.follows where follower_id = $1", [followerId]))[0]?.n);

test("a followed account's post reaches the follower's feed hydrated with its author; own posts are in one's own feed", async (t) => {
  const [ada, bob] = await Promise.all([signUpWithTimeline(), signUpWithTimeline()]);
  await h.post.user.client.updateProfile({ displayName: "Bob B" }, bob.call);
  await h.post.user.client.follow({ userId: bob.userId }, ada.call);
  const created = await post(bob, "hello followers");

  await eventually("bob's post in ada's timeline", async () => (await h.timeline(ada.userId))?.includes(created.postId) ?? false, CONSUMER_WAIT_MS);
  const { items, nextPageToken } = await h.client.getHomeFeed({}, ada.call);
  t.is(items.length, 1);
  t.is(items[0]?.post?.postId, created.postId);
  t.is(items[0]?.post?.text, "hello followers");
  t.is(items[0]?.author?.userId, bob.userId);
  t.is(items[0]?.author?.displayName, "Bob B");
  t.is(nextPageToken, "");

  await eventually("bob's own timeline", async () => (await h.timeline(bob.userId))?.includes(created.postId) ?? false, CONSUMER_WAIT_MS);
  t.deepEqual(await feedIds(bob), [created.postId]);
});

test("a deleted post leaves the author's and the followers' feeds", async (t) => {
  const [ada, bob] = await Promise.all([signUpWithTimeline(), signUpWithTimeline()]);
  await h.post.user.client.follow({ userId: bob.userId }, ada.call);
  const kept = await post(bob, "kept");
  const gone = await post(bob, "gone");
  await eventually("both in ada's timeline", async () => (await h.timeline(ada.userId))?.length === 2, CONSUMER_WAIT_MS);
  t.deepEqual(await feedIds(ada), [gone.postId, kept.postId]);

  await h.post.client.deletePost({ postId: gone.postId }, bob.call);
  await eventually("the deleted post out of both timelines", async () => {
    const [a, b] = await Promise.all([h.timeline(ada.userId), h.timeline(bob.userId)]);
    return !a?.includes(gone.postId) && !b?.includes(gone.postId);
  }, CONSUMER_WAIT_MS);
  t.deepEqual(await feedIds(ada), [kept.postId]);
  t.deepEqual(await feedIds(bob), [kept.postId]);
  const [row] = await h.query<{ deleted: boolean }>("select deleted_at is not null as deleted from feed.posts where post_id = $1", [gone.postId]);
  t.true(row?.deleted, "the projection keeps a tombstone");
});

test("following back-fills the followee's recent posts; unfollowing takes them out again", async (t) => {
  const [ada, bob, cat] = await Promise.all([signUpWithTimeline(), h.signUp(), h.signUp()]);
  const older = await post(bob, "older");
  const newer = await post(bob, "newer");
  const catPost = await post(cat, "cat");
  await eventually("bob's posts in the projection", async () => (await h.query("select 1 from feed.posts where author_id = $1", [bob.userId])).length === 2, CONSUMER_WAIT_MS);

  await h.post.user.client.follow({ userId: bob.userId }, ada.call);
  await h.post.user.client.follow({ userId: cat.userId }, ada.call);
  await eventually("back-filled", async () => (await h.timeline(ada.userId))?.length === 3, CONSUMER_WAIT_MS);
  t.deepEqual(await feedIds(ada), [catPost.postId, newer.postId, older.postId]);

  await h.post.user.client.unfollow({ userId: bob.userId }, ada.call);
  await eventually("bob's posts removed", async () => (await h.timeline(ada.userId))?.length === 1, CONSUMER_WAIT_MS);
  t.deepEqual(await h.timeline(ada.userId), [catPost.postId]);
  t.deepEqual(await feedIds(ada), [catPost.postId]);
});

test("a block takes each side's posts out of the other's feed, and later posts never arrive", async (t) => {
  const [ada, bob] = await Promise.all([signUpWithTimeline(), signUpWithTimeline()]);
  await h.post.user.client.follow({ userId: bob.userId }, ada.call);
  await h.post.user.client.follow({ userId: ada.userId }, bob.call);
  const [fromAda, fromBob] = [await post(ada, "ada before"), await post(bob, "bob before")];
  await eventually("both timelines hold both posts", async () => (await h.timeline(ada.userId))?.length === 2 && (await h.timeline(bob.userId))?.length === 2, CONSUMER_WAIT_MS);

  await h.post.user.client.block({ userId: bob.userId }, ada.call);
  await eventually("each side's posts out of the other's timeline", async () => {
    const [a, b] = await Promise.all([h.timeline(ada.userId), h.timeline(bob.userId)]);
    return a?.join() === fromAda.postId && b?.join() === fromBob.postId;
  }, CONSUMER_WAIT_MS);
  t.deepEqual(await feedIds(ada), [fromAda.postId]);
  t.deepEqual(await feedIds(bob), [fromBob.postId]);

  const later = await post(bob, "bob after");
  await eventually("bob's own timeline has the later post (the event was applied)", async () => (await h.timeline(bob.userId))?.includes(later.postId) ?? false, CONSUMER_WAIT_MS);
  t.false((await h.timeline(ada.userId))?.includes(later.postId));
  t.deepEqual(await feedIds(ada), [fromAda.postId]);
  t.is(await followeeCount(ada.userId), 0);
  t.is(await followeeCount(bob.userId), 0);
});

test("pages cover the feed newest first without gaps or repeats; a tampered token or a bad size is INVALID_ARGUMENT", async (t) => {
  const [ada, bob, cat] = await Promise.all([signUpWithTimeline(), h.signUp(), h.signUp()]);
  await h.post.user.client.follow({ userId: bob.userId }, ada.call);
  await h.post.user.client.follow({ userId: cat.userId }, ada.call);
  const created: string[] = [];
  for (let i = 0; i < 7; i++) created.push((await post(i % 2 === 0 ? bob : cat, `post ${i}`)).postId);
  created.push((await post(ada, "own")).postId);
  await eventually("all 8 in ada's timeline", async () => (await h.timeline(ada.userId))?.length === 8, CONSUMER_WAIT_MS);

  const first = await h.client.getHomeFeed({ pageSize: 3 }, ada.call);
  t.is(first.items.length, 3);
  t.truthy(first.nextPageToken);
  const all = await feedIds(ada, 3);
  t.deepEqual(all, [...created].reverse(), "newest first, every post once");
  t.deepEqual(all.slice(0, 3), first.items.map((i) => i.post!.postId));

  const [body, mac] = first.nextPageToken.split(".") as [string, string];
  const forged = Buffer.from(JSON.stringify({ s: 1, p: created[0] })).toString("base64url");
  for (const pageToken of [`${forged}.${mac}`, `${body}.${mac.slice(0, -2)}AA`, "garbage"]) {
    const error = await rejection(h.client.getHomeFeed({ pageToken }, ada.call));
    t.is(error.code, Code.InvalidArgument);
    t.deepEqual(error.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field), ["page_token"]);
  }
  const tooBig = await rejection(h.client.getHomeFeed({ pageSize: 51 }, ada.call));
  t.is(tooBig.code, Code.InvalidArgument);
  t.deepEqual(tooBig.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field), ["page_size"]);
});

test("a page dropping unreadable items is refilled from further down the timeline", async (t) => {
  const [ada, bob] = await Promise.all([signUpWithTimeline(), h.signUp()]);
  await h.post.user.client.follow({ userId: bob.userId }, ada.call);
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) ids.push((await post(bob, `p${i}`)).postId);
  await eventually("all 6 in ada's timeline", async () => (await h.timeline(ada.userId))?.length === 6, CONSUMER_WAIT_MS);
  // Deleted behind the feed's back: the timeline still lists them, the post service no longer returns them.
  await h.post.query("update posts.posts set deleted_at = now() where id = any($1::uuid[])", [[ids[5], ids[4], ids[3]]]);
  const page = await h.client.getHomeFeed({ pageSize: 2 }, ada.call);
  t.deepEqual(page.items.map((i) => i.post!.postId), [ids[2], ids[1]], "a full page from further down");
  t.deepEqual(await feedIds(ada, 2), [ids[2], ids[1], ids[0]]);
});

test("without a token the feed is UNAUTHENTICATED", async (t) => {
  t.is((await rejection(h.client.getHomeFeed({}))).code, Code.Unauthenticated);
});

test("a dependency that is down fails the read with UNAVAILABLE, not an empty page", async (t) => {
  const [ada] = await Promise.all([signUpWithTimeline()]);
  await post(ada, "mine");
  await eventually("ada's own post in her timeline", async () => (await h.timeline(ada.userId))?.length === 1, CONSUMER_WAIT_MS);
  // No view cache: this is about a page that must be hydrated.
  const orphan = await startFeedService(feedConfigFromEnv({ ...h.env, FEED_ROLE: "api", POST_URL: "http://127.0.0.1:9", FEED_VIEW_CACHE_SECONDS: "0" }));
  t.teardown(() => orphan.close());
  const client = createClient(FeedService, createGrpcTransport({ baseUrl: orphan.url }));
  t.is((await rejection(client.getHomeFeed({}, ada.call))).code, Code.Unavailable);
});

test("an unchanged page is served from the view cache; a new post or a deletion changes the page at once", async (t) => {
  const [ada, bob] = await Promise.all([signUpWithTimeline(), h.signUp()]);
  await h.post.user.client.follow({ userId: bob.userId }, ada.call);
  const first = await post(bob, "first");
  await eventually("the first post in ada's timeline", async () => (await h.timeline(ada.userId))?.includes(first.postId) ?? false, CONSUMER_WAIT_MS);
  t.deepEqual((await h.client.getHomeFeed({}, ada.call)).items.map((i) => i.post!.postId), [first.postId]);

  // A second API instance on the same cache whose post service is gone: it
  // can only answer pages it finds in the cache.
  const cachedOnly = await startFeedService(feedConfigFromEnv({ ...h.env, FEED_ROLE: "api", POST_URL: "http://127.0.0.1:9" }));
  t.teardown(() => cachedOnly.close());
  const viaCache = createClient(FeedService, createGrpcTransport({ baseUrl: cachedOnly.url }));
  const hit = await viaCache.getHomeFeed({}, ada.call);
  t.deepEqual(hit.items.map((i) => [i.post!.postId, i.post!.text, i.author!.userId]), [[first.postId, "first", bob.userId]], "hydrated from the cache");

  // A new post changes the skeleton, so the key: a miss, which needs the post service.
  const second = await post(bob, "second");
  await eventually("the second post in ada's timeline", async () => (await h.timeline(ada.userId))?.includes(second.postId) ?? false, CONSUMER_WAIT_MS);
  t.is((await rejection(viaCache.getHomeFeed({}, ada.call))).code, Code.Unavailable, "not a stale page");
  t.deepEqual((await h.client.getHomeFeed({}, ada.call)).items.map((i) => i.post!.postId), [second.postId, first.postId]);

  // A deletion leaves the timeline, so the next read is a new page, not the cached one.
  await h.post.client.deletePost({ postId: second.postId }, bob.call);
  await eventually("the deleted post out of ada's timeline", async () => !((await h.timeline(ada.userId))?.includes(second.postId) ?? true), CONSUMER_WAIT_MS);
  t.deepEqual((await h.client.getHomeFeed({}, ada.call)).items.map((i) => i.post!.postId), [first.postId]);
});

test("on the grpc-js listener a cached page is answered byte for byte again, and a changed page never with the old bytes", async (t) => {
  const [ada, bob] = await Promise.all([signUpWithTimeline(), h.signUp()]);
  await h.post.user.client.follow({ userId: bob.userId }, ada.call);
  const posted = [];
  for (const text of ["one", "two", "three"]) posted.push(await post(bob, text));
  await eventually("the posts in ada's timeline", async () => (await h.timeline(ada.userId))?.length === 3, CONSUMER_WAIT_MS);
  t.truthy(h.service.grpcJsUrl, "the feed serves a grpc-js listener");
  const internal = createClient(FeedService, createGrpcTransport({ baseUrl: h.service.grpcJsUrl! }));
  const first = await internal.getHomeFeed({ pageSize: 2 }, ada.call);
  const again = await internal.getHomeFeed({ pageSize: 2 }, ada.call);
  t.deepEqual(again, first, "the cached page, page token included");
  t.deepEqual(first.items.map((i) => i.post!.postId), [posted[2]!.postId, posted[1]!.postId]);
  const rest = await internal.getHomeFeed({ pageSize: 2, pageToken: first.nextPageToken }, ada.call);
  t.deepEqual(rest.items.map((i) => i.post!.postId), [posted[0]!.postId], "the cached page's token works");
  const fourth = await post(bob, "four");
  await eventually("the fourth post in ada's timeline", async () => (await h.timeline(ada.userId))?.includes(fourth.postId) ?? false, CONSUMER_WAIT_MS);
  t.deepEqual((await internal.getHomeFeed({ pageSize: 2 }, ada.call)).items.map((i) => i.post!.postId), [fourth.postId, posted[2]!.postId]);
});

test("FEED_VIEW_CACHE_SECONDS=0 turns the view cache off: every read hydrates", async (t) => {
  const [ada] = await Promise.all([signUpWithTimeline()]);
  const mine = await post(ada, "mine");
  await eventually("ada's post in her timeline", async () => (await h.timeline(ada.userId))?.includes(mine.postId) ?? false, CONSUMER_WAIT_MS);
  await h.client.getHomeFeed({}, ada.call); // cached by the main instance
  const uncached = await startFeedService(feedConfigFromEnv({ ...h.env, FEED_ROLE: "api", POST_URL: "http://127.0.0.1:9", FEED_VIEW_CACHE_SECONDS: "0" }));
  t.teardown(() => uncached.close());
  const client = createClient(FeedService, createGrpcTransport({ baseUrl: uncached.url }));
  t.is((await rejection(client.getHomeFeed({}, ada.call))).code, Code.Unavailable);
});
