// Posts against the real post, user, media and auth services: creation with
// media and replies, reads for a viewer (blocks, tombstones), deletion and
// the author's list. Each test signs up its own users, so tests run concurrently.
import test from "ava";
import { Code } from "@connectrpc/connect";
import { MediaPurpose } from "@aviary/gen/aviary/media/v1/media_pb";
import { rejection, startTestPost, violatedFields, type Account, type TestPost } from "./harness.ts";

let h: TestPost;
test.before(async () => {
  h = await startTestPost();
});
test.after.always(async () => {
  await h?.close();
});

const unknownId = "5f0e7c1a-9b2d-4e8f-a6c3-1d2e3f4a5b6c";

async function postCount(author: Account): Promise<number> {
  const [row] = await h.query<{ n: string }>("select count(*) as n from posts.posts where author_id = $1", [author.userId]);
  return Number(row?.n);
}

test("create with text and media: parsed mentions and hashtags, media hydrated in order, readable by others", async (t) => {
  const [ada, bob] = await Promise.all([h.signUp(), h.signUp()]);
  const [m1, m2] = await Promise.all([h.uploadMedia(ada), h.uploadMedia(ada)]);
  const { post } = await h.client.createPost({ text: "  Hello @Bob_1 and @bob_1 #Aviary #launch #aviary 🐦  ", mediaIds: [m2, m1] }, ada.call);
  t.truthy(post?.postId);
  t.is(post?.authorId, ada.userId);
  t.is(post?.text, "Hello @Bob_1 and @bob_1 #Aviary #launch #aviary 🐦", "trimmed");
  t.deepEqual(post?.mentions, ["bob_1"]);
  t.deepEqual(post?.hashtags, ["aviary", "launch"]);
  t.deepEqual(post?.media.map((m) => m.mediaId), [m2, m1], "the order given");
  t.true(post?.media.every((m) => m.url !== "" && m.ownerId === ada.userId));
  t.is(post?.likeCount, 0n);
  t.is(post?.replyToPostId, "");

  const seen = await h.client.getPost({ postId: post!.postId }, bob.call);
  t.is(seen.post?.text, post?.text);
  t.deepEqual(seen.post?.media.map((m) => m.mediaId), [m2, m1]);
  const [stored] = await h.query<{ media_ids: string[]; mentions: string[] }>("select media_ids, mentions from posts.posts where id = $1", [post!.postId]);
  t.deepEqual(stored, { media_ids: [m2, m1], mentions: ["bob_1"] });
});

test("media-only posts and replies", async (t) => {
  const [ada, bob] = await Promise.all([h.signUp(), h.signUp()]);
  const media = await h.uploadMedia(ada);
  const { post: parent } = await h.client.createPost({ mediaIds: [media] }, ada.call);
  t.is(parent?.text, "");
  const { post: reply } = await h.client.createPost({ text: "nice", replyToPostId: parent!.postId.toUpperCase() }, bob.call);
  t.is(reply?.replyToPostId, parent?.postId);
});

test("bad posts are INVALID_ARGUMENT on the field at fault, and nothing is written", async (t) => {
  const [ada, bob, carol] = await Promise.all([h.signUp(), h.signUp(), h.signUp()]);
  const [own, bobs, avatar] = await Promise.all([h.uploadMedia(ada), h.uploadMedia(bob), h.uploadMedia(ada, MediaPurpose.AVATAR)]);
  // An upload that was never confirmed.
  const pending = (await h.media.client.createUpload({ contentType: "image/png", sizeBytes: 256n, purpose: MediaPurpose.POST }, ada.call)).mediaId;
  const { post: deleted } = await h.client.createPost({ text: "soon gone" }, bob.call);
  await h.client.deletePost({ postId: deleted!.postId }, bob.call);
  const { post: carols } = await h.client.createPost({ text: "carol blocks ada" }, carol.call);
  await h.user.client.block({ userId: ada.userId }, carol.call);

  const cases: Array<[string, Parameters<typeof h.client.createPost>[0], string]> = [
    ["empty", { text: "" }, "text"],
    ["blank", { text: " \n\t " }, "text"],
    ["too long (code points)", { text: "🐦".repeat(501) }, "text"],
    ["repeated media", { text: "x", mediaIds: [own, own] }, "media_ids"],
    ["someone else's media", { text: "x", mediaIds: [bobs] }, "media_ids"],
    ["avatar media", { text: "x", mediaIds: [avatar] }, "media_ids"],
    ["unconfirmed media", { text: "x", mediaIds: [pending] }, "media_ids"],
    ["unknown media", { text: "x", mediaIds: [unknownId] }, "media_ids"],
    ["five media", { text: "x", mediaIds: [own, bobs, avatar, pending, unknownId] }, "media_ids"],
    ["reply to unknown", { text: "x", replyToPostId: unknownId }, "reply_to_post_id"],
    ["reply to deleted", { text: "x", replyToPostId: deleted!.postId }, "reply_to_post_id"],
    ["reply to a blocker's post", { text: "x", replyToPostId: carols!.postId }, "reply_to_post_id"],
  ];
  for (const [name, request, field] of cases) {
    const error = await rejection(h.client.createPost(request, ada.call));
    t.is(error.code, Code.InvalidArgument, name);
    t.true(violatedFields(error).includes(field), `${name}: ${violatedFields(error).join(",")}`);
  }
  t.is(await postCount(ada), 0, "nothing written (and so no PostCreated in the outbox, which is keyed by the post)");
  // A valid media list still works for the same author.
  await t.notThrowsAsync(h.client.createPost({ text: "x", mediaIds: [own] }, ada.call));
});

