// Who may do what, and what is refused: non-members see NOT_FOUND exactly
// like a random id, blocks stop direct messages both ways and group adds,
// bad input is refused field by field with nothing written, sends are rate
// limited, and typing reaches live members only.
import test from "ava";
import { Code } from "@connectrpc/connect";
import { RetryInfoSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { rejection, startTestChat, violatedFields, type Signed, type TestChat } from "./harness.ts";

let c: TestChat;
// The tests that compare table counts run serially (nothing else writes meanwhile).

test.before(async () => {
  // Low, so the limit is quick to reach; every other test sends fewer than 8 per user.
  c = await startTestChat({ CHAT_SEND_RATE: "8/1m" });
});
test.after.always(async () => {
  await c?.close();
});

const text = (value: string) => ({ clientMessageId: crypto.randomUUID(), text: value });
const toUser = (userId: string) => ({ case: "directUserId" as const, value: userId });
const toConversation = (conversationId: string) => ({ case: "conversationId" as const, value: conversationId });

async function direct(a: Signed, b: Signed): Promise<string> {
  const { message } = await c.client.sendMessage({ target: toUser(b.userId), ...text("hello") }, a.call);
  return message!.conversationId;
}

/** The same code, message and details as for an id that never existed. */
async function sameAsMissing(t: import("ava").ExecutionContext, call: (conversationId: string) => Promise<unknown>, conversationId: string) {
  const real = await rejection(call(conversationId));
  const missing = await rejection(call(crypto.randomUUID()));
  t.is(real.code, Code.NotFound);
  t.is(missing.code, Code.NotFound);
  t.is(real.rawMessage, missing.rawMessage);
}

test.serial("a non-member cannot read, send, mark read or type, and gets NOT_FOUND as for a random id", async (t) => {
  const [ana, ben, eve] = await Promise.all([c.signUp(), c.signUp(), c.signUp()]);
  const conversationId = await direct(ana, ben);
  const before = await c.counts();
  await sameAsMissing(t, (id) => c.client.getConversation({ conversationId: id }, eve.call), conversationId);
  await sameAsMissing(t, (id) => c.client.listMessages({ conversationId: id }, eve.call), conversationId);
  await sameAsMissing(t, (id) => c.client.sendMessage({ target: toConversation(id), ...text("let me in") }, eve.call), conversationId);
  await sameAsMissing(t, (id) => c.client.markRead({ conversationId: id, readSeq: 1n }, eve.call), conversationId);
  await sameAsMissing(t, (id) => c.client.setTyping({ conversationId: id }, eve.call), conversationId);
  t.deepEqual(await c.counts(), before);
  t.false((await c.client.listConversations({}, eve.call)).conversations.some((x) => x.conversationId === conversationId));
});

test.serial("blocked users cannot DM, in both directions, and cannot be added to a group", async (t) => {
  const [ana, ben, cat] = await Promise.all([c.signUp(), c.signUp(), c.signUp()]);
  const existing = await direct(ana, ben);
  // Both have written, so chat keeps both "may write" answers (reach-answers.ts): the block must end them at once.
  await c.client.sendMessage({ target: toConversation(existing), ...text("hi ana") }, ben.call);
  await c.user.client.block({ userId: ben.userId }, ana.call);
  const before = await c.counts();
  // A new direct message: the other user does not exist for either side.
  t.is((await rejection(c.client.sendMessage({ target: toUser(ben.userId), ...text("hi") }, ana.call))).code, Code.NotFound);
  t.is((await rejection(c.client.sendMessage({ target: toUser(ana.userId), ...text("hi") }, ben.call))).code, Code.NotFound);
  // The existing conversation stays readable, but not writable.
  t.is((await rejection(c.client.sendMessage({ target: toConversation(existing), ...text("hi") }, ana.call))).code, Code.FailedPrecondition);
  t.is((await rejection(c.client.sendMessage({ target: toConversation(existing), ...text("hi") }, ben.call))).code, Code.FailedPrecondition);
  t.is((await c.client.listMessages({ conversationId: existing }, ben.call)).messages.length, 2);
  // Groups: neither the blocker nor the blocked can add the other.
  t.deepEqual(violatedFields(await rejection(c.client.createGroup({ title: "g", memberIds: [cat.userId, ben.userId] }, ana.call))), ["member_ids[1]"]);
  t.deepEqual(violatedFields(await rejection(c.client.createGroup({ title: "g", memberIds: [ana.userId] }, ben.call))), ["member_ids[0]"]);
  t.deepEqual(await c.counts(), before);
  // A new direct message to a user who does not exist at all looks the same.
  t.is((await rejection(c.client.sendMessage({ target: toUser(crypto.randomUUID()), ...text("hi") }, ana.call))).code, Code.NotFound);

  // Unblocked, both write again; blocked the other way round right after, neither can.
  await c.user.client.unblock({ userId: ben.userId }, ana.call);
  await c.client.sendMessage({ target: toConversation(existing), ...text("sorry") }, ana.call);
  await c.client.sendMessage({ target: toConversation(existing), ...text("ok") }, ben.call);
  await c.user.client.block({ userId: ana.userId }, ben.call);
  t.is((await rejection(c.client.sendMessage({ target: toConversation(existing), ...text("hm") }, ana.call))).code, Code.FailedPrecondition);
  t.is((await rejection(c.client.sendMessage({ target: toConversation(existing), ...text("bye") }, ben.call))).code, Code.FailedPrecondition);
  t.is((await rejection(c.client.sendMessage({ target: toUser(ben.userId), ...text("hi") }, ana.call))).code, Code.NotFound);
  t.is((await c.client.listMessages({ conversationId: existing }, ana.call)).messages.length, 4);
});

test.serial("a retry gets its original even when a new send would be refused: after a block, after a removal", async (t) => {
  const [ana, ben, cat] = await Promise.all([c.signUp(), c.signUp(), c.signUp()]);
  const conversationId = await direct(ana, ben);
  const toBen = { target: toConversation(conversationId), ...text("before the block") };
  const sent = await c.client.sendMessage(toBen, ana.call);
  const { conversation } = await c.client.createGroup({ title: "retries", memberIds: [cat.userId] }, ana.call);
  const group = conversation!.conversationId;
  const inGroup = { target: toConversation(group), ...text("before the removal") };
  const catSent = await c.client.sendMessage(inGroup, cat.call);
  await c.user.client.block({ userId: ana.userId }, ben.call);
  await c.client.removeMember({ conversationId: group, userId: cat.userId }, ana.call);
  const before = await c.counts();
  const retried = await c.client.sendMessage(toBen, ana.call);
  t.false(retried.created);
  t.is(retried.message?.messageId, sent.message?.messageId);
  const catRetried = await c.client.sendMessage(inGroup, cat.call);
  t.false(catRetried.created);
  t.is(catRetried.message?.messageId, catSent.message?.messageId);
  // New sends are refused, and nothing was written by any of these.
  t.is((await rejection(c.client.sendMessage({ target: toConversation(conversationId), ...text("after") }, ana.call))).code, Code.FailedPrecondition);
  await sameAsMissing(t, (id) => c.client.sendMessage({ target: toConversation(id), ...text("after") }, cat.call), group);
  t.deepEqual(await c.counts(), before);
});

test.serial("bad input: field-level INVALID_ARGUMENT and nothing written", async (t) => {
  const [ana, ben, cat] = await Promise.all([c.signUp(), c.signUp(), c.signUp()]);
  const mine = await direct(ana, ben);
  const other = await direct(ana, cat);
  const before = await c.counts();
  const refused = async (call: Promise<unknown>) => {
    const error = await rejection(call);
    t.is(error.code, Code.InvalidArgument);
    return violatedFields(error);
  };
  t.deepEqual(await refused(c.client.sendMessage({ target: toConversation(mine), ...text("x".repeat(4001)) }, ana.call)), ["text"]);
  t.deepEqual(await refused(c.client.sendMessage({ target: toConversation(mine), ...text(" \n\t ") }, ana.call)), ["text"]);
  t.deepEqual(await refused(c.client.sendMessage({ target: toConversation("not-a-uuid"), ...text("hi") }, ana.call)), ["conversation_id"]);
  t.deepEqual(await refused(c.client.sendMessage({ target: toUser(ben.userId), clientMessageId: "nope", text: "hi" }, ana.call)), ["client_message_id"]);
  t.deepEqual(await refused(c.client.sendMessage({ target: toUser(ana.userId), ...text("me") }, ana.call)), ["direct_user_id"]);
  // Seq 1 exists, but in another conversation (and seq 9 in none).
  await c.client.sendMessage({ target: toConversation(other), ...text("second") }, ana.call);
  const during = await c.counts();
  t.deepEqual(await refused(c.client.sendMessage({ target: toConversation(mine), ...text("re"), replyToSeq: 2n }, ana.call)), ["reply_to_seq"]);
  t.deepEqual(await refused(c.client.sendMessage({ target: toConversation(mine), ...text("re"), replyToSeq: 9n }, ana.call)), ["reply_to_seq"]);
  t.deepEqual(await c.counts(), during);
  t.is((await c.client.getConversation({ conversationId: mine }, ana.call)).conversation?.lastSeq, 1n);

  const many = Array.from({ length: 256 }, () => crypto.randomUUID());
  t.deepEqual(await refused(c.client.createGroup({ title: "big", memberIds: many }, ana.call)), ["member_ids"]);
  t.deepEqual(await refused(c.client.createGroup({ title: "dup", memberIds: [ben.userId, cat.userId, ben.userId] }, ana.call)), ["member_ids[2]"]);
  t.deepEqual(await refused(c.client.createGroup({ title: "self", memberIds: [ana.userId] }, ana.call)), ["member_ids[0]"]);
  t.deepEqual(await refused(c.client.createGroup({ title: "ghost", memberIds: [ben.userId, crypto.randomUUID()] }, ana.call)), ["member_ids[1]"]);
  t.deepEqual(await refused(c.client.createGroup({ title: "  ", memberIds: [ben.userId] }, ana.call)), ["title"]);
  t.deepEqual(await refused(c.client.createGroup({ title: "x".repeat(101), memberIds: [ben.userId] }, ana.call)), ["title"]);
  t.deepEqual(await refused(c.client.createGroup({ title: "bad id", memberIds: ["nope"] }, ana.call)), ["member_ids[0]"]);
  t.deepEqual(await refused(c.client.listMessages({ conversationId: mine, pageSize: 101 }, ana.call)), ["page_size"]);
  t.deepEqual(await refused(c.client.listConversations({ pageToken: "forged.token" }, ana.call)), ["page_token"]);
  const after = await c.counts();
  t.is(after.entries, before.entries + 1);
  t.is(after.conversations, before.conversations);
  t.is(after.members, before.members);
});

test("sends past the per-user rate are RESOURCE_EXHAUSTED with retry info; retries of a sent message still answer", async (t) => {
  const [ana, ben] = await Promise.all([c.signUp(), c.signUp()]);
  const first = { target: toUser(ben.userId), ...text("1") };
  const { message } = await c.client.sendMessage(first, ana.call);
  // By conversation id: the service knows the conversation from the first send (no lookup first).
  const second = { target: toConversation(message!.conversationId), ...text("2") };
  const sent = await c.client.sendMessage(second, ana.call);
  for (let i = 3; i <= 8; i++) await c.client.sendMessage({ target: toUser(ben.userId), ...text(String(i)) }, ana.call);
  const limited = await rejection(c.client.sendMessage({ target: toUser(ben.userId), ...text("9") }, ana.call));
  t.is(limited.code, Code.ResourceExhausted);
  const [retry] = limited.findDetails(RetryInfoSchema);
  t.true(Number(retry?.retryDelay?.seconds) > 0);
  t.is((await rejection(c.client.sendMessage({ target: toConversation(message!.conversationId), ...text("9") }, ana.call))).code, Code.ResourceExhausted);
  t.false((await c.client.sendMessage(first, ana.call)).created);
  const again = await c.client.sendMessage(second, ana.call);
  t.false(again.created);
  t.is(again.message?.messageId, sent.message?.messageId);
  // Ben has his own window.
  t.true((await c.client.sendMessage({ target: toUser(ana.userId), ...text("hi") }, ben.call)).created);
});

test("typing reaches a live member, not the typer, and is coalesced", async (t) => {
  const [ana, ben, cat] = await Promise.all([c.signUp(), c.signUp(), c.signUp()]);
  const { conversation } = await c.client.createGroup({ title: "typing", memberIds: [ben.userId, cat.userId] }, ana.call);
  const conversationId = conversation!.conversationId;
  const [anaStream, benStream, catStream] = await Promise.all([c.watchStream(ana.userId), c.watchStream(ben.userId), c.watchStream(cat.userId)]);
  // Ana and Ben hold live streams; Cat does not (onlyLive: she gets nothing).
  const live = [ana, ben].map((p) => ({ userId: p.userId, sessionId: p.sessionId, connectionId: crypto.randomUUID() }));
  for (const connection of live) await c.hub.connect(connection, 120_000);
  const typing = (watch: typeof anaStream) => watch.events.filter((e) => e.payload.case === "chatTyping");

  const answer = await c.client.setTyping({ conversationId }, ana.call);
  t.is(answer.expiresInSeconds, 5);
  await c.client.setTyping({ conversationId }, ana.call);
  await c.until("Ben sees Ana typing", () => typing(benStream).length > 0);
  // Let a later signal prove the earlier ones have all arrived: Ben types too (Ana sees it).
  await c.client.setTyping({ conversationId }, ben.call);
  await c.until("Ana sees Ben typing", () => typing(anaStream).length > 0);
  const [signal] = typing(benStream);
  t.like(signal?.payload.value, { conversationId, userId: ana.userId, expiresInSeconds: 5 });
  t.is(typing(benStream).length, 1, "two calls within a second: one signal");
  t.is(benStream.offsets[benStream.events.indexOf(signal!)], 0, "ephemeral: no offset");
  t.false(typing(anaStream).some((e) => e.payload.case === "chatTyping" && e.payload.value.userId === ana.userId));
  t.is(typing(catStream).length, 0);
  for (const connection of live) await c.hub.disconnect(connection);
  await Promise.all([anaStream.stop(), benStream.stop(), catStream.stop()]);
});
