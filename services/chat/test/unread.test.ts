// GetUnreadCount: the caller's totals over every conversation they are in
// equal the sum over ListConversations (the same definition of unread);
// MarkRead lowers them; the caller's own messages and membership changes
// never count; a conversation the caller was removed from counts nothing; a
// deleted message counts as the list counts it; no token, no count.
import test from "ava";
import { Code } from "@connectrpc/connect";
import { rejection, startTestChat, type Signed, type TestChat } from "./harness.ts";

let c: TestChat;

test.before(async () => {
  c = await startTestChat();
});
test.after.always(async () => {
  await c?.close();
});

const say = (from: Signed, target: { conversationId: string } | { directUserId: string }, text: string) =>
  c.client.sendMessage(
    {
      target: "conversationId" in target ? { case: "conversationId", value: target.conversationId } : { case: "directUserId", value: target.directUserId },
      clientMessageId: crypto.randomUUID(),
      text,
    },
    from.call,
  );

/** GetUnreadCount as plain numbers. */
async function totals(who: Signed): Promise<{ conversations: number; messages: number }> {
  const reply = await c.client.getUnreadCount({}, who.call);
  return { conversations: Number(reply.unreadConversations), messages: Number(reply.unreadMessages) };
}

/** The same totals, summed over every page of ListConversations. */
async function listedTotals(who: Signed): Promise<{ conversations: number; messages: number }> {
  const counts: number[] = [];
  let pageToken = "";
  do {
    const page = await c.client.listConversations({ pageSize: 2, pageToken }, who.call);
    counts.push(...page.conversations.map((x) => Number(x.unreadCount)));
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return { conversations: counts.filter((n) => n > 0).length, messages: counts.reduce((a, b) => a + b, 0) };
}

test("totals over direct and group conversations equal the sum over ListConversations; own messages never count; MarkRead lowers them", async (t) => {
  const [ana, ben, cat, dan, eve] = await Promise.all(Array.from({ length: 5 }, () => c.signUp()));
  t.deepEqual(await totals(ana!), { conversations: 0, messages: 0 });

  // Direct with Ben: Ana writes 1, Ben answers 2 → 2 unread for Ana.
  const withBen = (await say(ana!, { directUserId: ben!.userId }, "hi Ben")).message!.conversationId;
  await say(ben!, { conversationId: withBen }, "hi Ana");
  await say(ben!, { conversationId: withBen }, "how are you?");
  // Direct started by Cat: 3 unread; Ana has written nothing there.
  const withCat = (await say(cat!, { directUserId: ana!.userId }, "1")).message!.conversationId;
  await say(cat!, { conversationId: withCat }, "2");
  await say(cat!, { conversationId: withCat }, "3");
  // A direct conversation where only Ana writes: nothing unread.
  await say(ana!, { directUserId: dan!.userId }, "anyone there?");
  // A group Dan created with Ana, Ben and Eve (its creation entry never counts): Ben 1, Eve 1, Ana 1, Dan 2 → 3 for Ana (after her own, only Dan's two).
  const { conversation } = await c.client.createGroup({ title: "Five", memberIds: [ana!.userId, ben!.userId, eve!.userId] }, dan!.call);
  const group = conversation!.conversationId;
  await say(ben!, { conversationId: group }, "g1");
  await say(eve!, { conversationId: group }, "g2");
  await say(ana!, { conversationId: group }, "g3 (mine: it moves my watermark)");
  await say(dan!, { conversationId: group }, "g4");
  await say(dan!, { conversationId: group }, "g5");

  const ana1 = await totals(ana!);
  t.deepEqual(ana1, { conversations: 3, messages: 2 + 3 + 2 });
  t.deepEqual(await listedTotals(ana!), ana1, "the same as the sum over ListConversations");
  // Everyone's totals agree with their own list.
  for (const who of [ben!, cat!, dan!, eve!]) t.deepEqual(await totals(who), await listedTotals(who));
  // Ben: Ana's "hi Ben" is before his own answers (watermark 3); in the group, after his g1: g2, g3, g4, g5.
  t.deepEqual(await totals(ben!), { conversations: 1, messages: 4 });
  // Cat only wrote; Dan has Ana's direct message and, after his g5, nothing in the group.
  t.deepEqual(await totals(cat!), { conversations: 0, messages: 0 });
  t.deepEqual(await totals(dan!), { conversations: 1, messages: 1 });

  // MarkRead part of Cat's conversation, then all of Ben's.
  await c.client.markRead({ conversationId: withCat, readSeq: 2n }, ana!.call);
  t.deepEqual(await totals(ana!), { conversations: 3, messages: 2 + 1 + 2 });
  await c.client.markRead({ conversationId: withBen, readSeq: 3n }, ana!.call);
  const ana2 = await totals(ana!);
  t.deepEqual(ana2, { conversations: 2, messages: 1 + 2 });
  t.deepEqual(await listedTotals(ana!), ana2);

  // Ana writing into the group moves her watermark past Dan's two: they no longer count.
  await say(ana!, { conversationId: group }, "read you");
  t.deepEqual(await totals(ana!), { conversations: 1, messages: 1 });
  // …and her own message counts for the others, never for her.
  t.deepEqual(await totals(ben!), { conversations: 1, messages: 5 });
  t.deepEqual(await totals(ben!), await listedTotals(ben!));
});

test("a conversation the caller was removed from (or left) counts nothing, though messages go on there", async (t) => {
  const [owner, ana, ben] = await Promise.all(Array.from({ length: 3 }, () => c.signUp()));
  const kept = (await c.client.createGroup({ title: "Kept", memberIds: [ana!.userId] }, owner!.call)).conversation!.conversationId;
  const dropped = (await c.client.createGroup({ title: "Dropped", memberIds: [ana!.userId, ben!.userId] }, owner!.call)).conversation!.conversationId;
  const left = (await c.client.createGroup({ title: "Left", memberIds: [ana!.userId] }, owner!.call)).conversation!.conversationId;
  for (const conversationId of [kept, dropped, dropped, left]) await say(owner!, { conversationId }, "unread");
  t.deepEqual(await totals(ana!), { conversations: 3, messages: 4 });

  await c.client.removeMember({ conversationId: dropped, userId: ana!.userId }, owner!.call);
  await c.client.leaveConversation({ conversationId: left }, ana!.call);
  await say(owner!, { conversationId: dropped }, "after Ana's removal");
  await say(owner!, { conversationId: left }, "after Ana left");
  t.deepEqual(await totals(ana!), { conversations: 1, messages: 1 });
  t.deepEqual(await totals(ana!), await listedTotals(ana!));
  // Ben, still a member, counts all three of the owner's messages there (the removal entry never counts).
  t.deepEqual(await totals(ben!), { conversations: 1, messages: 3 });
});

test("a deleted message (a tombstone, seq kept) counts in the totals exactly as in ListConversations", async (t) => {
  const [ana, ben] = await Promise.all([c.signUp(), c.signUp()]);
  const conversationId = (await say(ben!, { directUserId: ana!.userId }, "1")).message!.conversationId;
  await say(ben!, { conversationId }, "2");
  await say(ben!, { conversationId }, "3");
  t.deepEqual(await totals(ana!), { conversations: 1, messages: 3 });
  await c.client.deleteMessage({ conversationId, seq: 2n }, ben!.call);
  // Whatever the rule for tombstones, the list and the summary apply the same one.
  t.deepEqual(await totals(ana!), await listedTotals(ana!));
  t.deepEqual((await c.client.listMessages({ conversationId }, ana!.call)).messages.map((m) => Number(m.seq)), [3, 2, 1], "the tombstone keeps its seq");
});

test("without a token: UNAUTHENTICATED", async (t) => {
  t.is((await rejection(c.client.getUnreadCount({}))).code, Code.Unauthenticated);
  t.is((await rejection(c.client.getUnreadCount({}, { headers: { authorization: "Bearer not-a-token" } }))).code, Code.Unauthenticated);
});
