// Account deletion across the whole mesh on the real infrastructure
// (services/runtime/test-support/mesh.ts): Ana and Ben follow each other, Ben
// posts with an image, comments, likes, reacts and chats with Ana, has a push
// token and notifications both ways, reports Ana and is reported by her (so
// the audit log holds his sign-ins and reports), and has a data export
// ready. Ben deletes his account; once the auth scheduler purges it (grace 0
// here, driven by the test rather than a timer), every service purges on
// AccountDeleted (the audit log erases him, the chain still verifies). Then
// the leftovers scan (services/runtime/test-support/leftovers.ts) finds
// nothing of Ben in any schema of any service database nor in the media and
// data-export buckets, while it still finds Ana, whose data stays as it
// was, minus what Ben did to it.
import test from "ava";
import { fromBinary } from "@bufbuild/protobuf";
import { Code, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { sql } from "drizzle-orm";
import { ChatService, MemberRole } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { DataExportService, DataExportState } from "@aviary/gen/aviary/auth/v1/data_export_pb";
import { ModerationService, ReportReason } from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import { AuditService } from "@aviary/gen/aviary/audit/v1/audit_pb";
import { Kind, NotificationService } from "@aviary/gen/aviary/notification/v1/notification_pb";
import { MediaPurpose } from "@aviary/gen/aviary/media/v1/media_pb";
import { Platform } from "@aviary/gen/aviary/user/v1/user_pb";
import { AccountDeletedSchema } from "@aviary/gen/aviary/events/v1/auth_events_pb";
import { authEventsTopic } from "@aviary/runtime/bus/account-deletions";
import { rowsOf } from "@aviary/runtime/db/rows";
import { reachVersionKey } from "@aviary/runtime/cache/reach-versions";
import { startTestMesh, type TestMesh } from "../../services/runtime/test-support/mesh.ts";
import { findLeftovers } from "../../services/runtime/test-support/leftovers.ts";
import { eventually } from "../../services/runtime/test-support/infra.ts";
import { uploadSample } from "../../services/media/test/harness.ts";
import { as, password, rejection, uniqueEmail, uniqueIp } from "../../services/auth/test/harness.ts";
import type { Account } from "../../services/user/test/harness.ts";

let mesh: TestMesh;
const adminEmail = uniqueEmail("admin");
let chat: Client<typeof ChatService>;
let notifications: Client<typeof NotificationService>;
let moderation: Client<typeof ModerationService>;
let exports: Client<typeof DataExportService>;

test.before(async () => {
  // Grace 0: due at once; the poll is an hour, so the purge runs exactly when the test calls it.
  mesh = await startTestMesh({ env: { auth: { AUTH_DELETION_GRACE: "0s", AUTH_DELETION_POLL_INTERVAL: "1h", AUTH_BOOTSTRAP_ADMINS: adminEmail } } });
  chat = createClient(ChatService, createGrpcTransport({ baseUrl: mesh.chat.url }));
  notifications = createClient(NotificationService, createGrpcTransport({ baseUrl: mesh.notification.url }));
  moderation = createClient(ModerationService, createGrpcTransport({ baseUrl: mesh.moderation.url }));
  exports = createClient(DataExportService, createGrpcTransport({ baseUrl: mesh.auth.service.url }));
});
test.after.always(async () => {
  await mesh?.close();
});

/** Every database and bucket of the mesh. */
const leftoversOf = (userId: string) => findLeftovers({ ...mesh.stores(), userId });

/** Which schemas and buckets the scan found the id in. */
const places = (found: string[]) =>
  [
    ...new Set(
      found.map((where) => {
        if (where.startsWith(`s3://${mesh.media.bucket}/`)) return "s3:media";
        if (where.startsWith(`s3://${mesh.exports.bucket}/`)) return "s3:exports";
        return where.split(".")[0]!;
      }),
    ),
  ].sort();

async function count(database: TestMesh["chat"]["database"], query: ReturnType<typeof sql>): Promise<number> {
  return Number(rowsOf(await database.db.execute(query))[0]?.["n"] ?? 0);
}

interface World {
  ana: Account;
  ben: Account;
  carl: Account;
  anaPost: string;
  benPost: string;
  conversationId: string;
  groupId: string;
  benSeq: bigint;
  anaSeq: bigint;
}

/** The whole audit chain verified, as the admin of AUTH_BOOTSTRAP_ADMINS. */
async function verifyAuditChain(): Promise<{ intact: boolean; checked: bigint }> {
  await mesh.auth.client.register({ identity: { case: "email", value: adminEmail }, password }).catch(() => undefined);
  await mesh.auth.service.applyBootstrapAdmins();
  const login = await mesh.auth.client.login({ identity: { case: "email", value: adminEmail }, password }, as({ ip: uniqueIp() }));
  const audit = createClient(AuditService, createGrpcTransport({ baseUrl: mesh.audit.url }));
  return audit.verifyChain({}, as({ token: login.tokens?.accessToken ?? "" }));
}

/** Everything Ben and Ana do together, waited out until every consumer has applied it. */
async function befriend(): Promise<World> {
  const [ana, ben, carl] = [await mesh.user.signUp({ label: "ana" }), await mesh.user.signUp({ label: "ben" }), await mesh.user.signUp({ label: "carl" })];
  const users = mesh.user.client;
  const posts = mesh.feed.post.client;
  await users.follow({ userId: ben.userId }, ana.call);
  await users.follow({ userId: ana.userId }, ben.call);
  await users.registerDevice({ platform: Platform.ANDROID, token: `fcm-${ben.userId}` }, ben.call);
  const image = await uploadSample(mesh.media.client, ben.call, { purpose: MediaPurpose.POST });
  const benPost = (await posts.createPost({ text: "hello from ben", mediaIds: [image] }, ben.call)).post!.postId;
  const anaPost = (await posts.createPost({ text: "ana here" }, ana.call)).post!.postId;
  await posts.likePost({ postId: anaPost }, ben.call);
  // Carl's like shares the group of Ben's in Ana's notifications: it must stay, recounted.
  await posts.likePost({ postId: anaPost }, carl.call);
  await posts.createComment({ postId: anaPost, text: "nice one, ana" }, ben.call);
  await posts.likePost({ postId: benPost }, ana.call);
  await posts.createComment({ postId: benPost, text: "welcome, ben" }, ana.call);
  const sent = await chat.sendMessage({ clientMessageId: crypto.randomUUID(), text: "hi ana, ben here", target: { case: "directUserId", value: ana.userId } }, ben.call);
  const conversationId = sent.message!.conversationId;
  const reply = await chat.sendMessage({ clientMessageId: crypto.randomUUID(), text: "hi ben", target: { case: "conversationId", value: conversationId } }, ana.call);
  await chat.addReaction({ conversationId, seq: reply.message!.seq, reaction: "👍" }, ben.call);
  // A group Ben owns: Ana, its only other member, inherits it.
  const groupId = (await chat.createGroup({ title: "ben's group", memberIds: [ana.userId] }, ben.call)).conversation!.conversationId;
  await chat.sendMessage({ clientMessageId: crypto.randomUUID(), text: "welcome to my group", target: { case: "conversationId", value: groupId } }, ben.call);
  // Reports both ways (the audit log records them with Ben's sign-ins), and Ben's data export.
  await moderation.createReport({ target: { kind: { case: "userId", value: ana.userId } }, reason: ReportReason.SPAM, note: "ben thinks so" }, ben.call);
  await moderation.createReport({ target: { kind: { case: "userId", value: ben.userId } }, reason: ReportReason.HARASSMENT, note: "ana thinks so" }, ana.call);
  const exportId = (await exports.requestDataExport({}, ben.call)).export!.exportId;

  await eventually("Ben's post in Ana's feed", async () => (await mesh.feed.client.getHomeFeed({}, ana.call)).items.some((item) => item.post?.postId === benPost), 60_000);
  await eventually(
    "the notifications both ways",
    async () =>
      (await count(mesh.notification.database, sql`select count(*)::int as n from notification.notifications where recipient_id = ${ben.userId}::uuid`)) >= 3 &&
      (await count(mesh.notification.database, sql`select count(*)::int as n from notification.notifications where actor_id = ${ben.userId}::uuid`)) >= 3 &&
      (await count(mesh.notification.database, sql`select count(*)::int as n from notification.notifications where actor_id = ${carl.userId}::uuid`)) === 1,
    60_000,
  );
  await eventually("Ben's export ready", async () => (await exports.getDataExport({ exportId }, ben.call)).export?.state === DataExportState.READY, 90_000);
  await eventually("Ben's reports in the audit log", async () => (await leftoversOf(ben.userId)).some((where) => where.startsWith("audit.entries.details")), 60_000);
  return { ana, ben, carl, anaPost, benPost, conversationId, groupId, benSeq: sent.message!.seq, anaSeq: reply.message!.seq };
}

/** What Ana has that must not change when Ben's data goes (or goes again). */
async function anasView(world: World) {
  const profile = (await mesh.user.client.getProfile({ userId: world.ana.userId }, world.ana.call)).profile!;
  const post = (await mesh.feed.post.client.getPost({ postId: world.anaPost }, world.ana.call)).post!;
  const messages = (await chat.listMessages({ conversationId: world.conversationId }, world.ana.call)).messages;
  const feed = (await mesh.feed.client.getHomeFeed({}, world.ana.call)).items.map((item) => item.post?.postId);
  const group = (await chat.getConversation({ conversationId: world.groupId }, world.ana.call)).conversation!;
  const likes = (await notifications.listNotifications({}, world.ana.call)).groups.filter((g) => g.kind === Kind.LIKE && g.postId === world.anaPost);
  return {
    followers: profile.followerCount,
    following: profile.followingCount,
    likes: post.likeCount,
    likeGroups: likes.map((g) => ({ actors: g.actorCount, count: g.notificationCount, sample: g.sampleActorIds })),
    comments: post.commentCount,
    messages: messages.map((m) => ({ seq: m.seq, sender: m.senderId, text: m.text, deleted: m.deletedAt !== undefined, reactions: m.reactions.length })),
    feed,
    groupMembers: group.members.map((m) => ({ userId: m.userId, role: m.role })),
    groupMessages: (await chat.listMessages({ conversationId: world.groupId }, world.ana.call)).messages.map((m) => ({ sender: m.senderId, text: m.text })),
  };
}

test.serial("deleting an account leaves nothing of it in any service; followers' feeds drop its posts; the other user's data stays; a replay changes nothing", async (t) => {
  const world = await befriend();
  const { ana, ben } = world;

  // The scan finds Ben in every service that holds user data (so an empty scan later means something).
  t.deepEqual(places(await leftoversOf(ben.userId)), ["audit", "auth", "chat", "feed", "media", "moderation", "notification", "posts", "s3:exports", "s3:media", "users"]);

  // Set by chat when Ana wrote to Ben (a kept answer is never under a missing version).
  const versionBefore = await mesh.user.service.cache.get(reachVersionKey(ben.userId));
  t.not(versionBefore, null);
  await mesh.auth.client.deleteAccount({ proof: { case: "password", value: password } }, ben.call);
  t.is(await mesh.auth.service.purgeDueDeletions(), 1);

  let left: string[] = [];
  await eventually("nothing of Ben anywhere", async () => (left = await leftoversOf(ben.userId)).length === 0, 90_000).catch(() => undefined);
  t.deepEqual(left, [], "nothing of the deleted account in any schema or bucket");
  // Ana wrote to Ben, so chat kept "Ana may write to Ben"; the purge bumps Ben's reach version and ends it.
  await eventually("Ben's reach version bumped", async () => (await mesh.user.service.cache.get(reachVersionKey(ben.userId))) !== versionBefore, 30_000);
  const toGhost = await rejection(chat.sendMessage({ clientMessageId: crypto.randomUUID(), text: "still there?", target: { case: "directUserId", value: ben.userId } }, ana.call));
  t.is(toGhost.code, Code.NotFound, "no direct message to a deleted account");
  t.true((await leftoversOf(ana.userId)).length > 0, "the scan still finds the user who stays");
  t.true((await leftoversOf(ana.userId)).some((where) => where.startsWith("moderation.reports.reporter_id")), "Ana's report about Ben stays hers");
  const chain = await verifyAuditChain();
  t.true(chain.intact && chain.checked > 0n, "the audit chain verifies after the erasure");

  const view = await anasView(world);
  t.false(view.feed.includes(world.benPost), "Ana's feed no longer shows Ben's post");
  t.false((await mesh.feed.timeline(ana.userId))?.includes(world.benPost) ?? false, "nor does her cached timeline");
  t.true(view.feed.includes(world.anaPost));
  t.is(await mesh.feed.timeline(ben.userId), null, "Ben's own timeline is gone from Redis");
  t.is(view.followers, 0n, "Ben no longer follows Ana");
  t.is(view.following, 0n, "Ana no longer follows Ben");
  t.is(view.likes, 1n, "Ben's like is gone from Ana's post, Carl's stays");
  t.deepEqual(view.likeGroups, [{ actors: 1, count: 1, sample: [world.carl.userId] }], "Ana's like notifications are recounted without Ben");
  t.is(view.comments, 0n, "Ben's comment is gone from Ana's post");
  // The conversation keeps its sequence: Ben's message is a tombstone without sender or text; Ana's is untouched (but Ben's reaction went).
  t.deepEqual(view.messages.filter((m) => m.seq === world.benSeq || m.seq === world.anaSeq).sort((a, b) => Number(a.seq - b.seq)), [
    { seq: world.benSeq, sender: "00000000-0000-0000-0000-000000000000", text: "", deleted: true, reactions: 0 },
    { seq: world.anaSeq, sender: ana.userId, text: "hi ben", deleted: false, reactions: 0 },
  ]);
  t.deepEqual(view.groupMembers, [{ userId: ana.userId, role: MemberRole.OWNER }], "Ana inherits Ben's group");
  t.false(view.groupMessages.some((m) => m.text !== "" && m.sender !== ana.userId), "nothing Ben wrote in the group is left to read");
  const anaNotifications = await count(mesh.notification.database, sql`select count(*)::int as n from notification.notifications where recipient_id = ${ana.userId}::uuid`);

  // Replaying the final event (same event id, and as a fresh one) changes nothing. A marker deletion
  // for a third account rides the same key, so the same partitions: once it is applied, so are the replays.
  const [row] = rowsOf(
    await mesh.auth.service.database.db.execute(sql`select payload, headers from auth.outbox_events where key = ${ben.userId} and type = 'aviary.events.v1.AccountDeleted'`),
  );
  const payload = row?.["payload"] as Uint8Array;
  const headers = row?.["headers"] as Record<string, string>;
  t.is(fromBinary(AccountDeletedSchema, payload).userId, ben.userId);
  const dora = await mesh.user.signUp({ label: "dora" });
  // Her registration in the audit log first: it rides another key, and must not land after her erasure.
  await eventually("Dora in the audit log", async () => (await leftoversOf(dora.userId)).some((where) => where.startsWith("audit.")), 60_000);
  const marker = { ...fromBinary(AccountDeletedSchema, payload), userId: dora.userId };
  const { toBinary } = await import("@bufbuild/protobuf");
  await mesh.auth.service.bus.publish([
    { topic: authEventsTopic, key: ben.userId, value: payload, headers },
    { topic: authEventsTopic, key: ben.userId, value: payload, headers: { ...headers, "event-id": crypto.randomUUID() } },
    { topic: authEventsTopic, key: ben.userId, value: toBinary(AccountDeletedSchema, marker), headers: { ...headers, "event-id": crypto.randomUUID() } },
  ]);
  await eventually("the marker purged (so the replays before it were applied)", async () => (await leftoversOf(dora.userId)).every((where) => where.startsWith("auth.")), 90_000);
  t.deepEqual(await leftoversOf(ben.userId), []);
  t.deepEqual(await anasView(world), view);
  t.is(await count(mesh.notification.database, sql`select count(*)::int as n from notification.notifications where recipient_id = ${ana.userId}::uuid`), anaNotifications);
});