test("batch: visible posts by id; deleted, unknown and blockers' posts absent; liked_by_viewer and counts", async (t) => {
  const [viewer, friend, blocker] = await Promise.all([h.signUp(), h.signUp(), h.signUp()]);
  const media = await h.uploadMedia(friend);
  const mine = (await h.client.createPost({ text: "mine" }, viewer.call)).post!;
  const friends = (await h.client.createPost({ text: "friend's", mediaIds: [media] }, friend.call)).post!;
  const gone = (await h.client.createPost({ text: "gone" }, friend.call)).post!;
  const hidden = (await h.client.createPost({ text: "hidden" }, blocker.call)).post!;
  await h.client.deletePost({ postId: gone.postId }, friend.call);
  await h.user.client.block({ userId: viewer.userId }, blocker.call);
  await h.client.likePost({ postId: friends.postId }, viewer.call);

  const { posts } = await h.client.batchGetPosts({ postIds: [mine.postId, friends.postId, gone.postId, hidden.postId, unknownId, friends.postId] }, viewer.call);
  t.deepEqual(Object.keys(posts).sort(), [mine.postId, friends.postId].sort());
  t.is(posts[friends.postId]?.likedByViewer, true);
  t.is(posts[friends.postId]?.likeCount, 1n);
  t.deepEqual(posts[friends.postId]?.media.map((m) => m.mediaId), [media]);
  t.is(posts[mine.postId]?.likedByViewer, false);

  // The blocker's post is there for someone else.
  const { posts: forFriend } = await h.client.batchGetPosts({ postIds: [hidden.postId] }, friend.call);
  t.deepEqual(Object.keys(forFriend), [hidden.postId]);
  t.is(forFriend[hidden.postId]?.likedByViewer, false, "liked_by_viewer is per viewer");
});

test("a blocked viewer gets NOT_FOUND for get, like, comment and list; the author still sees everything", async (t) => {
  const [author, blocked] = await Promise.all([h.signUp(), h.signUp()]);
  const post = (await h.client.createPost({ text: "not for you" }, author.call)).post!;
  await h.user.client.block({ userId: blocked.userId }, author.call);
  const calls = {
    get: h.client.getPost({ postId: post.postId }, blocked.call),
    like: h.client.likePost({ postId: post.postId }, blocked.call),
    unlike: h.client.unlikePost({ postId: post.postId }, blocked.call),
    comment: h.client.createComment({ postId: post.postId, text: "hi" }, blocked.call),
    comments: h.client.listComments({ postId: post.postId }, blocked.call),
    byAuthor: h.client.listPostsByAuthor({ authorId: author.userId }, blocked.call),
  };
  for (const [name, call] of Object.entries(calls)) t.is((await rejection(call)).code, Code.NotFound, name);
  const [row] = await h.query<{ like_count: string; comment_count: string }>("select like_count, comment_count from posts.posts where id = $1", [post.postId]);
  t.deepEqual(row, { like_count: "0", comment_count: "0" });
  t.is((await h.client.getPost({ postId: post.postId }, author.call)).post?.text, "not for you");
  // The blocked user may still see (and block back) nothing else changed: their own posts stay theirs.
  const own = (await h.client.createPost({ text: "mine" }, blocked.call)).post!;
  t.is((await h.client.getPost({ postId: own.postId }, blocked.call)).post?.authorId, blocked.userId);
});

