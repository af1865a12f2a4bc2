// Chat message pushes: a ChatMessageSent on the chat topic (the suite's own
// CHAT_EVENTS_TOPIC, published here by hand, as the chat service would) becomes one push per device of
// every member but the sender, collapsed per conversation, with the
// message's text; never listed; blocks and push preferences honoured; a
// redelivered event pushes nothing twice.
import test from "ava";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ConversationKind } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { ChatMessageDeletedSchema, ChatMessageEditedSchema, ChatMessageSentSchema, ChatReactionChangedSchema } from "@aviary/gen/aviary/events/v1/chat_events_pb";
import { Kind } from "@aviary/gen/aviary/notification/v1/notification_pb";
import { attachmentsPreview, messagePreview, messagePushBody } from "../src/domain/push-text.ts";
import { webPushId, startTestNotification, type Signed, type TestNotification } from "./harness.ts";
import { webPushTopic } from "../src/push/webpush.ts";

let n: TestNotification;
/** The suite's chat topic (the harness's CHAT_EVENTS_TOPIC): the service reads it for pushes. */
const chatTopic = () => n.env["CHAT_EVENTS_TOPIC"]!;

interface Sent {
  eventId: string;
  conversationId: string;
  seq: number;
}

let seqs = 0;

/** Publishes a ChatMessageSent as the chat service would (keyed by conversation); `eventId` to redeliver one. */
async function send(
  conversationId: string,
  sender: Signed,
  members: readonly Signed[],
  text: string,
  options: { title?: string; eventId?: string; seq?: number } = {},
): Promise<Sent> {
  const seq = options.seq ?? ++seqs;
  const eventId = await n.publish(
    chatTopic(),
    conversationId,
    ChatMessageSentSchema,
    {
      message: {
        conversationId,
        seq: BigInt(seq),
        messageId: crypto.randomUUID(),
        senderId: sender.userId,
        clientMessageId: crypto.randomUUID(),
        text,
        createdAt: timestampFromDate(new Date()),
      },
      memberIds: members.map((m) => m.userId),
      kind: options.title === undefined ? ConversationKind.DIRECT : ConversationKind.GROUP,
      title: options.title ?? "",
    },
    options.eventId,
  );
  return { eventId, conversationId, seq };
}

async function named(label: string): Promise<Signed> {
  const account = await n.signUp();
  const username = `${label}${Math.random().toString(36).slice(2, 8)}`;
  await n.post.user.client.updateProfile({ username, displayName: label[0]!.toUpperCase() + label.slice(1) }, account.call);
  return { ...account, identity: username };
}

type ApnsBody = { aps: { alert: { title: string; body: string }; badge?: number }; kind?: string; conversation_id?: string; notification_id?: string };
const apnsBodies = (token: string) => n.apns.requestsFor(token).map((r) => r.body as ApnsBody);

