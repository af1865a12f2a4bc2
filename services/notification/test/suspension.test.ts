// A suspended user's activity leaves others' notification lists and unread
// counts, on real Kafka, Postgres and Redis: the real post and user services
// publish Ben's likes, comment and follow; suspensions arrive on a
// moderation topic of the suite's own (as the moderation service publishes
// them). Lifting the suspension brings everything back, but for what was
// removed meanwhile for a reason of its own (an unlike); activity applied
// while suspended is dropped.
import test from "ava";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { UserSuspendedSchema, UserUnsuspendedSchema } from "@aviary/gen/aviary/events/v1/moderation_events_pb";
import { Kind, type NotificationGroup } from "@aviary/gen/aviary/notification/v1/notification_pb";
import { uniqueName } from "../../runtime/test-support/infra.ts";
import { startTestNotification, type Signed, type TestNotification } from "./harness.ts";

const moderationTopic = uniqueName("moderation_events_notification_test");
let n: TestNotification;

test.before(async () => {
  n = await startTestNotification({ MODERATION_EVENTS_TOPIC: moderationTopic });
});
test.after.always(async () => {
  await n?.close();
});

const groupsOf = async (account: Signed): Promise<NotificationGroup[]> => (await n.client.listNotifications({ pageSize: 50 }, account.call)).groups;
const unread = async (account: Signed): Promise<bigint> => (await n.client.getUnreadCount({}, account.call)).unreadCount;

/** Each group as [kind, post id, its actors], newest first. */
const shape = (groups: NotificationGroup[]) => groups.map((g) => [g.kind, g.postId, [...g.sampleActorIds].sort()]);

test("a suspended user's likes, comments and follows leave others' lists and unread counts until lifted", async (t) => {
  const [author, ana, ben] = await Promise.all([n.signUp(), n.signUp(), n.signUp()]);
  const first = (await n.post.client.createPost({ text: "first" }, author.call)).post!.postId;
  const second = (await n.post.client.createPost({ text: "second" }, author.call)).post!.postId;
  const third = (await n.post.client.createPost({ text: "third" }, author.call)).post!.postId;
  await n.post.client.likePost({ postId: first }, ana.call);
  await n.post.client.likePost({ postId: first }, ben.call);
  await n.post.client.likePost({ postId: second }, ben.call);
  await n.post.client.createComment({ postId: first, text: "spam spam" }, ben.call);
  await n.post.user.client.follow({ userId: author.userId }, ben.call);
  const all = (groups: NotificationGroup[]) =>
    groups.some((g) => g.kind === Kind.FOLLOW) && groups.some((g) => g.kind === Kind.COMMENT) && groups.some((g) => g.kind === Kind.LIKE && g.postId === first && g.notificationCount === 2) && groups.some((g) => g.kind === Kind.LIKE && g.postId === second);
  await n.until("every notification of Ben's and Ana's", async () => all(await groupsOf(author)));
  const before = shape(await groupsOf(author));
  t.is(await unread(author), 4n);

  await n.publish(moderationTopic, ben.userId, UserSuspendedSchema, { userId: ben.userId, actorId: ana.userId, reason: "spam", suspendedAt: timestampFromDate(new Date()) });
  await n.until("Ben's activity gone from the author's list", async () => (await groupsOf(author)).every((g) => !g.sampleActorIds.includes(ben.userId)));
  const during = await groupsOf(author);
  t.deepEqual(shape(during), [[Kind.LIKE, first, [ana.userId]]], "only Ana's like is left");
  t.like(during[0], { notificationCount: 1, actorCount: 1 });
  t.is(await unread(author), 1n, "the unread count follows the list");

  // While suspended, Ben's like of the second post is taken back: that removal is its own and outlasts the suspension.
  await n.post.client.unlikePost({ postId: second }, ben.call);
  const removedMeanwhile = async () => (await n.query<{ n: number }>("select count(*)::int as n from notification.notifications where actor_id = $1 and kind = 'like' and post_id = $2 and not hidden_by_suspension", [ben.userId, second]))[0]?.n === 1;
  await n.until("the unlike applied to the hidden like", removedMeanwhile);
  // A like of Ben's applied while he is suspended is dropped. Ana's like of the same post comes after it (one post, one partition).
  await n.post.client.likePost({ postId: third }, ben.call);
  await n.post.client.likePost({ postId: third }, ana.call);
  const thirdGroup = await (async () => {
    let found: NotificationGroup | undefined;
    await n.until("Ana's like of the third post", async () => (found = (await groupsOf(author)).find((g) => g.postId === third)) !== undefined);
    return found!;
  })();
  t.deepEqual(thirdGroup.sampleActorIds, [ana.userId], "Ben's like is not recorded");
  t.is(await unread(author), 2n);

  await n.publish(moderationTopic, ben.userId, UserUnsuspendedSchema, { userId: ben.userId, actorId: ana.userId, reason: "appeal", unsuspendedAt: timestampFromDate(new Date()) });
  await n.until("Ben's activity back", async () => (await groupsOf(author)).some((g) => g.kind === Kind.FOLLOW));
  const after = await groupsOf(author);
  t.deepEqual(
    shape(after).sort(),
    [...before.filter(([kind, postId]) => !(kind === Kind.LIKE && postId === second)), [Kind.LIKE, third, [ana.userId]]].sort(),
    "everything as before, but the like taken back meanwhile; the like applied while suspended does not come back",
  );
  t.is(after.find((g) => g.kind === Kind.LIKE && g.postId === first)?.notificationCount, 2);
  t.is(await unread(author), 4n);

  // A replay of the (older) suspension changes nothing: the last change by its time wins.
  const replay = await n.publish(moderationTopic, ben.userId, UserSuspendedSchema, { userId: ben.userId, actorId: ana.userId, reason: "spam", suspendedAt: timestampFromDate(new Date(Date.now() - 60_000)) });
  await n.until("the replay handled", async () => (await n.query("select 1 from notification.processed_events where event_id = $1", [replay])).length === 1);
  t.deepEqual(shape(await groupsOf(author)).sort(), shape(after).sort(), "Ben's activity stays");
});
