// NotificationInternalService.ExportUserNotifications over the real service
// (PostgreSQL, Kafka, the auth service's service tokens): the data exporter's
// token gets one user's settings and the notifications they received, in
// their sequence order, without removed ones and without anyone else's; a
// user's token, a service token without the scope, no token and a bad
// user_id are refused.
import test from "ava";
import { Code, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Kind } from "@aviary/gen/aviary/notification/v1/notification_pb";
import { NotificationInternalService } from "@aviary/gen/aviary/notification/v1/notification_internal_pb";
import { LikeCreatedSchema, LikeDeletedSchema } from "@aviary/gen/aviary/events/v1/post_events_pb";
import { FollowCreatedSchema } from "@aviary/gen/aviary/events/v1/user_events_pb";
import { testServiceClient } from "../../auth/test/harness.ts";
import { drain } from "../../runtime/test-support/streams.ts";
import { postEventsTopic, userEventsTopic } from "../src/index.ts";
import { as, rejection, startTestNotification, violatedFields, type Signed, type TestNotification } from "./harness.ts";

const exporter = testServiceClient("test-exporter", ["notification.export"]);
// Every export scope but this service's.
const otherExporter = testServiceClient("test-other-exporter", ["user.export", "chat.export", "moderation.export"]);

let n: TestNotification;
let internal: Client<typeof NotificationInternalService>;

test.before(async () => {
  n = await startTestNotification({}, { serviceClients: [exporter, otherExporter] });
  internal = createClient(NotificationInternalService, createGrpcTransport({ baseUrl: n.service.url }));
});
test.after.always(async () => {
  await n?.close();
});

const now = () => timestampFromDate(new Date());

async function liveAndRemoved(account: Signed): Promise<{ live: number; removed: number }> {
  const [row] = await n.query<{ live: number; removed: number }>(
    "select count(*) filter (where removed_at is null)::int as live, count(*) filter (where removed_at is not null)::int as removed from notification.notifications where recipient_id = $1",
    [account.userId],
  );
  return row ?? { live: 0, removed: 0 };
}

test("the exporter gets the user's settings and live notifications in sequence order, nothing removed and nobody else's", async (t) => {
  const [me, other] = await Promise.all([n.signUp(), n.signUp()]);
  const [liker, follower, unliker] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  const [likedPost, unlikedPost, othersPost] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  await n.publish(postEventsTopic, likedPost, LikeCreatedSchema, { postId: likedPost, likerId: liker, postAuthorId: me.userId, createdAt: now() });
  await n.publish(userEventsTopic, follower, FollowCreatedSchema, { followerId: follower, followeeId: me.userId, createdAt: now() });
  await n.publish(postEventsTopic, unlikedPost, LikeCreatedSchema, { postId: unlikedPost, likerId: unliker, postAuthorId: me.userId, createdAt: now() });
  await n.publish(postEventsTopic, unlikedPost, LikeDeletedSchema, { postId: unlikedPost, likerId: unliker, postAuthorId: me.userId, deletedAt: now() });
  await n.publish(postEventsTopic, othersPost, LikeCreatedSchema, { postId: othersPost, likerId: liker, postAuthorId: other.userId, createdAt: now() });
  await n.until("two live notifications and a removed one", async () => {
    const counts = await liveAndRemoved(me);
    return counts.live === 2 && counts.removed === 1;
  });
  await n.until("the other user's notification", async () => (await liveAndRemoved(other)).live === 1);
  await n.client.updatePreferences({ kinds: [{ kind: Kind.LIKE, inApp: true, push: false }] }, me.call);
  const seen = await n.client.markSeen({ upTo: { case: "time", value: now() } }, me.call);
  t.true(seen.advanced);

  const items = await drain(internal.exportUserNotifications({ userId: me.userId }, as({ token: await exporter.token(n.auth) })));
  const [first, ...rest] = items;
  t.is(first?.item.case, "settings", "the settings come first, once");
  const settings = first?.item.case === "settings" ? first.item.value : undefined;
  const like = settings?.preferences?.kinds.find((k) => k.kind === Kind.LIKE);
  t.deepEqual([like?.inApp, like?.push], [true, false]);
  const notifications = rest.flatMap((item) => (item.item.case === "notification" ? [item.item.value] : []));
  t.is(notifications.length, rest.length, "nothing but notifications after the settings");
  // The three events sit on different partitions, so which got which seq depends on the
  // consumer's order: the export must be in seq order, whatever that order was.
  const byKind = (a: (typeof notifications)[number], b: (typeof notifications)[number]) => a.kind - b.kind;
  t.deepEqual(
    [...notifications].sort(byKind).map((x) => [x.kind, x.actorId, x.postId]),
    [
      [Kind.LIKE, liker, likedPost],
      [Kind.FOLLOW, follower, ""],
    ].sort((a, b) => (a[0] as number) - (b[0] as number)),
  );
  t.true(notifications[0]!.seq < notifications[1]!.seq, "in sequence order");
  // Marked seen up to now: at least the newest live one (the removed like may hold a later seq).
  t.true((settings?.seenSeq ?? 0n) >= notifications[1]!.seq, "everything was marked seen");
  t.true(notifications.every((x) => x.createdAt !== undefined && x.notificationId !== ""));

  // Someone with nothing here: the default settings, no notifications.
  const nobody = await drain(internal.exportUserNotifications({ userId: crypto.randomUUID() }, as({ token: await exporter.token(n.auth) })));
  t.deepEqual(nobody.map((item) => item.item.case), ["settings"]);
  t.is(nobody[0]?.item.case === "settings" ? nobody[0].item.value.seenSeq : -1n, 0n);
});

test("no token, a user's token, a service token without the scope and a bad user_id are refused", async (t) => {
  const me = await n.signUp();
  t.is((await rejection(drain(internal.exportUserNotifications({ userId: me.userId })))).code, Code.Unauthenticated);
  t.is((await rejection(drain(internal.exportUserNotifications({ userId: me.userId }, me.call)))).code, Code.PermissionDenied);
  const unscoped = await rejection(drain(internal.exportUserNotifications({ userId: me.userId }, as({ token: await otherExporter.token(n.auth) }))));
  t.is(unscoped.code, Code.PermissionDenied);
  const token = await exporter.token(n.auth);
  for (const userId of ["not-a-uuid", ""]) {
    const bad = await rejection(drain(internal.exportUserNotifications({ userId }, as({ token }))));
    t.is(bad.code, Code.InvalidArgument, userId);
    t.deepEqual(violatedFields(bad), ["user_id"]);
  }
});
