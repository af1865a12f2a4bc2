// The badge never disagrees with the list: for a matrix of kinds, blocks,
// deletions and preferences, the unread count equals the unread groups the
// list pages through. The watermark only moves forward. Nobody reads or
// marks another user's notifications, and bad input writes nothing.
import test from "ava";
import { Code } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Kind } from "@aviary/gen/aviary/notification/v1/notification_pb";
import { CommentCreatedSchema, CommentDeletedSchema, LikeCreatedSchema, PostCreatedSchema, PostDeletedSchema } from "@aviary/gen/aviary/events/v1/post_events_pb";
import { FollowCreatedSchema, UserBlockedSchema } from "@aviary/gen/aviary/events/v1/user_events_pb";
import { postEventsTopic, userEventsTopic } from "../src/index.ts";
import { as, rejection, startTestNotification, violatedFields, type Signed, type TestNotification } from "./harness.ts";

let n: TestNotification;

test.before(async () => {
  n = await startTestNotification();
});
test.after.always(async () => {
  await n?.close();
});

const now = () => timestampFromDate(new Date());

/** Every group of the list for `kinds`, paged through two at a time. */
async function pagedGroups(account: Signed, kinds: Kind[]) {
  const groups = [];
  let pageToken = "";
  do {
    const page = await n.client.listNotifications({ kinds, pageSize: 2, pageToken }, account.call);
    groups.push(...page.groups);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return groups;
}

const filters: Kind[][] = [[], [Kind.LIKE], [Kind.COMMENT], [Kind.FOLLOW], [Kind.MENTION], [Kind.LIKE, Kind.FOLLOW], [Kind.COMMENT, Kind.MENTION, Kind.REPLY]];

/** For every filter: GetUnreadCount = the list's unread_count = the unread groups it pages through. */
async function assertBadgeMatchesList(t: import("ava").ExecutionContext, account: Signed, label: string): Promise<number> {
  let all = -1;
  for (const kinds of filters) {
    const groups = await pagedGroups(account, kinds);
    const { unreadCount } = await n.client.getUnreadCount({ kinds }, account.call);
    const page = await n.client.listNotifications({ kinds }, account.call);
    const unreadListed = groups.filter((g) => g.unread).length;
    t.is(Number(unreadCount), unreadListed, `${label}, kinds [${kinds.join(",")}]: GetUnreadCount vs the list`);
    t.is(Number(page.unreadCount), unreadListed, `${label}, kinds [${kinds.join(",")}]: unread_count vs the list`);
    t.true(groups.every((g) => kinds.length === 0 || kinds.includes(g.kind)));
    t.is(new Set(groups.map((g) => g.groupId)).size, groups.length, "no group twice across pages");
    if (kinds.length === 0) all = unreadListed;
  }
  return all;
}

test("the unread count equals the list's unread groups across kinds, blocks, deletions and preferences; MarkSeen only moves forward", async (t) => {
  const me = await n.signUp();
  const username = `matrix${Math.random().toString(36).slice(2, 8)}`;
  await n.post.user.client.updateProfile({ username }, me.call);
  const [postA, postB, mentioning, commentId] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  const [ana, ben, cy, dee] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  const like = (postId: string, likerId: string) => n.publish(postEventsTopic, postId, LikeCreatedSchema, { postId, likerId, postAuthorId: me.userId, createdAt: now() });
  await like(postA, ana);
  await like(postA, ben);
  await like(postB, cy);
  await n.publish(postEventsTopic, postA, CommentCreatedSchema, { commentId, postId: postA, authorId: dee, postAuthorId: me.userId, createdAt: now() });
  await n.publish(postEventsTopic, mentioning, PostCreatedSchema, { postId: mentioning, authorId: ben, mentions: [username], createdAt: now() });
  await n.publish(userEventsTopic, ana, FollowCreatedSchema, { followerId: ana, followeeId: me.userId, createdAt: now() });
  await n.publish(userEventsTopic, cy, FollowCreatedSchema, { followerId: cy, followeeId: me.userId, createdAt: now() });
  await n.until("five groups", async () => (await pagedGroups(me, [])).length === 5);
  t.is(await assertBadgeMatchesList(t, me, "fresh"), 5);

  // Mark seen up to the middle group: exactly the newer ones stay unread.
  const groups = await pagedGroups(me, []);
  const middle = groups[2]!;
  const seen = await n.client.markSeen({ upTo: { case: "groupId", value: middle.groupId } }, me.call);
  t.true(seen.advanced);
  t.is(seen.unreadCount, 2n);
  t.is(await assertBadgeMatchesList(t, me, "after MarkSeen"), 2);
  // Back to an older group, or to a time before everything: nothing moves.
  const back = await n.client.markSeen({ upTo: { case: "groupId", value: groups[4]!.groupId } }, me.call);
  t.false(back.advanced);
  t.is(back.unreadCount, 2n);
  const past = await n.client.markSeen({ upTo: { case: "time", value: timestampFromDate(new Date(Date.now() - 86_400_000)) } }, me.call);
  t.false(past.advanced);
  t.is(past.unreadCount, 2n);

  // A new like on a seen group brings it back, unread, to the top.
  await like(postB, dee);
  await n.until("post B's group back on top", async () => (await pagedGroups(me, []))[0]?.notificationCount === 2);
  // Arrival order across topics is not fixed: post B's group was unread already, or comes back unread.
  const wasUnread = groups.findIndex((g) => g.kind === Kind.LIKE && g.postId === postB) < 2;
  t.is(await assertBadgeMatchesList(t, me, "after a new like"), wasUnread ? 2 : 3);

  // A block (Ben's like and mention go), a deleted comment, a deleted post.
  await n.publish(userEventsTopic, me.userId, UserBlockedSchema, { blockerId: me.userId, blockedId: ben, blockedAt: now() });
  await n.publish(postEventsTopic, postA, CommentDeletedSchema, { commentId, postId: postA, authorId: dee, postAuthorId: me.userId, deletedAt: now() });
  await n.until("the mention and the comment gone", async () => (await pagedGroups(me, [])).length === 3);
  await assertBadgeMatchesList(t, me, "after a block and a deleted comment");
  await n.publish(postEventsTopic, postB, PostDeletedSchema, { postId: postB, authorId: me.userId, deletedAt: now() });
  await n.until("post B's likes gone", async () => (await pagedGroups(me, [])).length === 2);
  await assertBadgeMatchesList(t, me, "after a deleted post");

  // Follows turned off in-app: neither listed nor counted.
  await n.client.updatePreferences({ kinds: [{ kind: Kind.FOLLOW, inApp: false, push: true }] }, me.call);
  t.deepEqual(
    (await pagedGroups(me, [])).map((g) => g.kind),
    [Kind.LIKE],
  );
  await assertBadgeMatchesList(t, me, "with follows off in-app");

  // Everything up to now.
  const all = await n.client.markSeen({ upTo: { case: "time", value: now() } }, me.call);
  t.true(all.advanced);
  t.is(all.unreadCount, 0n);
  t.is(await assertBadgeMatchesList(t, me, "after MarkSeen(now)"), 0);
  const watermark = await n.query<{ seen_seq: string; last_seq: string }>("select seen_seq, last_seq from notification.recipients where user_id = $1", [me.userId]);
  t.is(watermark[0]?.seen_seq, watermark[0]?.last_seq);
});

test("nobody reads or marks another user's notifications", async (t) => {
  const [owner, other] = await Promise.all([n.signUp(), n.signUp()]);
  const postId = crypto.randomUUID();
  await n.publish(postEventsTopic, postId, LikeCreatedSchema, { postId, likerId: crypto.randomUUID(), postAuthorId: owner.userId, createdAt: now() });
  await n.until("the owner's group", async () => (await n.client.listNotifications({}, owner.call)).groups.length === 1);
  const [group] = (await n.client.listNotifications({}, owner.call)).groups;

  t.deepEqual((await n.client.listNotifications({}, other.call)).groups, []);
  const marked = await rejection(n.client.markSeen({ upTo: { case: "groupId", value: group!.groupId } }, other.call));
  t.is(marked.code, Code.NotFound);
  t.is((await n.client.getUnreadCount({}, owner.call)).unreadCount, 1n, "the owner's watermark did not move");

  for (const call of [n.client.listNotifications({}, as({})), n.client.getUnreadCount({}, as({})), n.client.markSeen({ upTo: { case: "time", value: now() } }, as({})), n.client.getPreferences({}, as({}))]) {
    t.is((await rejection(call)).code, Code.Unauthenticated);
  }
});

test("bad input is rejected with field-level errors and writes nothing", async (t) => {
  const me = await n.signUp();
  const cases: Array<[string, Promise<unknown>, string[]]> = [
    ["negative page size", n.client.listNotifications({ pageSize: -1 }, me.call), ["page_size"]],
    ["page size over the cap", n.client.listNotifications({ pageSize: 51 }, me.call), ["page_size"]],
    ["a forged page token", n.client.listNotifications({ pageToken: "eyJzIjoxfQ.AAAAAAAAAAAAAAAAAAAAAA" }, me.call), ["page_token"]],
    ["an unknown kind", n.client.listNotifications({ kinds: [99 as Kind] }, me.call), ["kinds[0]"]],
    ["the unspecified kind", n.client.getUnreadCount({ kinds: [Kind.UNSPECIFIED] }, me.call), ["kinds[0]"]],
    ["MarkSeen without up_to", n.client.markSeen({}, me.call), ["up_to"]],
    ["MarkSeen with a malformed group id", n.client.markSeen({ upTo: { case: "groupId", value: "not-a-uuid" } }, me.call), ["group_id"]],
    ["a preference without a kind", n.client.updatePreferences({ kinds: [{ inApp: false, push: false }] }, me.call), ["kinds[0].kind"]],
    [
      "a kind listed twice",
      n.client.updatePreferences(
        {
          kinds: [
            { kind: Kind.LIKE, inApp: false, push: false },
            { kind: Kind.LIKE, inApp: true, push: true },
          ],
          onlyFromFollowing: true,
        },
        me.call,
      ),
      ["kinds[1].kind"],
    ],
  ];
  for (const [label, call, fields] of cases) {
    const error = await rejection(call);
    t.is(error.code, Code.InvalidArgument, label);
    t.deepEqual(violatedFields(error), fields, label);
  }
  // A token issued for one filter is refused under another.
  for (const postId of [crypto.randomUUID(), crypto.randomUUID()]) {
    await n.publish(postEventsTopic, postId, LikeCreatedSchema, { postId, likerId: crypto.randomUUID(), postAuthorId: me.userId, createdAt: now() });
  }
  await n.until("two groups", async () => (await n.client.listNotifications({}, me.call)).groups.length === 2);
  const { nextPageToken } = await n.client.listNotifications({ pageSize: 1 }, me.call);
  t.not(nextPageToken, "");
  const wrongFilter = await rejection(n.client.listNotifications({ pageSize: 1, pageToken: nextPageToken, kinds: [Kind.FOLLOW] }, me.call));
  t.deepEqual(violatedFields(wrongFilter), ["page_token"]);
  t.is((await n.client.listNotifications({ pageSize: 1, pageToken: nextPageToken }, me.call)).groups.length, 1);

  // Nothing written by the refused calls.
  t.deepEqual(await n.query("select 1 from notification.preferences where user_id = $1", [me.userId]), []);
  const prefs = await n.client.getPreferences({}, me.call);
  t.true(prefs.preferences!.kinds.every((k) => k.push && (k.inApp || k.kind === Kind.MESSAGE)));
  t.false(prefs.preferences!.onlyFromFollowing);
  t.is((await n.client.getUnreadCount({}, me.call)).unreadCount, 2n);
});
