// Notifications end to end on real Kafka, Postgres and Redis: the post and
// user services publish, the notification consumer groups, the list and the
// unread count read, and the realtime stream and push providers receive.
import test from "ava";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Kind, type NotificationGroup } from "@aviary/gen/aviary/notification/v1/notification_pb";
import { LikeCreatedSchema } from "@aviary/gen/aviary/events/v1/post_events_pb";
import { postEventsTopic } from "../src/index.ts";
import { startTestNotification, webPushId, type Signed, type TestNotification } from "./harness.ts";

let n: TestNotification;

test.before(async () => {
  n = await startTestNotification();
});
test.after.always(async () => {
  await n?.close();
});

async function groupsOf(account: Signed, kinds: Kind[] = []): Promise<NotificationGroup[]> {
  return (await n.client.listNotifications({ kinds }, account.call)).groups;
}

/** Waits until the user's list has a group satisfying `match`. */
async function waitForGroup(account: Signed, what: string, match: (g: NotificationGroup) => boolean): Promise<NotificationGroup> {
  let found: NotificationGroup | undefined;
  await n.until(what, async () => {
    found = (await groupsOf(account)).find(match);
    return found !== undefined;
  });
  return found!;
}

async function named(label: string): Promise<Signed> {
  const account = await n.signUp();
  const username = `${label}${Math.random().toString(36).slice(2, 8)}`;
  await n.post.user.client.updateProfile({ username, displayName: label[0]!.toUpperCase() + label.slice(1) }, account.call);
  return { ...account, identity: username };
}

test("likes: one group per post with counts and the newest actors, live on the author's stream, one push per device (collapse key = group, badge = unread)", async (t) => {
  const [author, ana, ben] = await Promise.all([n.signUp(), named("ana"), named("ben")]);
  const ios = await n.registerDevice(author, "ios");
  const android = await n.registerDevice(author, "android");
  const web = await n.registerDevice(author, "web");
  const stream = await n.watchStream(author.userId);
  const { post } = await n.post.client.createPost({ text: "hello" }, author.call);
  const postId = post!.postId;

  await n.post.client.likePost({ postId }, ana.call);
  const first = await waitForGroup(author, "the like group", (g) => g.kind === Kind.LIKE && g.postId === postId);
  t.like(first, { notificationCount: 1, actorCount: 1, unread: true, sampleActorIds: [ana.userId] });
  t.is(first.sampleActors[0]?.displayName, "Ana");

  await n.post.client.likePost({ postId }, ben.call);
  const second = await waitForGroup(author, "the second like in the same group", (g) => g.groupId === first.groupId && g.notificationCount === 2);
  t.is(second.actorCount, 2);
  t.deepEqual(second.sampleActorIds, [ben.userId, ana.userId], "newest actor first");
  const list = await n.client.listNotifications({}, author.call);
  t.is(list.groups.length, 1);
  t.is(list.unreadCount, 1n, "one unread group");

  await n.until("two live updates", async () => stream.events.length >= 2);
  t.deepEqual(
    stream.events.map((e) => [e.group?.groupId, e.group?.notificationCount, e.unreadCount]),
    [
      [first.groupId, 1, 1n],
      [first.groupId, 2, 1n],
    ],
  );
  await stream.stop();

  const webId = webPushId(n.webPush, web.token);
  await n.until("two pushes on every device", async () => n.apns.requestsFor(ios.token).length === 2 && n.fcm.requestsFor(android.token).length === 2 && n.webPush.requestsFor(webId).length === 2);
  const apns = n.apns.requestsFor(ios.token);
  t.true(apns.every((r) => r.headers["apns-collapse-id"] === first.groupId && r.headers["apns-topic"] === "app.aviary.test"));
  t.like(apns[1]!.body, { aps: { badge: 1, alert: { body: "Ben and 1 other liked your post" } } });
  const fcm = n.fcm.requestsFor(android.token);
  t.like(fcm[1]!.body, { message: { android: { collapse_key: first.groupId }, notification: { body: "Ben and 1 other liked your post" } } });
  const webPayload = JSON.parse(n.webPush.requestsFor(webId)[1]!.payload ?? "{}") as { body?: string; badge?: number };
  t.is(webPayload.body, "Ben and 1 other liked your post");
  t.is(webPayload.badge, 1);
});

