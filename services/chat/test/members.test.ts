// Group changes after creation: add, remove, leave, rename and role
// changes each take one entry of the sequence and reach every current
// member's stream (and a removed member's, once); removed members hear and
// see nothing more; later members see history from their join; the owner's
// leaving hands ownership on; who may do what; the 256 cap; bad input.
import test, { type ExecutionContext } from "ava";
import { Code } from "@connectrpc/connect";
import { MemberRole, type Conversation } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { rejection, startTestChat, violatedFields, type Signed, type StreamWatch, type TestChat } from "./harness.ts";

let c: TestChat;
// The tests that compare table counts run serially (nothing else writes meanwhile).

test.before(async () => {
  c = await startTestChat();
});
test.after.always(async () => {
  await c?.close();
});

const say = (from: Signed, conversationId: string, text: string) =>
  c.client.sendMessage({ target: { case: "conversationId", value: conversationId }, clientMessageId: crypto.randomUUID(), text }, from.call);

async function group(owner: Signed, others: Signed[], title = "Group"): Promise<string> {
  const { conversation } = await c.client.createGroup({ title, memberIds: others.map((o) => o.userId) }, owner.call);
  return conversation!.conversationId;
}

/** The conversation changes a stream received for this conversation, in arrival order. */
const changes = (watch: StreamWatch, conversationId: string): Conversation[] =>
  watch.events.flatMap((e) => (e.payload.case === "chatConversation" && e.payload.value.conversationId === conversationId ? [e.payload.value] : []));

const roleOf = (conversation: Conversation | undefined, userId: string) => conversation?.members.find((m) => m.userId === userId)?.role;
const entries = async (conversationId: string) => (await c.query<{ n: number }>("select count(*)::int as n from chat.entries where conversation_id = $1", [conversationId]))[0]!.n;

async function isGone(t: ExecutionContext, who: Signed, conversationId: string) {
  t.is((await rejection(c.client.getConversation({ conversationId }, who.call))).code, Code.NotFound);
  t.is((await rejection(c.client.listMessages({ conversationId }, who.call))).code, Code.NotFound);
  t.is((await rejection(say(who, conversationId, "still here?"))).code, Code.NotFound);
  t.false((await c.client.listConversations({}, who.call)).conversations.some((x) => x.conversationId === conversationId));
}

test("add, rename, role, remove, leave: one entry each, on every current member's stream, the removed told once", async (t) => {
  const [owner, ann, bob, cid] = await Promise.all([c.signUp(), c.signUp(), c.signUp(), c.signUp()]);
  const streams = await Promise.all([owner, ann, bob, cid].map((p) => c.watchStream(p.userId)));
  const [ownerS, annS, bobS, cidS] = streams as [StreamWatch, StreamWatch, StreamWatch, StreamWatch];
  const id = await group(owner, [ann]);

  const added = await c.client.addMembers({ conversationId: id, userIds: [bob.userId, cid.userId] }, owner.call);
  t.is(added.conversation?.lastSeq, 2n);
  t.deepEqual(added.conversation?.lastMessage?.membership?.addedUserIds, [bob.userId, cid.userId]);
  t.is(added.conversation?.members.length, 4);

  const renamed = await c.client.updateConversation({ conversationId: id, title: "Renamed" }, owner.call);
  t.is(renamed.conversation?.title, "Renamed");
  t.is(renamed.conversation?.lastMessage?.membership?.title, "Renamed");
  t.is(renamed.conversation?.lastSeq, 3n);

  const promoted = await c.client.setMemberRole({ conversationId: id, userId: ann.userId, role: MemberRole.ADMIN }, owner.call);
  t.is(roleOf(promoted.conversation, ann.userId), MemberRole.ADMIN);
  t.deepEqual(promoted.conversation?.lastMessage?.membership?.roleChanges.map((r) => [r.userId, r.role]), [[ann.userId, MemberRole.ADMIN]]);

  const removed = await c.client.removeMember({ conversationId: id, userId: bob.userId }, ann.call);
  t.deepEqual(removed.conversation?.lastMessage?.membership?.removedUserIds, [bob.userId]);
  t.is(removed.conversation?.members.length, 3);

  await c.client.leaveConversation({ conversationId: id }, cid.call);
  t.is(await entries(id), 6);

  // Seq 1..6 reached each member while they were in: owner and Ann all six, Bob 1..5 (his removal once), Cid 2..6.
  const seqsOf = (s: StreamWatch) => changes(s, id).map((x) => Number(x.lastSeq));
  await c.until("every change on every stream", () => seqsOf(ownerS).length >= 6 && seqsOf(annS).length >= 6 && seqsOf(bobS).length >= 4 && seqsOf(cidS).length >= 5);
  t.deepEqual(seqsOf(ownerS), [1, 2, 3, 4, 5, 6]);
  t.deepEqual(seqsOf(annS), [1, 2, 3, 4, 5, 6]);
  t.deepEqual(seqsOf(bobS), [2, 3, 4, 5]);
  t.deepEqual(seqsOf(cidS), [2, 3, 4, 5, 6]);
  // The removal told Bob he is out; after it he hears nothing.
  t.false(changes(bobS, id).at(-1)!.members.some((m) => m.userId === bob.userId));
  await say(owner, id, "after the changes");
  await c.until("the message reached the members", () => ownerS.messages().some((m) => m.conversationId === id) && annS.messages().some((m) => m.conversationId === id));
  t.false(bobS.messages().some((m) => m.conversationId === id));
  t.false(cidS.messages().some((m) => m.conversationId === id));
  await isGone(t, bob, id);
  await isGone(t, cid, id);
  await Promise.all(streams.map((s) => s.stop()));
});

