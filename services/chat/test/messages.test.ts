// What happens to a message after it is sent: the sender edits it (same
// seq, edited_at, one event on every member's stream who can see it) or
// deletes it (a tombstone keeps its place); members react from a fixed set,
// a few each; messages carry media the sender uploaded (checked with the
// real media service as the sender); groups carry an avatar and a history
// visibility. Non-members get NOT_FOUND as for a random id; bad input is
// refused field by field with nothing written.
import test from "ava";
import { Code, type ConnectError } from "@connectrpc/connect";
import { HistoryVisibility, ListMessagesRequest_Direction, MemberRole, type Message } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { MediaPurpose } from "@aviary/gen/aviary/media/v1/media_pb";
import type { Event } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import { PreconditionFailureSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { rejection, startTestChat, violatedFields, type Signed, type StreamWatch, type TestChat } from "./harness.ts";

let c: TestChat;
// The tests that compare table counts run serially (nothing else writes meanwhile).

test.before(async () => {
  // Without the fast path: `marker` below is a barrier only while a message
  // cannot overtake the edits, deletes and reactions before it, which the
  // fast path allows (services/chat/README.md, Delivery; its own ordering is
  // fast-path.test.ts's). With it on, a marker overtook reactions in a CI run.
  c = await startTestChat({ CHAT_FAST_DELIVERY: "false" }, { media: true });
});
test.after.always(async () => {
  await c?.close();
});

const say = async (from: Signed, conversationId: string, text: string, attachmentMediaIds: string[] = []): Promise<Message> =>
  (await c.client.sendMessage({ target: { case: "conversationId", value: conversationId }, clientMessageId: crypto.randomUUID(), text, attachmentMediaIds }, from.call)).message!;

async function group(owner: Signed, others: Signed[], historyVisibility = HistoryVisibility.UNSPECIFIED): Promise<string> {
  const { conversation } = await c.client.createGroup({ title: "Group", memberIds: others.map((o) => o.userId), historyVisibility }, owner.call);
  return conversation!.conversationId;
}

/** Every table the features write, for "nothing was written". */
async function written() {
  const [row] = await c.query<{ n: number }>("select count(*)::int as n from chat.reactions");
  return { ...(await c.counts()), reactions: row!.n };
}

/** The same for one conversation (for tests that run alongside others). */
async function writtenFor(conversationId: string) {
  const [row] = await c.query<{ entries: number; outbox: number; reactions: number; edited: string | null }>(
    `select (select count(*) from chat.entries where conversation_id = $1)::int as entries, (select count(*) from chat.outbox_events where key = $1::text)::int as outbox,
            (select count(*) from chat.reactions where conversation_id = $1)::int as reactions, (select max(edited_at)::text from chat.entries where conversation_id = $1) as edited`,
    [conversationId],
  );
  return row!;
}

const payloads = <K extends NonNullable<Event["payload"]["case"]>>(watch: StreamWatch, kind: K) =>
  watch.events.flatMap((e) => (e.payload.case === kind ? [e.payload.value as Extract<Event["payload"], { case: K }>["value"]] : []));

const preconditionType = (error: ConnectError) => error.findDetails(PreconditionFailureSchema)[0]?.violations[0]?.type;

/** Waits until every stream got a message of `conversationId` with `text`: earlier events of that conversation have all arrived before it (one key, in order, with CHAT_FAST_DELIVERY off). */
async function marker(from: Signed, conversationId: string, streams: StreamWatch[]): Promise<void> {
  const text = `marker ${crypto.randomUUID()}`;
  await say(from, conversationId, text);
  await c.until("the marker on every stream", () => streams.every((s) => s.messages().some((m) => m.text === text)));
}

test("the sender edits within the window: same seq, edited_at, history shows it, every member who can see it is told once", async (t) => {
  const [owner, ann, late] = await Promise.all([c.signUp(), c.signUp(), c.signUp()]);
  const streams = await Promise.all([owner, ann, late].map((p) => c.watchStream(p.userId)));
  const [ownerS, annS, lateS] = streams as [StreamWatch, StreamWatch, StreamWatch];
  const id = await group(owner, [ann]);
  const sent = await say(owner, id, "see you at 7");
  // Added after the message: from-join history does not show it, so its edit is not theirs to hear.
  await c.client.addMembers({ conversationId: id, userIds: [late.userId] }, owner.call);

  const { message: edited } = await c.client.editMessage({ conversationId: id, seq: sent.seq, text: "see you at 8" }, owner.call);
  t.is(edited?.seq, sent.seq);
  t.is(edited?.messageId, sent.messageId);
  t.is(edited?.text, "see you at 8");
  t.truthy(edited?.editedAt);
  const [inHistory] = (await c.client.listMessages({ conversationId: id, anchorSeq: sent.seq + 1n, pageSize: 1 }, ann.call)).messages;
  t.like(inHistory, { seq: sent.seq, text: "see you at 8" });
  t.truthy(inHistory?.editedAt);

  // The same text again writes nothing and announces nothing.
  const before = await writtenFor(id);
  const again = await c.client.editMessage({ conversationId: id, seq: sent.seq, text: "see you at 8" }, owner.call);
  t.is(again.message?.text, "see you at 8");
  t.deepEqual(await writtenFor(id), before);

  await marker(ann, id, [ownerS, annS, lateS]);
  const edits = (s: StreamWatch) => payloads(s, "chatMessageEdited").filter((m) => m.conversationId === id);
  t.deepEqual(edits(ownerS).map((m) => [m.seq, m.text]), [[sent.seq, "see you at 8"]]);
  t.deepEqual(edits(annS).map((m) => [m.seq, m.text]), [[sent.seq, "see you at 8"]]);
  t.deepEqual(edits(lateS), []);
  // A durable item: it has an offset, like the message it changes.
  t.true(annS.offsets[annS.events.findIndex((e) => e.payload.case === "chatMessageEdited")]! > 0);
  await Promise.all(streams.map((s) => s.stop()));
});

test.serial("only the sender edits or deletes; others get PERMISSION_DENIED and nothing is written", async (t) => {
  const [owner, ann] = await Promise.all([c.signUp(), c.signUp()]);
  const id = await group(owner, [ann]);
  const sent = await say(ann, id, "mine");
  const before = await written();
  // Not even the group's owner.
  t.is((await rejection(c.client.editMessage({ conversationId: id, seq: sent.seq, text: "theirs" }, owner.call))).code, Code.PermissionDenied);
  t.is((await rejection(c.client.deleteMessage({ conversationId: id, seq: sent.seq }, owner.call))).code, Code.PermissionDenied);
  t.deepEqual(await written(), before);
  t.is((await c.client.listMessages({ conversationId: id }, owner.call)).messages[0]?.text, "mine");
});

test.serial("delete: a tombstone keeps its seq in history and the conversation list, content and reactions gone; twice is one event", async (t) => {
  const [owner, ann] = await Promise.all([c.signUp(), c.signUp()]);
  const [ownerS, annS] = await Promise.all([c.watchStream(owner.userId), c.watchStream(ann.userId)]);
  const id = await group(owner, [ann]);
  const photo = await c.upload(ann, { purpose: MediaPurpose.POST });
  const sent = await say(ann, id, "a photo", [photo]);
  await c.client.addReaction({ conversationId: id, seq: sent.seq, reaction: "👍" }, owner.call);
  const unread = async () => (await c.client.getConversation({ conversationId: id }, owner.call)).conversation?.unreadCount;
  t.is(await unread(), 1n);

  const { message: tombstone } = await c.client.deleteMessage({ conversationId: id, seq: sent.seq }, ann.call);
  t.like(tombstone, { seq: sent.seq, messageId: sent.messageId, senderId: ann.userId, text: "", attachments: [], reactions: [] });
  t.truthy(tombstone?.deletedAt);
  const history = (await c.client.listMessages({ conversationId: id }, owner.call)).messages;
  t.deepEqual(history.map((m) => Number(m.seq)), [2, 1], "gapless: the tombstone keeps its place");
  t.like(history[0], { seq: sent.seq, text: "", attachments: [], reactions: [] });
  t.truthy(history[0]?.deletedAt);
  const listed = (await c.client.listConversations({}, owner.call)).conversations.find((x) => x.conversationId === id);
  t.like(listed?.lastMessage, { seq: sent.seq, text: "" });
  t.truthy(listed?.lastMessage?.deletedAt);
  t.is(await unread(), 0n, "a tombstone is nothing to read");
  t.is((await c.query<{ n: number }>("select count(*)::int as n from chat.reactions where conversation_id = $1", [id]))[0]!.n, 0);
  const [row] = await c.query<{ text: string | null; attachments: unknown }>("select text, attachments from chat.entries where conversation_id = $1 and seq = $2", [id, Number(sent.seq)]);
  t.deepEqual(row, { text: null, attachments: null });

  // Deleting again: the same tombstone, nothing written, no second event.
  const before = await written();
  const twice = await c.client.deleteMessage({ conversationId: id, seq: sent.seq }, ann.call);
  t.is(twice.message?.deletedAt?.seconds, tombstone?.deletedAt?.seconds);
  t.deepEqual(await written(), before);
  // A tombstone takes no edit and no reaction.
  const edit = await rejection(c.client.editMessage({ conversationId: id, seq: sent.seq, text: "undo" }, ann.call));
  t.is(edit.code, Code.FailedPrecondition);
  t.is(preconditionType(edit), "MESSAGE_DELETED");
  const react = await rejection(c.client.addReaction({ conversationId: id, seq: sent.seq, reaction: "👍" }, owner.call));
  t.is(react.code, Code.FailedPrecondition);
  t.is(preconditionType(react), "MESSAGE_DELETED");
  t.deepEqual(await written(), before);

  await marker(owner, id, [ownerS, annS]);
  for (const s of [ownerS, annS]) {
    const deletions = payloads(s, "chatMessageDeleted").filter((m) => m.conversationId === id);
    t.is(deletions.length, 1);
    t.like(deletions[0], { seq: sent.seq, text: "", attachments: [] });
  }
  await Promise.all([ownerS.stop(), annS.stop()]);
});

test.serial("reactions: from the allowed set, idempotent both ways, at most 3 per member, counts with the reader's own in history", async (t) => {
  const [owner, ann, bob] = await Promise.all([c.signUp(), c.signUp(), c.signUp()]);
  const bobS = await c.watchStream(bob.userId);
  const id = await group(owner, [ann, bob]);
  const sent = await say(owner, id, "vote");
  const key = { conversationId: id, seq: sent.seq };
  const add = (who: Signed, reaction: string) => c.client.addReaction({ ...key, reaction }, who.call);
  const remove = (who: Signed, reaction: string) => c.client.removeReaction({ ...key, reaction }, who.call);
  const counts = (m: Message | undefined) => m?.reactions.map((r) => [r.reaction, r.count, r.reacted]);

  t.deepEqual(counts((await add(ann, "👍")).message), [["👍", 1, true]]);
  // Once more: nothing written.
  let before = await written();
  t.deepEqual(counts((await add(ann, "👍")).message), [["👍", 1, true]]);
  t.deepEqual(await written(), before);
  // The heart without its variation selector is the same reaction.
  await add(bob, "❤");
  t.deepEqual(counts((await add(bob, "👍")).message), [["👍", 2, true], ["❤️", 1, true]]);
  const [forAnn] = (await c.client.listMessages({ conversationId: id, pageSize: 1 }, ann.call)).messages;
  t.deepEqual(counts(forAnn), [["👍", 2, true], ["❤️", 1, false]], "each reader sees their own");

  await add(ann, "😂");
  await add(ann, "❤️");
  before = await written();
  const limit = await rejection(add(ann, "🙏"));
  t.is(limit.code, Code.FailedPrecondition);
  t.is(preconditionType(limit), "TOO_MANY_REACTIONS");
  const unknown = await rejection(add(ann, "🦄"));
  t.is(unknown.code, Code.InvalidArgument);
  t.deepEqual(violatedFields(unknown), ["reaction"]);
  t.deepEqual(violatedFields(await rejection(remove(ann, "🦄"))), ["reaction"]);
  // A membership entry is no message: nothing there to react to.
  t.is((await rejection(c.client.addReaction({ conversationId: id, seq: 1n, reaction: "👍" }, ann.call))).code, Code.NotFound);
  t.deepEqual(await written(), before);

  // Taking one back makes room; taking back one you do not have writes nothing.
  t.deepEqual(counts((await remove(ann, "👍")).message), [["👍", 1, false], ["❤️", 2, true], ["😂", 1, true]]);
  before = await written();
  await remove(ann, "👍");
  await remove(owner, "🙏");
  t.deepEqual(await written(), before);
  t.deepEqual(counts((await add(ann, "🙏")).message), [["👍", 1, false], ["❤️", 2, true], ["😂", 1, true], ["🙏", 1, true]]);
  const listed = (await c.client.getConversation({ conversationId: id }, bob.call)).conversation;
  t.deepEqual(counts(listed?.lastMessage), [["👍", 1, true], ["❤️", 2, true], ["😂", 1, false], ["🙏", 1, false]]);

  // Every change that wrote something reached Bob once, in order, with the counts after it (no one's `reacted`).
  await marker(owner, id, [bobS]);
  const changes = payloads(bobS, "chatReaction").filter((r) => r.conversationId === id);
  t.deepEqual(
    changes.map((r) => [r.userId === ann.userId ? "ann" : "bob", r.reaction, r.added]),
    [["ann", "👍", true], ["bob", "❤️", true], ["bob", "👍", true], ["ann", "😂", true], ["ann", "❤️", true], ["ann", "👍", false], ["ann", "🙏", true]],
  );
  t.deepEqual(counts({ reactions: changes.at(-1)!.reactions } as Message), [["👍", 1, false], ["❤️", 2, false], ["😂", 1, false], ["🙏", 1, false]]);
  t.true(changes.every((r) => r.seq === sent.seq && r.messageId === sent.messageId));
  await bobS.stop();
});

test.serial("attachments: the sender's own confirmed uploads are sent and shown; foreign, unknown, unconfirmed, avatar, repeated or too many refuse the send on the field", async (t) => {
  const [ana, ben] = await Promise.all([c.signUp(), c.signUp()]);
  const id = await group(ana, [ben]);
  const [mine, second, bens, pending, avatar] = await Promise.all([
    c.upload(ana, { purpose: MediaPurpose.POST }),
    c.upload(ana, { purpose: MediaPurpose.POST }),
    c.upload(ben, { purpose: MediaPurpose.POST }),
    c.upload(ana, { purpose: MediaPurpose.POST, confirm: false }),
    c.upload(ana, { purpose: MediaPurpose.AVATAR }),
  ]);
  const sent = await say(ana, id, "", [mine, second]);
  t.is(sent.text, "");
  t.deepEqual(
    sent.attachments.map((a) => [a.mediaId, a.contentType, a.sizeBytes > 0n]),
    [
      [mine, "image/png", true],
      [second, "image/png", true],
    ],
  );
  const [shown] = (await c.client.listMessages({ conversationId: id, pageSize: 1 }, ben.call)).messages;
  t.deepEqual(shown?.attachments.map((a) => a.mediaId), [mine, second]);

  const before = await written();
  const lastSeq = async () => (await c.client.getConversation({ conversationId: id }, ana.call)).conversation?.lastSeq;
  const seqBefore = await lastSeq();
  const refused = async (ids: string[], text = "look") => {
    const error = await rejection(say(ana, id, text, ids));
    t.is(error.code, Code.InvalidArgument);
    return violatedFields(error);
  };
  t.deepEqual(await refused([mine, bens]), ["attachment_media_ids[1]"], "someone else's upload");
  t.deepEqual(await refused([crypto.randomUUID()]), ["attachment_media_ids[0]"], "an id that was never uploaded");
  t.deepEqual(await refused([mine, second, pending]), ["attachment_media_ids[2]"], "an upload never confirmed");
  t.deepEqual(await refused([avatar]), ["attachment_media_ids[0]"], "made for an avatar");
  t.deepEqual(await refused([mine, mine]), ["attachment_media_ids[1]"], "listed twice");
  t.deepEqual(await refused(Array.from({ length: 11 }, () => mine)), ["attachment_media_ids"], "more than 10");
  t.deepEqual(await refused(["not-a-uuid"]), ["attachment_media_ids[0]"]);
  t.deepEqual(await refused([], ""), ["text"], "no text and no media");
  t.deepEqual(await written(), before);
  t.is(await lastSeq(), seqBefore, "the sequence did not move");
  t.deepEqual((await c.client.listMessages({ conversationId: id, pageSize: 1 }, ana.call)).messages[0]?.messageId, sent.messageId);
  // A message with media may lose its caption by an edit; one without may not.
  t.is((await c.client.editMessage({ conversationId: id, seq: sent.seq, text: "" }, ana.call)).message?.text, "");
  const plain = await say(ana, id, "words");
  t.deepEqual(violatedFields(await rejection(c.client.editMessage({ conversationId: id, seq: plain.seq, text: "" }, ana.call))), ["text"]);
});

test("history visibility: FROM_JOIN shows a later member their part, FULL all of it; owners and admins switch it, recorded in an entry", async (t) => {
  const [owner, ann, late, later] = await Promise.all([c.signUp(), c.signUp(), c.signUp(), c.signUp()]);
  const fromJoin = await group(owner, [ann]);
  const full = await group(owner, [ann], HistoryVisibility.FULL);
  t.is((await c.client.getConversation({ conversationId: fromJoin }, owner.call)).conversation?.historyVisibility, HistoryVisibility.FROM_JOIN);
  t.is((await c.client.getConversation({ conversationId: full }, owner.call)).conversation?.historyVisibility, HistoryVisibility.FULL);
  const early = await say(ann, full, "before you came");
  const hidden = await say(ann, fromJoin, "before you came");
  await c.client.addMembers({ conversationId: fromJoin, userIds: [late.userId] }, owner.call);
  await c.client.addMembers({ conversationId: full, userIds: [late.userId] }, owner.call);
  // Changes to a message reach the members who can see it: in the FULL group the later member too.
  const lateS = await c.watchStream(late.userId);
  await c.client.editMessage({ conversationId: full, seq: early.seq, text: "before you came!" }, ann.call);
  await c.client.editMessage({ conversationId: fromJoin, seq: hidden.seq, text: "before you came!" }, ann.call);
  await marker(owner, fromJoin, [lateS]);
  await marker(owner, full, [lateS]);
  t.deepEqual(payloads(lateS, "chatMessageEdited").map((m) => m.conversationId), [full]);
  await lateS.stop();
  const seqs = async (id: string, who: Signed) => (await c.client.listMessages({ conversationId: id, direction: ListMessagesRequest_Direction.AFTER }, who.call)).messages.map((m) => Number(m.seq));
  t.deepEqual(await seqs(fromJoin, late), [3, 4]);
  t.deepEqual(await seqs(full, late), [1, 2, 3, 4]);
  // Seeing older history is not having it unread: unread counts start at the join (only the marker counts).
  t.is((await c.client.getConversation({ conversationId: full }, late.call)).conversation?.unreadCount, 1n);
  // In a FULL group the older messages are there to answer and react to.
  await c.client.addReaction({ conversationId: full, seq: early.seq, reaction: "👍" }, late.call);
  await c.client.sendMessage({ target: { case: "conversationId", value: full }, clientMessageId: crypto.randomUUID(), text: "hi", replyToSeq: early.seq }, late.call);
  t.is((await rejection(c.client.addReaction({ conversationId: fromJoin, seq: 2n, reaction: "👍" }, late.call))).code, Code.NotFound);

  // A member cannot switch it; an admin can, and one entry records it.
  t.is((await rejection(c.client.updateConversation({ conversationId: fromJoin, historyVisibility: HistoryVisibility.FULL }, ann.call))).code, Code.PermissionDenied);
  await c.client.setMemberRole({ conversationId: fromJoin, userId: ann.userId, role: MemberRole.ADMIN }, owner.call);
  const switched = await c.client.updateConversation({ conversationId: fromJoin, historyVisibility: HistoryVisibility.FULL }, ann.call);
  t.is(switched.conversation?.historyVisibility, HistoryVisibility.FULL);
  t.like(switched.conversation?.lastMessage?.membership, { actorId: ann.userId, historyVisibility: HistoryVisibility.FULL, avatarChanged: false, title: "" });
  t.deepEqual(await seqs(fromJoin, late), [1, 2, 3, 4, 5, 6]);
  // Setting what it already is writes nothing.
  const before = await writtenFor(fromJoin);
  await c.client.updateConversation({ conversationId: fromJoin, historyVisibility: HistoryVisibility.FULL }, ann.call);
  t.deepEqual(await writtenFor(fromJoin), before);
  // And back: members see from their join again, also those who join later.
  await c.client.updateConversation({ conversationId: fromJoin, historyVisibility: HistoryVisibility.FROM_JOIN }, owner.call);
  await c.client.addMembers({ conversationId: fromJoin, userIds: [later.userId] }, owner.call);
  t.deepEqual(await seqs(fromJoin, late), [3, 4, 5, 6, 7, 8]);
  t.deepEqual(await seqs(fromJoin, later), [8]);
});

test.serial("group avatar: set at creation and by UpdateConversation from the caller's avatar uploads, removed with \"\", refused otherwise", async (t) => {
  const [owner, ann] = await Promise.all([c.signUp(), c.signUp()]);
  const [avatar, next, annsAvatar, postImage] = await Promise.all([
    c.upload(owner, { purpose: MediaPurpose.AVATAR }),
    c.upload(owner, { purpose: MediaPurpose.AVATAR }),
    c.upload(ann, { purpose: MediaPurpose.AVATAR }),
    c.upload(owner, { purpose: MediaPurpose.POST }),
  ]);
  const { conversation } = await c.client.createGroup({ title: "With a face", memberIds: [ann.userId], avatarMediaId: avatar }, owner.call);
  t.is(conversation?.avatarMediaId, avatar);
  const id = conversation!.conversationId;

  const changed = await c.client.updateConversation({ conversationId: id, avatarMediaId: next, title: "New face" }, owner.call);
  t.like(changed.conversation, { avatarMediaId: next, title: "New face", lastSeq: 2n });
  t.like(changed.conversation?.lastMessage?.membership, { avatarChanged: true, avatarMediaId: next, title: "New face" });
  const removed = await c.client.updateConversation({ conversationId: id, avatarMediaId: "" }, owner.call);
  t.like(removed.conversation, { avatarMediaId: "", title: "New face", lastSeq: 3n });
  t.like(removed.conversation?.lastMessage?.membership, { avatarChanged: true, avatarMediaId: "" });
  t.is((await c.client.getConversation({ conversationId: id }, ann.call)).conversation?.avatarMediaId, "");

  const before = await c.counts();
  const refused = async (call: Promise<unknown>) => {
    const error = await rejection(call);
    t.is(error.code, Code.InvalidArgument);
    return violatedFields(error);
  };
  for (const bad of [annsAvatar, postImage, crypto.randomUUID()]) {
    t.deepEqual(await refused(c.client.updateConversation({ conversationId: id, avatarMediaId: bad }, owner.call)), ["avatar_media_id"]);
    t.deepEqual(await refused(c.client.createGroup({ title: "x", memberIds: [], avatarMediaId: bad }, owner.call)), ["avatar_media_id"]);
  }
  t.deepEqual(await refused(c.client.updateConversation({ conversationId: id, avatarMediaId: "nope" }, owner.call)), ["avatar_media_id"]);
  t.deepEqual(await refused(c.client.createGroup({ title: "x", memberIds: [], avatarMediaId: "nope" }, owner.call)), ["avatar_media_id"]);
  t.deepEqual(await c.counts(), before);
});

test("a block in a direct conversation stops edits and new reactions, either way; deleting and taking back still work", async (t) => {
  const [ana, ben] = await Promise.all([c.signUp(), c.signUp()]);
  const { message } = await c.client.sendMessage({ target: { case: "directUserId", value: ben.userId }, clientMessageId: crypto.randomUUID(), text: "hi" }, ana.call);
  const key = { conversationId: message!.conversationId, seq: message!.seq };
  await c.client.addReaction({ ...key, reaction: "👍" }, ben.call);
  await c.user.client.block({ userId: ana.userId }, ben.call);
  const before = await writtenFor(key.conversationId);
  for (const call of [
    c.client.editMessage({ ...key, text: "hi again" }, ana.call),
    c.client.addReaction({ ...key, reaction: "😂" }, ana.call),
    c.client.addReaction({ ...key, reaction: "❤️" }, ben.call),
  ]) {
    const error = await rejection(call);
    t.is(error.code, Code.FailedPrecondition);
    t.is(preconditionType(error), "BLOCKED");
  }
  t.deepEqual(await writtenFor(key.conversationId), before);
  t.deepEqual((await c.client.removeReaction({ ...key, reaction: "👍" }, ben.call)).message?.reactions, []);
  t.truthy((await c.client.deleteMessage(key, ana.call)).message?.deletedAt);
});

test.serial("non-members get NOT_FOUND for every new RPC, as for a random id; an unknown seq is NOT_FOUND on the message", async (t) => {
  const [ana, ben, eve] = await Promise.all([c.signUp(), c.signUp(), c.signUp()]);
  const id = await group(ana, [ben]);
  const sent = await say(ana, id, "private");
  const before = await written();
  const calls = [
    (x: string, who: Signed, seq: bigint) => c.client.editMessage({ conversationId: x, seq, text: "mine now" }, who.call),
    (x: string, who: Signed, seq: bigint) => c.client.deleteMessage({ conversationId: x, seq }, who.call),
    (x: string, who: Signed, seq: bigint) => c.client.addReaction({ conversationId: x, seq, reaction: "👍" }, who.call),
    (x: string, who: Signed, seq: bigint) => c.client.removeReaction({ conversationId: x, seq, reaction: "👍" }, who.call),
  ];
  for (const call of calls) {
    const [real, missing] = [await rejection(call(id, eve, sent.seq)), await rejection(call(crypto.randomUUID(), eve, sent.seq))];
    t.is(real.code, Code.NotFound);
    t.is(real.rawMessage, missing.rawMessage);
    // A member naming a seq with no message.
    const noMessage = await rejection(call(id, ana, 99n));
    t.is(noMessage.code, Code.NotFound);
    t.is(noMessage.rawMessage, "no such message");
  }
  t.deepEqual(await written(), before);
});

test.serial("bad input: field-level INVALID_ARGUMENT and nothing written", async (t) => {
  const [ana, ben] = await Promise.all([c.signUp(), c.signUp()]);
  const id = await group(ana, [ben]);
  const sent = await say(ana, id, "hello");
  const before = await written();
  const refused = async (call: Promise<unknown>) => {
    const error = await rejection(call);
    t.is(error.code, Code.InvalidArgument);
    return violatedFields(error);
  };
  const seq = sent.seq;
  t.deepEqual(await refused(c.client.editMessage({ conversationId: "not-a-uuid", seq, text: "x" }, ana.call)), ["conversation_id"]);
  t.deepEqual(await refused(c.client.editMessage({ conversationId: id, seq: 0n, text: "x" }, ana.call)), ["seq"]);
  t.deepEqual(await refused(c.client.editMessage({ conversationId: id, seq, text: "  " }, ana.call)), ["text"]);
  t.deepEqual(await refused(c.client.editMessage({ conversationId: id, seq, text: "x".repeat(4001) }, ana.call)), ["text"]);
  t.deepEqual(await refused(c.client.deleteMessage({ conversationId: "nope", seq }, ana.call)), ["conversation_id"]);
  t.deepEqual(await refused(c.client.deleteMessage({ conversationId: id, seq: 0n }, ana.call)), ["seq"]);
  t.deepEqual(await refused(c.client.addReaction({ conversationId: "nope", seq, reaction: "👍" }, ana.call)), ["conversation_id"]);
  t.deepEqual(await refused(c.client.addReaction({ conversationId: id, seq, reaction: "" }, ana.call)), ["reaction"]);
  t.deepEqual(await refused(c.client.addReaction({ conversationId: id, seq, reaction: "thumbs up" }, ana.call)), ["reaction"]);
  t.deepEqual(await refused(c.client.removeReaction({ conversationId: id, seq: 0n, reaction: "👍" }, ana.call)), ["seq"]);
  t.deepEqual(await refused(c.client.updateConversation({ conversationId: id }, ana.call)), ["title"]);
  t.deepEqual(await refused(c.client.updateConversation({ conversationId: id, historyVisibility: 7 as HistoryVisibility }, ana.call)), ["history_visibility"]);
  t.deepEqual(await refused(c.client.createGroup({ title: "x", memberIds: [], historyVisibility: 7 as HistoryVisibility }, ana.call)), ["history_visibility"]);
  t.deepEqual(await written(), before);
});