test("comments, replies, mentions and follows each notify the right user with the right kind, live and pushed to each device once", async (t) => {
  const [author, bob, cy] = await Promise.all([named("author"), named("bob"), named("cy")]);
  const ios = await n.registerDevice(author, "ios");
  const android = await n.registerDevice(author, "android");
  const web = await n.registerDevice(author, "web");
  const stream = await n.watchStream(author.userId);
  const { post } = await n.post.client.createPost({ text: "a post" }, author.call);
  const postId = post!.postId;

  const { comment } = await n.post.client.createComment({ postId, text: "nice" }, bob.call);
  const { post: reply } = await n.post.client.createPost({ text: `agreed @${cy.identity}`, replyToPostId: postId }, bob.call);
  const { post: mention } = await n.post.client.createPost({ text: `hey @${author.identity} and @nobody${Date.now()}` }, cy.call);
  await n.post.user.client.follow({ userId: author.userId }, bob.call);
  await n.post.user.client.follow({ userId: author.userId }, cy.call);

  const commented = await waitForGroup(author, "the comment", (g) => g.kind === Kind.COMMENT);
  t.like(commented, { postId, latestSourceId: comment!.commentId, sampleActorIds: [bob.userId] });
  const replied = await waitForGroup(author, "the reply", (g) => g.kind === Kind.REPLY);
  t.like(replied, { postId, latestSourceId: reply!.postId, sampleActorIds: [bob.userId] });
  const mentioned = await waitForGroup(author, "the mention", (g) => g.kind === Kind.MENTION);
  t.like(mentioned, { postId: mention!.postId, sampleActorIds: [cy.userId] });
  const followed = await waitForGroup(author, "both follows in one group", (g) => g.kind === Kind.FOLLOW && g.actorCount === 2);
  t.is(followed.notificationCount, 2);
  t.deepEqual([...followed.sampleActorIds].sort(), [bob.userId, cy.userId].sort());

  // Cy, mentioned in Bob's reply, hears of it too; Bob hears nothing of his own posts.
  const cyMention = await waitForGroup(cy, "cy's mention in the reply", (g) => g.kind === Kind.MENTION);
  t.is(cyMention.postId, reply!.postId);
  t.deepEqual(await groupsOf(bob), []);

  // The kind filter, and its unread count.
  const onlyFollows = await n.client.listNotifications({ kinds: [Kind.FOLLOW] }, author.call);
  t.deepEqual(
    onlyFollows.groups.map((g) => g.kind),
    [Kind.FOLLOW],
  );
  t.is(onlyFollows.unreadCount, 1n);
  t.is((await n.client.getUnreadCount({}, author.call)).unreadCount, 4n);

  // Five notifications (comment, reply, mention, two follows): five live updates, five pushes per device, each collapsed into its group.
  const groupOrder = [commented, replied, mentioned, followed].map((g) => g.groupId).sort();
  await n.until("five live updates", async () => stream.events.length >= 5);
  t.deepEqual([...new Set(stream.events.map((e) => e.group?.groupId ?? ""))].sort(), groupOrder);
  await stream.stop();
  const webId = webPushId(n.webPush, web.token);
  await n.until("five pushes per device", async () => n.apns.requestsFor(ios.token).length === 5 && n.fcm.requestsFor(android.token).length === 5 && n.webPush.requestsFor(webId).length === 5);
  const collapse = (ids: string[]) => [...new Set(ids)].sort();
  t.deepEqual(collapse(n.apns.requestsFor(ios.token).map((r) => r.headers["apns-collapse-id"] ?? "")), groupOrder);
  t.deepEqual(collapse(n.fcm.requestsFor(android.token).map((r) => (r.body as { message: { android: { collapse_key: string } } }).message.android.collapse_key)), groupOrder);
  t.is(collapse(n.webPush.requestsFor(webId).map((r) => r.topic ?? "")).length, 4, "one Web Push topic per group");
  const apnsIds = n.apns.requestsFor(ios.token).map((r) => (r.body as { notification_id: string }).notification_id);
  t.is(new Set(apnsIds).size, 5, "each notification pushed once");
});