test("a member added later sees history from their join on; a removed member re-added starts again", async (t) => {
  const [owner, ann, late] = await Promise.all([c.signUp(), c.signUp(), c.signUp()]);
  const id = await group(owner, [ann]);
  await say(ann, id, "before you came");
  const { conversation } = await c.client.addMembers({ conversationId: id, userIds: [late.userId] }, owner.call);
  await say(owner, id, "welcome");
  t.is(conversation?.members.find((m) => m.userId === late.userId)?.joinedSeq, 3n);
  const history = await c.client.listMessages({ conversationId: id }, late.call);
  t.deepEqual(
    history.messages.map((m) => Number(m.seq)),
    [4, 3],
  );
  t.false(history.messages.some((m) => m.text === "before you came"));
  // The welcome is unread for them; their own join is not.
  t.is((await c.client.getConversation({ conversationId: id }, late.call)).conversation?.unreadCount, 1n);

  await c.client.removeMember({ conversationId: id, userId: late.userId }, owner.call);
  await say(owner, id, "while you were out");
  const again = await c.client.addMembers({ conversationId: id, userIds: [late.userId] }, owner.call);
  t.is(again.conversation?.members.find((m) => m.userId === late.userId)?.joinedSeq, 7n);
  t.is(roleOf(again.conversation, late.userId), MemberRole.MEMBER);
  t.deepEqual(
    (await c.client.listMessages({ conversationId: id }, late.call)).messages.map((m) => Number(m.seq)),
    [7],
  );
});

test("the owner leaving hands ownership to the longest-standing admin, else member; the last one leaves an empty group", async (t) => {
  const [owner, ann, bob, cid] = await Promise.all([c.signUp(), c.signUp(), c.signUp(), c.signUp()]);
  const id = await group(owner, [ann]);
  await c.client.addMembers({ conversationId: id, userIds: [bob.userId] }, owner.call);
  await c.client.addMembers({ conversationId: id, userIds: [cid.userId] }, owner.call);
  // Cid is the admin, though Ann and Bob have been in longer.
  await c.client.setMemberRole({ conversationId: id, userId: cid.userId, role: MemberRole.ADMIN }, owner.call);
  await c.client.leaveConversation({ conversationId: id }, owner.call);
  const afterOwner = (await c.client.getConversation({ conversationId: id }, ann.call)).conversation;
  t.is(roleOf(afterOwner, cid.userId), MemberRole.OWNER);
  t.deepEqual(afterOwner?.lastMessage?.membership?.removedUserIds, [owner.userId]);
  t.deepEqual(afterOwner?.lastMessage?.membership?.roleChanges.map((r) => [r.userId, r.role]), [[cid.userId, MemberRole.OWNER]]);
  await isGone(t, owner, id);

  // No admin left: the longest-standing member (Ann, in since the creation) takes over.
  await c.client.leaveConversation({ conversationId: id }, cid.call);
  t.is(roleOf((await c.client.getConversation({ conversationId: id }, bob.call)).conversation, ann.userId), MemberRole.OWNER);
  await c.client.leaveConversation({ conversationId: id }, ann.call);
  t.is(roleOf((await c.client.getConversation({ conversationId: id }, bob.call)).conversation, bob.userId), MemberRole.OWNER);
  await c.client.leaveConversation({ conversationId: id }, bob.call);
  const rows = await c.query<{ n: number }>("select count(*)::int as n from chat.members where conversation_id = $1 and left_at is null", [id]);
  t.is(rows[0]!.n, 0);
  t.is(await entries(id), 8);
});

