// Direct and group conversations end to end: sends, delivery to every
// member's stream (once, in order), receipts, unread counts, idempotent
// retries, history paging and watermarks.
import test from "ava";
import { ConversationKind, ListMessagesRequest_Direction, MemberRole } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { presentEntry } from "../src/domain/present.ts";
import { chatEvents } from "../src/events/publish.ts";
import { messageRow, sendInOneStatement } from "../src/store/entries.ts";
import { startTestChat, type Signed, type StreamWatch, type TestChat } from "./harness.ts";

let c: TestChat;

test.before(async () => {
  c = await startTestChat();
});
test.after.always(async () => {
  await c?.close();
});

const seqs = (watch: StreamWatch, conversationId: string) => watch.messages().filter((m) => m.conversationId === conversationId).map((m) => Number(m.seq));

function send(from: Signed, target: { conversationId: string } | { directUserId: string }, text: string, extra: { clientMessageId?: string; replyToSeq?: bigint } = {}) {
  const request = {
    target: "conversationId" in target ? { case: "conversationId" as const, value: target.conversationId } : { case: "directUserId" as const, value: target.directUserId },
    clientMessageId: extra.clientMessageId ?? crypto.randomUUID(),
    text,
    replyToSeq: extra.replyToSeq ?? 0n,
  };
  return c.client.sendMessage(request, from.call);
}

test("Ana and Ben chat directly: one conversation, every message on both streams once, in order", async (t) => {
  const [ana, ben] = await Promise.all([c.signUp(), c.signUp()]);
  const [anaStream, benStream] = await Promise.all([c.watchStream(ana.userId), c.watchStream(ben.userId)]);
  const first = await send(ana, { directUserId: ben.userId }, "hi Ben");
  t.true(first.created);
  const conversationId = first.message!.conversationId;
  t.is(first.message!.seq, 1n);
  await send(ben, { directUserId: ana.userId }, "hi Ana");
  await send(ana, { conversationId }, "how are you?");
  const last = await send(ben, { conversationId }, "fine", { replyToSeq: 3n });
  t.is(last.message!.seq, 4n);
  t.is(last.message!.replyToSeq, 3n);

  await c.until("both streams hold all four messages", () => seqs(anaStream, conversationId).length >= 4 && seqs(benStream, conversationId).length >= 4);
  t.deepEqual(seqs(anaStream, conversationId), [1, 2, 3, 4]);
  t.deepEqual(seqs(benStream, conversationId), [1, 2, 3, 4]);
  // The conversation's creation reached both, before its first message.
  for (const watch of [anaStream, benStream]) {
    const kinds = watch.events.map((e) => e.payload.case);
    t.true(kinds.indexOf("chatConversation") >= 0 && kinds.indexOf("chatConversation") < kinds.indexOf("chatMessage"));
  }

  const { conversation } = await c.client.getConversation({ conversationId }, ana.call);
  t.is(conversation?.kind, ConversationKind.DIRECT);
  t.deepEqual(conversation?.members.map((m) => m.userId).sort(), [ana.userId, ben.userId].sort());
  t.is(conversation?.lastSeq, 4n);
  // Ana's own send moved her watermark to 3; Ben's message 4 is unread for her.
  t.is(conversation?.unreadCount, 1n);
  t.is(conversation?.lastMessage?.text, "fine");
  t.is((await c.client.getConversation({ conversationId }, ben.call)).conversation?.unreadCount, 0n);
  await Promise.all([anaStream.stop(), benStream.stop()]);
});

test("a group of five: every member sees every message once, in order; receipts arrive; unread counts match history", async (t) => {
  const people = await Promise.all(Array.from({ length: 5 }, () => c.signUp()));
  const [owner, ...others] = people as [Signed, ...Signed[]];
  const streams = await Promise.all(people.map((p) => c.watchStream(p.userId)));
  const { conversation } = await c.client.createGroup({ title: "Five", memberIds: others.map((o) => o.userId) }, owner.call);
  const conversationId = conversation!.conversationId;
  t.is(conversation?.lastSeq, 1n);
  t.is(conversation?.members.find((m) => m.userId === owner.userId)?.role, MemberRole.OWNER);
  t.is(conversation?.lastMessage?.membership?.actorId, owner.userId);
  t.deepEqual(conversation?.lastMessage?.membership?.addedUserIds, [owner.userId, ...others.map((o) => o.userId)]);

  // Everyone sends, in a known order: seq 2..6.
  for (const person of people) await send(person, { conversationId }, `from ${person.userId}`);
  await c.until("five messages on five streams", () => streams.every((s) => seqs(s, conversationId).length >= 5));
  for (const stream of streams) t.deepEqual(seqs(stream, conversationId), [2, 3, 4, 5, 6]);
  for (const stream of streams) t.is(stream.events.filter((e) => e.payload.case === "chatConversation").length, 1);

  // Unread per member = messages by others after their own last send.
  const listed = await Promise.all(people.map(async (p) => (await c.client.listConversations({}, p.call)).conversations.find((x) => x.conversationId === conversationId)));
  t.deepEqual(
    listed.map((x) => Number(x?.unreadCount)),
    [4, 3, 2, 1, 0],
  );
  const history = await c.client.listMessages({ conversationId }, others[0]!.call);
  t.deepEqual(
    history.messages.map((m) => Number(m.seq)),
    [6, 5, 4, 3, 2, 1],
  );
  t.is(history.messages.filter((m) => Number(m.seq) > 3 && m.senderId !== others[0]!.userId).length, Number(listed[1]?.unreadCount));

  // A receipt reaches every member's stream.
  const marked = await c.client.markRead({ conversationId, readSeq: 6n }, owner.call);
  t.is(marked.unreadCount, 0n);
  t.is(marked.member?.readSeq, 6n);
  t.is(marked.member?.deliveredSeq, 6n);
  await c.until("the receipt on every stream", () =>
    streams.every((s) => s.events.some((e) => e.payload.case === "chatReceipt" && e.payload.value.userId === owner.userId && e.payload.value.readSeq === 6n)),
  );
  t.is((await c.client.listConversations({}, owner.call)).conversations.find((x) => x.conversationId === conversationId)?.unreadCount, 0n);
  await Promise.all(streams.map((s) => s.stop()));
});