test("sources going away take their notifications with them: unlike, deleted comment, deleted post, a quick unfollow, a block", async (t) => {
  const [author, liker, commenter, follower, blocked] = await Promise.all([n.signUp(), n.signUp(), n.signUp(), n.signUp(), n.signUp()]);
  const { post: kept } = await n.post.client.createPost({ text: "kept" }, author.call);
  const { post: doomed } = await n.post.client.createPost({ text: "doomed" }, author.call);
  await n.post.client.likePost({ postId: kept!.postId }, liker.call);
  await n.post.client.likePost({ postId: kept!.postId }, blocked.call);
  const { comment } = await n.post.client.createComment({ postId: kept!.postId, text: "hm" }, commenter.call);
  await n.post.client.likePost({ postId: doomed!.postId }, liker.call);
  await n.post.user.client.follow({ userId: author.userId }, follower.call);
  await waitForGroup(author, "everything arrived", (g) => g.kind === Kind.FOLLOW);
  await waitForGroup(author, "both likes of the kept post", (g) => g.postId === kept!.postId && g.kind === Kind.LIKE && g.notificationCount === 2);
  await waitForGroup(author, "the comment", (g) => g.kind === Kind.COMMENT);
  await waitForGroup(author, "the like of the doomed post", (g) => g.postId === doomed!.postId);
  t.is((await n.client.getUnreadCount({}, author.call)).unreadCount, 4n);

  await n.post.client.unlikePost({ postId: kept!.postId }, liker.call);
  await n.post.client.deleteComment({ postId: kept!.postId, commentId: comment!.commentId }, commenter.call);
  await n.post.client.deletePost({ postId: doomed!.postId }, author.call);
  await n.post.user.client.unfollow({ userId: author.userId }, follower.call);
  await n.post.user.client.block({ userId: blocked.userId }, author.call);

  await n.until("nothing left", async () => (await groupsOf(author)).length === 0);
  t.is((await n.client.getUnreadCount({}, author.call)).unreadCount, 0n);

  // While blocked, a like (published by hand: the post service refuses it) notifies nobody; a marker after it does.
  const laterPost = crypto.randomUUID();
  const likeOf = (likerId: string) => ({ postId: laterPost, likerId, postAuthorId: author.userId, createdAt: timestampFromDate(new Date()) });
  await n.publish(postEventsTopic, laterPost, LikeCreatedSchema, likeOf(blocked.userId));
  await n.publish(postEventsTopic, laterPost, LikeCreatedSchema, likeOf(liker.userId));
  const later = await waitForGroup(author, "the liker's like of the later post", (g) => g.postId === laterPost);
  t.deepEqual(later.sampleActorIds, [liker.userId]);
  // Unblocked: their likes count again (what the block removed stays removed).
  await n.post.user.client.unblock({ userId: blocked.userId }, author.call);
  await n.until("the unblock in the projection", async () => (await n.query("select 1 from notification.blocks where blocker_id = $1", [author.userId])).length === 0);
  await n.publish(postEventsTopic, laterPost, LikeCreatedSchema, likeOf(blocked.userId));
  const again = await waitForGroup(author, "the unblocked user's like", (g) => g.postId === laterPost && g.actorCount === 2);
  t.deepEqual(again.sampleActorIds, [blocked.userId, liker.userId]);
  t.deepEqual(
    (await groupsOf(author)).map((g) => g.postId),
    [laterPost],
  );
});

