// The scenario on real infrastructure: a moderator suspends Ben.
// Ben's tokens stop working within seconds and he cannot sign in (with the
// reason), his posts vanish from Ana's feed, search, his profile's posts and
// direct reads, his comments from Ana's post; unsuspending restores them. Removing a post: others see it gone,
// its author sees why; restoring brings it back.
import test from "ava";
import { Code } from "@connectrpc/connect";
import { ErrorInfoSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { as, password, uniqueIp } from "../../auth/test/harness.ts";
import { rejection, startTestModeration, type Account, type TestModeration } from "./harness.ts";

let mod: TestModeration;

test.before(async () => {
  // FEED_VIEW_CACHE_SECONDS stays at its default: the feed may show a page from before the suspension for that long.
  mod = await startTestModeration({}, { feed: true });
});

test.after.always(async () => {
  await mod?.close();
});

async function feedPostIds(account: Account): Promise<string[]> {
  return (await mod.feed!.client.getHomeFeed({ pageSize: 50 }, account.call)).items.map((item) => item.post?.postId ?? "");
}

test.serial("a moderator suspends Ben: his tokens stop, sign-in is refused with the reason, his posts vanish; unsuspending restores them", async (t) => {
  const feed = mod.feed!;
  const [ana, ben] = await Promise.all([mod.signUp("ana"), mod.signUp("ben")]);
  await feed.post.user.client.follow({ userId: ben.userId }, ana.call);
  const word = `w${Math.random().toString(36).slice(2, 10)}`;
  const post = (await feed.post.client.createPost({ text: `hello from ben ${word}` }, ben.call)).post!;
  const anasPost = (await feed.post.client.createPost({ text: "ana here" }, ana.call)).post!;
  const comment = (await feed.post.client.createComment({ postId: anasPost.postId, text: "ben was here" }, ben.call)).comment!;
  const commentIds = async () => (await feed.post.client.listComments({ postId: anasPost.postId }, ana.call)).comments.map((c) => c.commentId);
  const found = async () => (await feed.post.client.searchPosts({ query: word }, ana.call)).posts.map((p) => p.postId);
  await mod.until("Ben's post in Ana's feed", async () => (await feedPostIds(ana)).includes(post.postId));
  t.deepEqual(await found(), [post.postId]);
  t.deepEqual(await commentIds(), [comment.commentId]);

  const suspended = await mod.client.suspendUser({ userId: ben.userId, reason: "spam campaign" }, mod.moderator.call);
  t.true(suspended.suspension?.suspended);
  t.is(suspended.suspension?.moderatorId, mod.moderator.userId);
  // Suspending again answers the suspension in force and writes nothing more.
  const outbox = (await mod.counts()).outbox;
  t.is((await mod.client.suspendUser({ userId: ben.userId, reason: "again" }, mod.moderator.call)).suspension?.reason, "spam campaign");
  t.is((await mod.counts()).outbox, outbox);

  // Ben's access token stops working everywhere (the auth service ends his sessions and denylists them).
  await mod.until("Ben's token refused", async () => (await rejection(feed.post.client.getPost({ postId: post.postId }, ben.call)).catch(() => undefined))?.code === Code.Unauthenticated);
  t.is((await rejection(feed.post.user.client.getProfile({ userId: ben.userId }, ben.call))).code, Code.Unauthenticated);
  // Signing in again is refused, saying why.
  const login = await rejection(mod.auth.client.login({ identity: { case: "email", value: ben.identity }, password, deviceName: "test" }, as({ ip: uniqueIp() })));
  t.is(login.code, Code.FailedPrecondition);
  t.is(login.findDetails(ErrorInfoSchema)[0]?.reason, "ACCOUNT_SUSPENDED");
  t.regex(login.rawMessage, /spam campaign/);

  // His posts are gone for Ana: the feed, the post itself, his profile's posts.
  await mod.until("Ben's post gone from Ana's feed", async () => !(await feedPostIds(ana)).includes(post.postId));
  t.is((await rejection(feed.post.client.getPost({ postId: post.postId }, ana.call))).code, Code.NotFound);
  t.is((await rejection(feed.post.client.listPostsByAuthor({ authorId: ben.userId }, ana.call))).code, Code.NotFound);
  t.deepEqual(Object.keys((await feed.post.client.batchGetPosts({ postIds: [post.postId] }, ana.call)).posts), []);
  t.deepEqual(await found(), [], "gone from search");
  t.deepEqual(await commentIds(), [], "his comment gone from Ana's post");

  const lifted = await mod.client.unsuspendUser({ userId: ben.userId, reason: "appeal granted" }, mod.moderator.call);
  t.false(lifted.suspension?.suspended);
  t.deepEqual((await mod.client.getSuspension({ userId: ben.userId }, mod.moderator.call)).suspension?.suspended, false);
  await mod.until("Ben's post back in Ana's feed", async () => (await feedPostIds(ana)).includes(post.postId));
  t.is((await feed.post.client.getPost({ postId: post.postId }, ana.call)).post?.text, `hello from ben ${word}`);
  t.deepEqual(await found(), [post.postId], "back in search");
  t.deepEqual(await commentIds(), [comment.commentId], "his comment back");
  // Ben signs in again (the old sessions stay ended).
  await mod.until("Ben can sign in again", async () => {
    try {
      await mod.signIn(ben);
      return true;
    } catch {
      return false;
    }
  });
  t.is((await rejection(feed.post.user.client.getProfile({ userId: ben.userId }, ben.call))).code, Code.Unauthenticated, "the old token stays dead");
  const again = await mod.signIn(ben);
  t.is((await feed.post.client.getPost({ postId: post.postId }, again.call)).post?.postId, post.postId);
});

test.serial("a removed post: gone for others, its author sees why; restoring brings it back", async (t) => {
  const feed = mod.feed!;
  const [ana, cat] = await Promise.all([mod.signUp("ana"), mod.signUp("cat")]);
  await feed.post.user.client.follow({ userId: cat.userId }, ana.call);
  const post = (await feed.post.client.createPost({ text: "buy cheap followers" }, cat.call)).post!;
  const comment = (await feed.post.client.createComment({ postId: post.postId, text: "me too" }, ana.call)).comment!;
  await mod.until("Cat's post in Ana's feed", async () => (await feedPostIds(ana)).includes(post.postId));

  await mod.client.removeContent({ target: { kind: { case: "commentId", value: comment.commentId } }, reason: "spam reply" }, mod.moderator.call);
  await mod.until("the comment gone for others", async () => (await feed.post.client.listComments({ postId: post.postId }, cat.call)).comments.length === 0);
  const ownComments = (await feed.post.client.listComments({ postId: post.postId }, ana.call)).comments;
  t.is(ownComments[0]?.removal?.reason, "spam reply", "the comment's author sees it, and why");

  await mod.client.removeContent({ target: { kind: { case: "postId", value: post.postId } }, reason: "spam" }, mod.moderator.call);
  await mod.until("the post gone for Ana", async () => (await rejection(feed.post.client.getPost({ postId: post.postId }, ana.call)).catch(() => undefined))?.code === Code.NotFound);
  const own = (await feed.post.client.getPost({ postId: post.postId }, cat.call)).post;
  t.is(own?.removal?.reason, "spam", "the author sees why");
  await mod.until("the post gone from Ana's feed", async () => !(await feedPostIds(ana)).includes(post.postId));
  t.deepEqual((await feed.post.client.listPostsByAuthor({ authorId: cat.userId }, ana.call)).posts.map((p) => p.postId), []);
  t.is((await rejection(feed.post.client.createComment({ postId: post.postId, text: "still here?" }, ana.call))).code, Code.NotFound, "no comments on removed posts");

  await mod.client.restoreContent({ target: { kind: { case: "postId", value: post.postId } }, reason: "appeal granted" }, mod.moderator.call);
  await mod.until("the post back for Ana", async () => (await feed.post.client.getPost({ postId: post.postId }, ana.call).catch(() => undefined))?.post?.postId === post.postId);
  t.is((await feed.post.client.getPost({ postId: post.postId }, cat.call)).post?.removal, undefined);
});
