// Likes and comments: idempotency, exact counts (kept in the transaction that
// writes the like or comment row), authorization and comment pages.
import test from "ava";
import { Code } from "@connectrpc/connect";
import { rejection, startTestPost, violatedFields, type Account, type TestPost } from "./harness.ts";

let h: TestPost;
test.before(async () => {
  h = await startTestPost();
});
test.after.always(async () => {
  await h?.close();
});

async function counts(postId: string): Promise<{ likes: number; likeRows: number; comments: number; commentRows: number }> {
  const [row] = await h.query<{ likes: string; like_rows: string; comments: string; comment_rows: string }>(
    `select like_count as likes, comment_count as comments,
            (select count(*) from posts.likes where post_id = $1) as like_rows,
            (select count(*) from posts.comments where post_id = $1) as comment_rows
       from posts.posts where id = $1`,
    [postId],
  );
  return { likes: Number(row?.likes), likeRows: Number(row?.like_rows), comments: Number(row?.comments), commentRows: Number(row?.comment_rows) };
}

async function newPost(author: Account, text = "a post"): Promise<string> {
  return (await h.client.createPost({ text }, author.call)).post!.postId;
}

test("like twice is one like; unlike twice is none; unliking a post never liked changes nothing", async (t) => {
  const [author, fan, other] = await Promise.all([h.signUp(), h.signUp(), h.signUp()]);
  const postId = await newPost(author);
  t.is((await h.client.likePost({ postId }, fan.call)).likeCount, 1n);
  t.is((await h.client.likePost({ postId }, fan.call)).likeCount, 1n);
  t.is((await h.client.getPost({ postId }, fan.call)).post?.likedByViewer, true);
  t.is((await h.client.getPost({ postId }, other.call)).post?.likedByViewer, false);
  t.is((await h.client.unlikePost({ postId }, other.call)).likeCount, 1n, "other never liked it");
  t.deepEqual(await counts(postId), { likes: 1, likeRows: 1, comments: 0, commentRows: 0 });

  t.is((await h.client.unlikePost({ postId }, fan.call)).likeCount, 0n);
  t.is((await h.client.unlikePost({ postId }, fan.call)).likeCount, 0n);
  t.is((await h.client.getPost({ postId }, fan.call)).post?.likedByViewer, false);
  t.deepEqual(await counts(postId), { likes: 0, likeRows: 0, comments: 0, commentRows: 0 });
  t.is((await rejection(h.client.likePost({ postId: "5f0e7c1a-9b2d-4e8f-a6c3-1d2e3f4a5b6c" }, fan.call))).code, Code.NotFound);
});

test("concurrent likes from many users, some twice, end at an exact count", async (t) => {
  const author = await h.signUp();
  const fans = await Promise.all(Array.from({ length: 5 }, () => h.signUp()));
  const postId = await newPost(author);
  await Promise.all(fans.flatMap((fan) => [h.client.likePost({ postId }, fan.call), h.client.likePost({ postId }, fan.call)]));
  t.deepEqual(await counts(postId), { likes: 5, likeRows: 5, comments: 0, commentRows: 0 });
  await Promise.all([
    ...fans.slice(0, 3).flatMap((fan) => [h.client.unlikePost({ postId }, fan.call), h.client.unlikePost({ postId }, fan.call)]),
    h.client.likePost({ postId }, author.call),
  ]);
  t.deepEqual(await counts(postId), { likes: 3, likeRows: 3, comments: 0, commentRows: 0 });
  t.is((await h.client.getPost({ postId }, author.call)).post?.likeCount, 3n);
});