test.serial("role rules: members change nothing, admins manage members but not the owner or admins, only the owner sets roles", async (t) => {
  const [owner, admin, admin2, member, outsider, extra] = await Promise.all(Array.from({ length: 6 }, () => c.signUp()));
  const id = await group(owner!, [admin!, admin2!, member!]);
  await c.client.setMemberRole({ conversationId: id, userId: admin!.userId, role: MemberRole.ADMIN }, owner!.call);
  await c.client.setMemberRole({ conversationId: id, userId: admin2!.userId, role: MemberRole.ADMIN }, owner!.call);
  const before = await c.counts();
  const denied = async (call: Promise<unknown>) => t.is((await rejection(call)).code, Code.PermissionDenied);
  await denied(c.client.addMembers({ conversationId: id, userIds: [extra!.userId] }, member!.call));
  await denied(c.client.removeMember({ conversationId: id, userId: admin!.userId }, member!.call));
  await denied(c.client.updateConversation({ conversationId: id, title: "mine" }, member!.call));
  await denied(c.client.setMemberRole({ conversationId: id, userId: admin!.userId, role: MemberRole.MEMBER }, member!.call));
  await denied(c.client.removeMember({ conversationId: id, userId: owner!.userId }, admin!.call));
  await denied(c.client.removeMember({ conversationId: id, userId: admin2!.userId }, admin!.call));
  await denied(c.client.setMemberRole({ conversationId: id, userId: member!.userId, role: MemberRole.ADMIN }, admin!.call));
  // An outsider: NOT_FOUND, exactly as for a random id.
  for (const call of [
    (x: string) => c.client.addMembers({ conversationId: x, userIds: [extra!.userId] }, outsider!.call),
    (x: string) => c.client.removeMember({ conversationId: x, userId: member!.userId }, outsider!.call),
    (x: string) => c.client.leaveConversation({ conversationId: x }, outsider!.call),
    (x: string) => c.client.updateConversation({ conversationId: x, title: "x" }, outsider!.call),
    (x: string) => c.client.setMemberRole({ conversationId: x, userId: member!.userId, role: MemberRole.ADMIN }, outsider!.call),
  ]) {
    const [real, missing] = [await rejection(call(id)), await rejection(call(crypto.randomUUID()))];
    t.is(real.code, Code.NotFound);
    t.is(real.rawMessage, missing.rawMessage);
  }
  // A setting that changes nothing writes nothing.
  await c.client.setMemberRole({ conversationId: id, userId: admin!.userId, role: MemberRole.ADMIN }, owner!.call);
  await c.client.updateConversation({ conversationId: id, title: "Group" }, owner!.call);
  t.deepEqual(await c.counts(), before);

  // Admins manage plain members and the title; the owner removes an admin.
  await c.client.addMembers({ conversationId: id, userIds: [extra!.userId] }, admin!.call);
  await c.client.removeMember({ conversationId: id, userId: extra!.userId }, admin!.call);
  await c.client.updateConversation({ conversationId: id, title: "By admin" }, admin!.call);
  await c.client.removeMember({ conversationId: id, userId: admin2!.userId }, owner!.call);
  // Handing ownership on makes the former owner an admin, in one entry.
  const handed = await c.client.setMemberRole({ conversationId: id, userId: member!.userId, role: MemberRole.OWNER }, owner!.call);
  t.is(roleOf(handed.conversation, member!.userId), MemberRole.OWNER);
  t.is(roleOf(handed.conversation, owner!.userId), MemberRole.ADMIN);
  t.is(handed.conversation?.lastMessage?.membership?.roleChanges.length, 2);
  await denied(c.client.setMemberRole({ conversationId: id, userId: admin!.userId, role: MemberRole.MEMBER }, owner!.call));
  // A member of a direct conversation cannot change it.
  const { message } = await c.client.sendMessage({ target: { case: "directUserId", value: extra!.userId }, clientMessageId: crypto.randomUUID(), text: "hi" }, owner!.call);
  const direct = message!.conversationId;
  t.is((await rejection(c.client.leaveConversation({ conversationId: direct }, owner!.call))).code, Code.FailedPrecondition);
  t.is((await rejection(c.client.addMembers({ conversationId: direct, userIds: [admin!.userId] }, owner!.call))).code, Code.FailedPrecondition);
  t.is((await rejection(c.client.updateConversation({ conversationId: direct, title: "x" }, owner!.call))).code, Code.FailedPrecondition);
});