test("the same send retried 5 times, one after the other and all at once, creates one message", async (t) => {
  const [ana, ben] = await Promise.all([c.signUp(), c.signUp()]);
  const clientMessageId = crypto.randomUUID();
  const sequential = [];
  for (let i = 0; i < 5; i++) sequential.push(await send(ana, { directUserId: ben.userId }, "once", { clientMessageId }));
  t.deepEqual(
    sequential.map((r) => r.created),
    [true, false, false, false, false],
  );
  t.is(new Set(sequential.map((r) => r.message?.messageId)).size, 1);

  const concurrentId = crypto.randomUUID();
  const conversationId = sequential[0]!.message!.conversationId;
  const concurrent = await Promise.all(Array.from({ length: 5 }, () => send(ana, { conversationId }, "at once", { clientMessageId: concurrentId })));
  t.is(concurrent.filter((r) => r.created).length, 1);
  t.is(new Set(concurrent.map((r) => r.message?.messageId)).size, 1);
  const rows = await c.query<{ n: number }>("select count(*)::int as n from chat.entries where conversation_id = $1", [conversationId]);
  t.is(rows[0]?.n, 2);
  t.is((await c.client.getConversation({ conversationId }, ana.call)).conversation?.lastSeq, 2n);
});

test("a send in one statement writes nothing when the conversation moved on, its members differ or the key exists: no number, no entry, no event; it answers the conversation as it is", async (t) => {
  const [ana, ben] = await Promise.all([c.signUp(), c.signUp()]);
  const first = await send(ana, { directUserId: ben.userId }, "one");
  const conversationId = first.message!.conversationId;
  await send(ben, { conversationId }, "two");
  const db = c.service.database.db;
  const events = chatEvents(c.eventsTopic);
  const attempt = (lastSeq: number, clientMessageId: string, memberIds = [ben.userId, ana.userId]) => {
    const row = messageRow({ conversationId, seq: lastSeq + 1, id: crypto.randomUUID(), senderId: ana.userId, clientMessageId, text: "late", replyToSeq: null, attachments: null, at: new Date() });
    const event = { message: presentEntry(row), memberIds, kind: ConversationKind.DIRECT, title: "" };
    return sendInOneStatement(db, row, { lastSeq, memberIds }, events.messageSent(db, event));
  };
  // This conversation's rows only (the other tests of this file write at the same time).
  const written = async () =>
    (await c.query<{ entries: number; outbox: number }>(
      "select (select count(*) from chat.entries where conversation_id = $1)::int as entries, (select count(*) from chat.outbox_events where key = $1::text)::int as outbox",
      [conversationId],
    ))[0]!;
  const before = await written();
  // As it is: two messages, Ana and Ben in the order they joined (both at the first message: by id).
  const current = { outcome: "moved on", current: { kind: "direct", title: null, lastSeq: 2, memberIds: [ana.userId, ben.userId].sort() } };
  // Seen before Ben's message: last_seq is 2 now, not 1.
  t.deepEqual(await attempt(1, crypto.randomUUID()), current);
  // The right number, other members (as a purged account leaves them: a purge takes no number).
  t.deepEqual(await attempt(2, crypto.randomUUID(), [ana.userId]), current);
  t.deepEqual(await attempt(2, crypto.randomUUID(), [ana.userId, ben.userId, crypto.randomUUID()]), current);
  // The key of Ana's first message, numbered right: the unique index refuses it, and the number goes back with the statement.
  t.deepEqual(await attempt(2, first.message!.clientMessageId), { outcome: "duplicate" });
  t.deepEqual(await written(), before);
  t.is((await c.client.getConversation({ conversationId }, ana.call)).conversation?.lastSeq, 2n);
  // Numbered from what is current, it goes through.
  t.deepEqual(await attempt(2, crypto.randomUUID()), { outcome: "sent" });
  t.deepEqual(await written(), { entries: before.entries + 1, outbox: before.outbox + 1 });
  t.is((await c.client.getConversation({ conversationId }, ana.call)).conversation?.lastSeq, 3n);
});