test("an event delivered twice is one notification, one group increment and one push per device", async (t) => {
  const [author, liker] = await Promise.all([n.signUp(), n.signUp()]);
  const ios = await n.registerDevice(author, "ios");
  const postId = crypto.randomUUID();
  const like = { postId, likerId: liker.userId, postAuthorId: author.userId, createdAt: timestampFromDate(new Date()) };
  const eventId = await n.publish(postEventsTopic, postId, LikeCreatedSchema, like);
  await n.publish(postEventsTopic, postId, LikeCreatedSchema, like, eventId);
  // A marker event after both: once it is applied, so are they (same partition, in order).
  const marker = crypto.randomUUID();
  await n.publish(postEventsTopic, postId, LikeCreatedSchema, { ...like, likerId: marker });
  await waitForGroup(author, "the marker", (g) => g.sampleActorIds.includes(marker));
  const [group] = await groupsOf(author);
  t.is(group?.notificationCount, 2, "the like once, and the marker");
  // The marker's push comes after any push of the duplicate (one recipient: one partition, in order).
  const [markerRow] = await n.query<{ id: string }>("select id from notification.notifications where actor_id = $1", [marker]);
  await n.until("the marker's push", async () => n.apns.requestsFor(ios.token).some((r) => (r.body as { notification_id?: string }).notification_id === markerRow?.id));
  t.is(n.apns.requestsFor(ios.token).length, 2, "one push for the like, one for the marker");
});

test("preferences: push off means no push, in-app off means not listed nor counted, only-from-following filters strangers", async (t) => {
  const [author, friend, stranger] = await Promise.all([n.signUp(), n.signUp(), n.signUp()]);
  const ios = await n.registerDevice(author, "ios");
  const updated = await n.client.updatePreferences(
    {
      kinds: [
        { kind: Kind.LIKE, inApp: true, push: false },
        { kind: Kind.COMMENT, inApp: false, push: true },
      ],
      onlyFromFollowing: true,
    },
    author.call,
  );
  t.like(updated.preferences?.kinds.find((k) => k.kind === Kind.LIKE), { inApp: true, push: false });
  t.like(updated.preferences?.kinds.find((k) => k.kind === Kind.FOLLOW), { inApp: true, push: true });
  t.true(updated.preferences?.onlyFromFollowing);
  await n.post.user.client.follow({ userId: friend.userId }, author.call);
  await n.until("the follow in the projection", async () => (await n.query("select 1 from notification.follows where follower_id = $1 and followee_id = $2", [author.userId, friend.userId])).length === 1);

  const { post } = await n.post.client.createPost({ text: "prefs" }, author.call);
  await n.post.client.likePost({ postId: post!.postId }, stranger.call);
  await n.post.client.createComment({ postId: post!.postId, text: "first" }, friend.call);
  await n.post.client.likePost({ postId: post!.postId }, friend.call);

  const like = await waitForGroup(author, "the friend's like", (g) => g.kind === Kind.LIKE);
  t.deepEqual(like.sampleActorIds, [friend.userId], "the stranger's like was filtered");
  await n.until("the comment's push", async () => n.apns.requestsFor(ios.token).length === 1);
  t.regex(String((n.apns.requestsFor(ios.token)[0]!.body as { aps: { alert: { body: string } } }).aps.alert.body), /commented on your post/);
  const list = await n.client.listNotifications({}, author.call);
  t.deepEqual(
    list.groups.map((g) => g.kind),
    [Kind.LIKE],
    "the comment is not listed",
  );
  t.is(list.unreadCount, 1n);
  t.is((await n.client.getPreferences({}, author.call)).preferences?.onlyFromFollowing, true);
});