test.serial("a group holds at most 256 members, also when two adds race for the last place", async (t) => {
  const [owner, a, b] = await Promise.all([c.signUp(), c.signUp(), c.signUp()]);
  const id = await group(owner, []);
  // 254 more members straight in the table (they need not exist for the cap): 255 in all.
  await c.query("insert into chat.members (conversation_id, user_id, role, joined_seq) select $1, gen_random_uuid(), 'member', 1 from generate_series(1, 254)", [id]);
  const before = await c.counts();
  const full = await rejection(c.client.addMembers({ conversationId: id, userIds: [a.userId, b.userId] }, owner.call));
  t.is(full.code, Code.InvalidArgument);
  t.deepEqual(violatedFields(full), ["user_ids"]);
  t.deepEqual(await c.counts(), before);
  // Two adds at once for the last place: the lock orders them, and the second finds the group full.
  const raced = await Promise.allSettled([a, b].map((who) => c.client.addMembers({ conversationId: id, userIds: [who.userId] }, owner.call)));
  t.is(raced.filter((r) => r.status === "fulfilled").length, 1);
  const lost = raced.find((r) => r.status === "rejected");
  t.deepEqual(violatedFields(await rejection(Promise.reject(lost?.reason))), ["user_ids"]);
  t.is((await c.client.getConversation({ conversationId: id }, owner.call)).conversation?.members.length, 256);
  t.is(await entries(id), 2);
});

test.serial("bad input: field-level INVALID_ARGUMENT and nothing written", async (t) => {
  const [owner, ann, bob, blocker] = await Promise.all([c.signUp(), c.signUp(), c.signUp(), c.signUp()]);
  const id = await group(owner, [ann]);
  await c.user.client.block({ userId: owner.userId }, blocker.call);
  const before = await c.counts();
  const refused = async (call: Promise<unknown>) => {
    const error = await rejection(call);
    t.is(error.code, Code.InvalidArgument);
    return violatedFields(error);
  };
  const add = (userIds: string[], conversationId = id) => c.client.addMembers({ conversationId, userIds }, owner.call);
  t.deepEqual(await refused(add([])), ["user_ids"]);
  t.deepEqual(await refused(add([bob.userId], "not-a-uuid")), ["conversation_id"]);
  t.deepEqual(await refused(add([bob.userId, "nope"])), ["user_ids[1]"]);
  t.deepEqual(await refused(add([bob.userId, bob.userId])), ["user_ids[1]"]);
  t.deepEqual(await refused(add([owner.userId])), ["user_ids[0]"]);
  t.deepEqual(await refused(add([bob.userId, ann.userId])), ["user_ids[1]"]);
  t.deepEqual(await refused(add([crypto.randomUUID(), blocker.userId])), ["user_ids[0]", "user_ids[1]"]);
  t.deepEqual(await refused(add(Array.from({ length: 256 }, () => crypto.randomUUID()))), ["user_ids"]);
  t.deepEqual(await refused(c.client.removeMember({ conversationId: id, userId: owner.userId }, owner.call)), ["user_id"]);
  t.deepEqual(await refused(c.client.removeMember({ conversationId: id, userId: "x" }, owner.call)), ["user_id"]);
  t.deepEqual(await refused(c.client.updateConversation({ conversationId: id, title: "   " }, owner.call)), ["title"]);
  t.deepEqual(await refused(c.client.updateConversation({ conversationId: id, title: "x".repeat(101) }, owner.call)), ["title"]);
  t.deepEqual(await refused(c.client.setMemberRole({ conversationId: id, userId: ann.userId, role: MemberRole.UNSPECIFIED }, owner.call)), ["role"]);
  t.deepEqual(await refused(c.client.setMemberRole({ conversationId: id, userId: owner.userId, role: MemberRole.ADMIN }, owner.call)), ["user_id"]);
  // A user who is not a member: NOT_FOUND on the member.
  t.is((await rejection(c.client.removeMember({ conversationId: id, userId: bob.userId }, owner.call))).code, Code.NotFound);
  t.is((await rejection(c.client.setMemberRole({ conversationId: id, userId: bob.userId, role: MemberRole.ADMIN }, owner.call))).code, Code.NotFound);
  t.deepEqual(await c.counts(), before);
});