test("delete: author only, a tombstone, idempotent; the post is gone for every read", async (t) => {
  const [author, other] = await Promise.all([h.signUp(), h.signUp()]);
  const post = (await h.client.createPost({ text: "to delete" }, author.call)).post!;
  t.is((await rejection(h.client.deletePost({ postId: post.postId }, other.call))).code, Code.PermissionDenied);
  t.is((await rejection(h.client.deletePost({ postId: unknownId }, author.call))).code, Code.NotFound);
  t.is((await h.client.getPost({ postId: post.postId }, other.call)).post?.postId, post.postId, "still there after the refusals");

  await h.client.deletePost({ postId: post.postId }, author.call);
  await h.client.deletePost({ postId: post.postId }, author.call);
  const [row] = await h.query<{ deleted: boolean }>("select deleted_at is not null as deleted from posts.posts where id = $1", [post.postId]);
  t.true(row?.deleted, "a tombstone stays");
  const [events] = await h.query<{ n: string }>("select count(*) as n from posts.outbox_events where key = $1 and type = 'aviary.events.v1.PostDeleted'", [post.postId]);
  t.is(events?.n, "1", "deleting twice is one PostDeleted");

  for (const viewer of [author, other]) {
    t.is((await rejection(h.client.getPost({ postId: post.postId }, viewer.call))).code, Code.NotFound);
    t.is((await rejection(h.client.likePost({ postId: post.postId }, viewer.call))).code, Code.NotFound);
    t.is((await rejection(h.client.createComment({ postId: post.postId, text: "late" }, viewer.call))).code, Code.NotFound);
  }
  t.is((await rejection(h.client.deletePost({ postId: post.postId }, other.call))).code, Code.NotFound, "someone else's tombstone is not found");
});

test("list by author: newest first in keyset pages, without deleted posts", async (t) => {
  const [author, reader] = await Promise.all([h.signUp(), h.signUp()]);
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push((await h.client.createPost({ text: `post ${i}` }, author.call)).post!.postId);
  await h.client.deletePost({ postId: ids[2]! }, author.call);
  const expected = [ids[4], ids[3], ids[1], ids[0]];

  const seen: string[] = [];
  let pageToken = "";
  let pages = 0;
  do {
    const page = await h.client.listPostsByAuthor({ authorId: author.userId, pageSize: 3, pageToken }, reader.call);
    seen.push(...page.posts.map((p) => p.postId));
    pageToken = page.nextPageToken;
    pages++;
  } while (pageToken !== "" && pages < 10);
  t.deepEqual(seen, expected);
  t.is(pages, 2);
  const all = await h.client.listPostsByAuthor({ authorId: author.userId }, reader.call);
  t.deepEqual(all.posts.map((p) => p.postId), expected, "page_size 0 is the default (20)");
  t.is(all.nextPageToken, "");

  t.deepEqual((await h.client.listPostsByAuthor({ authorId: reader.userId }, reader.call)).posts, [], "no posts yet: an empty page for oneself");
  t.is((await rejection(h.client.listPostsByAuthor({ authorId: unknownId }, reader.call))).code, Code.NotFound, "an unknown author");
  t.is((await rejection(h.client.listPostsByAuthor({ authorId: author.userId, pageSize: 101 }, reader.call))).code, Code.InvalidArgument);
});

test("page tokens: tampered, another author's, or another method's are INVALID_ARGUMENT on page_token", async (t) => {
  const [author, other] = await Promise.all([h.signUp(), h.signUp()]);
  for (let i = 0; i < 2; i++) await h.client.createPost({ text: `p${i}` }, author.call);
  const post = (await h.client.createPost({ text: "commented" }, other.call)).post!;
  await h.client.createComment({ postId: post.postId, text: "one" }, other.call);
  await h.client.createComment({ postId: post.postId, text: "two" }, other.call);
  await h.client.createPost({ text: "p" }, other.call);
  await h.client.createPost({ text: "q" }, other.call);

  const { nextPageToken: postsToken } = await h.client.listPostsByAuthor({ authorId: author.userId, pageSize: 1 }, author.call);
  const { nextPageToken: commentsToken } = await h.client.listComments({ postId: post.postId, pageSize: 1 }, author.call);
  t.not(postsToken, "");
  t.not(commentsToken, "");
  const [body, mac] = postsToken.split(".") as [string, string];
  const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body, "base64url").toString()), id: unknownId })).toString("base64url");

  const bad = {
    tampered: h.client.listPostsByAuthor({ authorId: author.userId, pageToken: `${forged}.${mac}` }, author.call),
    garbage: h.client.listPostsByAuthor({ authorId: author.userId, pageToken: "not-a-token" }, author.call),
    otherAuthor: h.client.listPostsByAuthor({ authorId: other.userId, pageToken: postsToken }, author.call),
    wrongMethod: h.client.listPostsByAuthor({ authorId: author.userId, pageToken: commentsToken }, author.call),
    wrongMethodBack: h.client.listComments({ postId: post.postId, pageToken: postsToken }, author.call),
  };
  for (const [name, call] of Object.entries(bad)) {
    const error = await rejection(call);
    t.is(error.code, Code.InvalidArgument, name);
    t.deepEqual(violatedFields(error), ["page_token"], name);
  }
  const next = await h.client.listPostsByAuthor({ authorId: author.userId, pageSize: 1, pageToken: postsToken }, author.call);
  t.is(next.posts.length, 1, "the genuine token still works");
});
