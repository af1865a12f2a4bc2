// With the user and media services unreachable, whatever needs them fails
// with UNAVAILABLE (never a silently partial answer) and writes nothing;
// what needs neither (one's own text posts) keeps working.
import test from "ava";
import { Code } from "@connectrpc/connect";
import { startUnavailablePeer, type UnavailablePeer } from "../../runtime/test-support/unavailable-peer.ts";
import { rejection, startTestPost, type TestPost } from "./harness.ts";

let h: TestPost;
let downUser: UnavailablePeer;
let downMedia: UnavailablePeer;
test.before(async () => {
  // The real user and media services run (sign-up and uploads need them),
  // but the post service is pointed at two peers that answer UNAVAILABLE.
  [downUser, downMedia] = await Promise.all([startUnavailablePeer(), startUnavailablePeer()]);
  h = await startTestPost({ USER_URL: downUser.url, MEDIA_URL: downMedia.url });
});
test.after.always(async () => {
  await h?.close();
  await Promise.all([downUser?.close(), downMedia?.close()]);
});

test("reads and writes that need the user or media service are UNAVAILABLE and write nothing", async (t) => {
  const [author, reader] = await Promise.all([h.signUp(), h.signUp()]);
  const media = await h.uploadMedia(reader);
  const post = (await h.client.createPost({ text: "text only needs nobody" }, author.call)).post!;
  t.is((await h.client.getPost({ postId: post.postId }, author.call)).post?.postId, post.postId, "one's own post needs no visibility answer");

  const calls = {
    get: h.client.getPost({ postId: post.postId }, reader.call),
    batch: h.client.batchGetPosts({ postIds: [post.postId] }, reader.call),
    byAuthor: h.client.listPostsByAuthor({ authorId: author.userId }, reader.call),
    like: h.client.likePost({ postId: post.postId }, reader.call),
    comment: h.client.createComment({ postId: post.postId, text: "hi" }, reader.call),
    reply: h.client.createPost({ text: "a reply", replyToPostId: post.postId }, reader.call),
    withMedia: h.client.createPost({ text: "with media", mediaIds: [media] }, reader.call),
  };
  for (const [name, call] of Object.entries(calls)) {
    const error = await rejection(call);
    t.is(error.code, Code.Unavailable, name);
    t.regex(error.rawMessage, /the (user|media) service is unavailable/, name);
  }
  t.true(downUser.calls() > 0 && downMedia.calls() > 0, "both peers were asked (and refused)");
  const [row] = await h.query<{ posts: string; likes: string; comments: string }>(
    `select (select count(*) from posts.posts) as posts, (select count(*) from posts.likes) as likes, (select count(*) from posts.comments) as comments`,
  );
  t.deepEqual(row, { posts: "1", likes: "0", comments: "0" });
});