test("comments: created, listed oldest first in pages, counted; blank text is INVALID_ARGUMENT", async (t) => {
  const [author, a, b] = await Promise.all([h.signUp(), h.signUp(), h.signUp()]);
  const postId = await newPost(author);
  const texts = ["first", "second", "third", "fourth", "fifth"];
  const ids: string[] = [];
  for (const [i, text] of texts.entries()) {
    const { comment } = await h.client.createComment({ postId, text: `  ${text} ` }, (i % 2 === 0 ? a : b).call);
    t.is(comment?.text, text);
    t.is(comment?.postId, postId);
    ids.push(comment!.commentId);
  }
  const seen: string[] = [];
  let pageToken = "";
  let pages = 0;
  do {
    const page = await h.client.listComments({ postId, pageSize: 2, pageToken }, author.call);
    seen.push(...page.comments.map((c) => c.commentId));
    pageToken = page.nextPageToken;
    pages++;
  } while (pageToken !== "" && pages < 10);
  t.deepEqual(seen, ids);
  t.is(pages, 3);
  t.is((await h.client.getPost({ postId }, author.call)).post?.commentCount, 5n);

  const blank = await rejection(h.client.createComment({ postId, text: "   " }, a.call));
  t.is(blank.code, Code.InvalidArgument);
  t.deepEqual(violatedFields(blank), ["text"]);
  const empty = await rejection(h.client.createComment({ postId, text: "" }, a.call));
  t.deepEqual(violatedFields(empty), ["text"]);
  t.deepEqual(await counts(postId), { likes: 0, likeRows: 0, comments: 5, commentRows: 5 });
});

test("comments: only their author deletes them; the count follows; a deleted comment is gone", async (t) => {
  const [author, commenter, other] = await Promise.all([h.signUp(), h.signUp(), h.signUp()]);
  const postId = await newPost(author);
  const { comment } = await h.client.createComment({ postId, text: "mine" }, commenter.call);
  const commentId = comment!.commentId;
  for (const who of [other, author]) {
    t.is((await rejection(h.client.deleteComment({ postId, commentId }, who.call))).code, Code.PermissionDenied);
  }
  const otherPost = await newPost(author, "another post");
  t.is((await rejection(h.client.deleteComment({ postId: otherPost, commentId }, commenter.call))).code, Code.NotFound, "under another post");
  t.deepEqual(await counts(postId), { likes: 0, likeRows: 0, comments: 1, commentRows: 1 });

  await h.client.deleteComment({ postId, commentId }, commenter.call);
  t.deepEqual(await counts(postId), { likes: 0, likeRows: 0, comments: 0, commentRows: 0 });
  t.is((await rejection(h.client.deleteComment({ postId, commentId }, commenter.call))).code, Code.NotFound, "hard-deleted");
  t.deepEqual((await h.client.listComments({ postId }, author.call)).comments, []);
});

test("comments by someone who blocked the viewer are left out of the viewer's list", async (t) => {
  const [author, viewer, blocker] = await Promise.all([h.signUp(), h.signUp(), h.signUp()]);
  const postId = await newPost(author);
  await h.client.createComment({ postId, text: "from the blocker" }, blocker.call);
  await h.client.createComment({ postId, text: "from the viewer" }, viewer.call);
  await h.user.client.block({ userId: viewer.userId }, blocker.call);
  t.deepEqual((await h.client.listComments({ postId }, viewer.call)).comments.map((c) => c.text), ["from the viewer"]);
  t.deepEqual((await h.client.listComments({ postId }, author.call)).comments.map((c) => c.text), ["from the blocker", "from the viewer"]);
});

test("likes and comments on a deleted post are NOT_FOUND and change nothing", async (t) => {
  const [author, fan] = await Promise.all([h.signUp(), h.signUp()]);
  const postId = await newPost(author);
  await h.client.likePost({ postId }, fan.call);
  await h.client.deletePost({ postId }, author.call);
  t.is((await rejection(h.client.likePost({ postId }, author.call))).code, Code.NotFound);
  t.is((await rejection(h.client.unlikePost({ postId }, fan.call))).code, Code.NotFound);
  t.is((await rejection(h.client.createComment({ postId, text: "late" }, fan.call))).code, Code.NotFound);
  t.is((await rejection(h.client.listComments({ postId }, fan.call))).code, Code.NotFound);
  t.deepEqual(await counts(postId), { likes: 1, likeRows: 1, comments: 0, commentRows: 0 });
});