test("first messages of a pair sent by both at once share one direct conversation", async (t) => {
  const [ana, ben] = await Promise.all([c.signUp(), c.signUp()]);
  const [a, b] = await Promise.all([send(ana, { directUserId: ben.userId }, "hi"), send(ben, { directUserId: ana.userId }, "hi")]);
  t.is(a.message?.conversationId, b.message?.conversationId);
  t.deepEqual([a.message!.seq, b.message!.seq].sort(), [1n, 2n]);
});

test("history pages both ways from an anchor, with has_more", async (t) => {
  const [ana, ben] = await Promise.all([c.signUp(), c.signUp()]);
  const { message } = await send(ana, { directUserId: ben.userId }, "m1");
  const conversationId = message!.conversationId;
  for (let i = 2; i <= 7; i++) await send(i % 2 ? ana : ben, { conversationId }, `m${i}`);

  const newest = await c.client.listMessages({ conversationId, pageSize: 3 }, ben.call);
  t.deepEqual(newest.messages.map((m) => m.text), ["m7", "m6", "m5"]);
  t.true(newest.hasMore);
  const older = await c.client.listMessages({ conversationId, pageSize: 3, anchorSeq: 5n, direction: ListMessagesRequest_Direction.BEFORE }, ben.call);
  t.deepEqual(older.messages.map((m) => Number(m.seq)), [4, 3, 2]);
  t.true(older.hasMore);
  const oldest = await c.client.listMessages({ conversationId, pageSize: 3, anchorSeq: 2n }, ben.call);
  t.deepEqual(oldest.messages.map((m) => Number(m.seq)), [1]);
  t.false(oldest.hasMore);

  const forward = await c.client.listMessages({ conversationId, pageSize: 4, direction: ListMessagesRequest_Direction.AFTER }, ben.call);
  t.deepEqual(forward.messages.map((m) => Number(m.seq)), [1, 2, 3, 4]);
  t.true(forward.hasMore);
  const rest = await c.client.listMessages({ conversationId, pageSize: 4, anchorSeq: 4n, direction: ListMessagesRequest_Direction.AFTER }, ben.call);
  t.deepEqual(rest.messages.map((m) => Number(m.seq)), [5, 6, 7]);
  t.false(rest.hasMore);
});

test("MarkRead only moves forward, never past the newest entry; read implies delivered", async (t) => {
  const [ana, ben] = await Promise.all([c.signUp(), c.signUp()]);
  const { message } = await send(ana, { directUserId: ben.userId }, "1");
  const conversationId = message!.conversationId;
  await send(ana, { conversationId }, "2");
  await send(ana, { conversationId }, "3");

  const delivered = await c.client.markRead({ conversationId, deliveredSeq: 2n }, ben.call);
  t.like(delivered.member, { readSeq: 0n, deliveredSeq: 2n });
  t.is(delivered.unreadCount, 3n);
  const read = await c.client.markRead({ conversationId, readSeq: 2n }, ben.call);
  t.like(read.member, { readSeq: 2n, deliveredSeq: 2n });
  t.is(read.unreadCount, 1n);
  const back = await c.client.markRead({ conversationId, readSeq: 1n, deliveredSeq: 1n }, ben.call);
  t.like(back.member, { readSeq: 2n, deliveredSeq: 2n });
  const past = await c.client.markRead({ conversationId, readSeq: 99n }, ben.call);
  t.like(past.member, { readSeq: 3n, deliveredSeq: 3n });
  t.is(past.unreadCount, 0n);
  const receipts = await c.query<{ n: number }>("select count(*)::int as n from chat.outbox_events where key = $1 and type = 'aviary.events.v1.ChatReceiptUpdated'", [conversationId]);
  // The mark that moved nothing announced nothing.
  t.is(receipts[0]?.n, 3);
});

test("ListConversations: most recent activity first, paged with tokens", async (t) => {
  const [ana, ...friends] = await Promise.all(Array.from({ length: 4 }, () => c.signUp()));
  const ids: string[] = [];
  for (const friend of friends) ids.push((await send(ana!, { directUserId: friend.userId }, "hello")).message!.conversationId);
  // The first conversation becomes the most recent.
  await send(ana!, { conversationId: ids[0]! }, "again");
  const first = await c.client.listConversations({ pageSize: 2 }, ana!.call);
  t.deepEqual(first.conversations.map((x) => x.conversationId), [ids[0], ids[2]]);
  t.not(first.nextPageToken, "");
  const second = await c.client.listConversations({ pageSize: 2, pageToken: first.nextPageToken }, ana!.call);
  t.deepEqual(second.conversations.map((x) => x.conversationId), [ids[1]]);
  t.is(second.nextPageToken, "");
  t.is(first.conversations[0]?.lastMessage?.text, "again");
});