test.before(async () => {
  n = await startTestNotification();
  // The chat subscription starts at the end of the topic: wait until it reads (a probe pushed), publishing a probe until one arrives.
  const [probeSender, probe] = await Promise.all([n.signUp(), n.signUp()]);
  const { token } = await n.registerDevice(probe, "ios");
  const conversationId = crypto.randomUUID();
  const deadline = Date.now() + 60_000;
  while (n.apns.requestsFor(token).length === 0) {
    if (Date.now() > deadline) throw new Error("the chat subscription never pushed a probe");
    await send(conversationId, probeSender, [probeSender, probe], "probe");
    const until = Date.now() + 3_000;
    while (n.apns.requestsFor(token).length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  }
});
test.after.always(async () => {
  await n?.close();
});

test("push text: the sender's name and the first 100 characters; groups name the conversation", (t) => {
  t.is(messagePushBody("Ana", "hi", ""), "Ana: hi");
  t.is(messagePushBody("Ana", "hi", "Weekend"), "Ana in Weekend: hi");
  t.is(messagePreview("  hello\n\nthere  "), "hello there");
  t.is(messagePreview("x".repeat(100)), "x".repeat(100));
  t.is(attachmentsPreview(["image/png"]), "📷 Photo");
  t.is(attachmentsPreview(["video/mp4", "video/quicktime"]), "🎥 2 videos");
  t.is(attachmentsPreview(["image/png", "video/mp4"]), "📎 2 attachments");
  t.is(attachmentsPreview([]), "");
  t.is(messagePreview("x".repeat(101)), `${"x".repeat(100)}…`);
  // Code points, not UTF-16 units: an emoji is never cut in half.
  t.is(messagePreview("😀".repeat(120)), `${"😀".repeat(100)}…`);
});

test("a direct message: one push per device of the recipient (collapse key = the conversation, 'Ana: …'), none to the sender, nothing listed", async (t) => {
  const [ana, bob] = await Promise.all([named("ana"), n.signUp()]);
  const anaIos = await n.registerDevice(ana, "ios");
  const ios = await n.registerDevice(bob, "ios");
  const android = await n.registerDevice(bob, "android");
  const web = await n.registerDevice(bob, "web");
  const conversationId = crypto.randomUUID();
  const text = `${"0123456789".repeat(15)} end`;
  await send(conversationId, ana, [ana, bob], text);

  const webId = webPushId(n.webPush, web.token);
  await n.until("one push on each of Bob's devices", async () => n.apns.requestsFor(ios.token).length === 1 && n.fcm.requestsFor(android.token).length === 1 && n.webPush.requestsFor(webId).length === 1);
  const expected = `Ana: ${messagePreview(text)}`;
  t.true(expected.endsWith("…") && expected.length === "Ana: ".length + 101);
  const [apns] = n.apns.requestsFor(ios.token);
  t.is(apns!.headers["apns-collapse-id"], conversationId);
  t.like(apns!.body, { aps: { alert: { body: expected } }, kind: "message", conversation_id: conversationId });
  const [fcm] = n.fcm.requestsFor(android.token);
  t.like(fcm!.body, { message: { android: { collapse_key: conversationId }, notification: { body: expected } } });
  const [webRequest] = n.webPush.requestsFor(webId);
  t.is(webRequest!.topic, webPushTopic(conversationId));
  t.is((JSON.parse(webRequest!.payload ?? "{}") as { body?: string }).body, expected);

  // Push only: nothing in anyone's list or badge, and the sender's device got nothing.
  t.deepEqual((await n.client.listNotifications({}, bob.call)).groups, []);
  t.is((await n.client.getUnreadCount({}, bob.call)).unreadCount, 0n);
  t.deepEqual((await n.client.listNotifications({ kinds: [Kind.MESSAGE] }, bob.call)).groups, []);
  t.is(n.apns.requestsFor(anaIos.token).length, 0);
  const rows = await n.query<{ c: string }>("select count(*)::text as c from notification.notifications where recipient_id = $1", [bob.userId]);
  t.is(rows[0]?.c, "0");
});

test("a group message: every member but the sender, 'Ana in <title>: …', one banner per conversation; blocks and push-off honoured; a redelivery pushes nothing twice", async (t) => {
  const [ana, bob, cy, dee, eve] = await Promise.all([named("ana"), n.signUp(), n.signUp(), n.signUp(), n.signUp()]);
  const anaDevice = await n.registerDevice(ana, "ios");
  const bobDevice = await n.registerDevice(bob, "ios");
  const bobAndroid = await n.registerDevice(bob, "android");
  const cyDevice = await n.registerDevice(cy, "ios");
  const deeDevice = await n.registerDevice(dee, "ios");
  const eveDevice = await n.registerDevice(eve, "ios");
  // Dee switched message pushes off; Eve blocked Ana. The block goes straight into the service's
  // projection (what UserBlocked writes, notifications.test.ts): the event consumer's group replays
  // every suite's events first, and the chat subscription must not wait for that here.
  await n.client.updatePreferences({ kinds: [{ kind: Kind.MESSAGE, inApp: true, push: false }] }, dee.call);
  await n.query("insert into notification.blocks (blocker_id, blocked_id) values ($1, $2)", [eve.userId, ana.userId]);

  const members = [ana, bob, cy, dee, eve];
  const conversationId = crypto.randomUUID();
  const first = await send(conversationId, ana, members, "dinner at 8?", { title: "Weekend" });
  // The same event again (a redelivery), then a second message: once that one is pushed, the duplicate was handled (same key, in order).
  await send(conversationId, ana, members, "dinner at 8?", { title: "Weekend", eventId: first.eventId, seq: first.seq });
  await send(conversationId, ana, members, "or 9", { title: "Weekend" });

  await n.until("both messages pushed to Bob and Cy", async () => apnsBodies(bobDevice.token).length >= 2 && apnsBodies(cyDevice.token).length >= 2 && n.fcm.requestsFor(bobAndroid.token).length >= 2);
  for (const device of [bobDevice, cyDevice]) {
    t.deepEqual(
      apnsBodies(device.token).map((b) => b.aps.alert.body),
      ["Ana in Weekend: dinner at 8?", "Ana in Weekend: or 9"],
      "one push per message, the redelivery pushed nothing",
    );
    t.true(n.apns.requestsFor(device.token).every((r) => r.headers["apns-collapse-id"] === conversationId));
    t.true(apnsBodies(device.token).every((b) => (b.aps as { "thread-id"?: string })["thread-id"] === conversationId && b.conversation_id === conversationId));
  }
  t.deepEqual(
    n.fcm.requestsFor(bobAndroid.token).map((r) => (r.body as { message: { android: { collapse_key: string } } }).message.android.collapse_key),
    [conversationId, conversationId],
  );
  t.is(n.apns.requestsFor(anaDevice.token).length, 0, "not the sender");
  t.is(n.apns.requestsFor(deeDevice.token).length, 0, "message pushes switched off");
  t.is(n.apns.requestsFor(eveDevice.token).length, 0, "the sender is blocked");
  // Nothing listed for anyone.
  for (const member of members) t.deepEqual((await n.client.listNotifications({}, member.call)).groups, []);
});

test("only-from-following does not silence messages (a conversation is the recipient's own); a membership entry or an empty text pushes nothing", async (t) => {
  const [ana, bob] = await Promise.all([named("ana"), n.signUp()]);
  const device = await n.registerDevice(bob, "ios");
  await n.client.updatePreferences({ onlyFromFollowing: true }, bob.call);
  const conversationId = crypto.randomUUID();
  await n.publish(chatTopic(), conversationId, ChatMessageSentSchema, {
    message: { conversationId, seq: 1n, messageId: crypto.randomUUID(), senderId: ana.userId, membership: { actorId: ana.userId, addedUserIds: [bob.userId] }, createdAt: timestampFromDate(new Date()) },
    memberIds: [ana.userId, bob.userId],
    kind: ConversationKind.GROUP,
    title: "New",
  });
  await send(conversationId, ana, [ana, bob], "", { title: "New", seq: 2 });
  await send(conversationId, ana, [ana, bob], "welcome", { title: "New", seq: 3 });
  await n.until("the message's push", async () => apnsBodies(device.token).length >= 1);
  t.deepEqual(
    apnsBodies(device.token).map((b) => b.aps.alert.body),
    ["Ana in New: welcome"],
  );
});

test("a message of media only pushes what it carries; edits, deletions and reactions on the chat topic push nothing", async (t) => {
  const [ana, bob] = await Promise.all([named("ana"), n.signUp()]);
  const device = await n.registerDevice(bob, "ios");
  const conversationId = crypto.randomUUID();
  const members = [ana.userId, bob.userId];
  const photo = (seq: bigint) => ({ conversationId, seq, messageId: crypto.randomUUID(), senderId: ana.userId, text: "", attachments: [{ mediaId: crypto.randomUUID(), contentType: "image/png", sizeBytes: 10n }], createdAt: timestampFromDate(new Date()) });
  await n.publish(chatTopic(), conversationId, ChatMessageSentSchema, { message: photo(1n), memberIds: members, kind: ConversationKind.DIRECT });
  // What the chat service publishes for a message after it was sent: none of it is news to push.
  await n.publish(chatTopic(), conversationId, ChatMessageEditedSchema, { message: { ...photo(1n), text: "our cat", editedAt: timestampFromDate(new Date()) }, memberIds: members });
  await n.publish(chatTopic(), conversationId, ChatReactionChangedSchema, { change: { conversationId, seq: 1n, messageId: crypto.randomUUID(), userId: bob.userId, reaction: "👍", added: true }, memberIds: members });
  await n.publish(chatTopic(), conversationId, ChatMessageDeletedSchema, { message: { ...photo(1n), attachments: [], deletedAt: timestampFromDate(new Date()) }, memberIds: members });
  // Once this one is pushed, everything before it on the key was handled (in order).
  await send(conversationId, ana, [ana, bob], "last", { seq: 2 });
  await n.until("the last message's push", async () => apnsBodies(device.token).length >= 2);
  t.deepEqual(
    apnsBodies(device.token).map((b) => b.aps.alert.body),
    ["Ana: 📷 Photo", "Ana: last"],
  );
});
