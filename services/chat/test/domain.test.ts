// The plain functions: send-rate parsing, typing coalescing, derived keys,
// cursors, and delivery of one event to the members' streams.
import test from "ava";
import { create, toBinary } from "@bufbuild/protobuf";
import { ChatMessageSentSchema } from "@aviary/gen/aviary/events/v1/chat_events_pb";
import { MemoryUserStreams } from "../../runtime/src/realtime/memory.ts";
import { decodeEvent } from "../../runtime/src/realtime/events.ts";
import type { UserItem, UserStreamPublisher } from "../../runtime/src/realtime/user-streams.ts";
import { deliverChatEvents } from "../src/events/deliver.ts";
import { deliveryId, directKey } from "../src/domain/ids.ts";
import { parseCursor } from "../src/domain/page-token.ts";
import { parseSendRate, sendRatePattern } from "../src/domain/send-rate.ts";
import { typingCoalescer } from "../src/domain/typing.ts";
import { chatConfigFromEnv } from "../src/index.ts";

test("send rate: COUNT/WINDOW, windows of at least a second", (t) => {
  t.deepEqual(parseSendRate("30/10s"), { count: 30, windowSeconds: 10 });
  t.deepEqual(parseSendRate("100/1m"), { count: 100, windowSeconds: 60 });
  t.true(sendRatePattern.test("5/1h30m"));
  t.false(sendRatePattern.test("0/10s"));
  t.false(sendRatePattern.test("30/10"));
  t.throws(() => parseSendRate("30/500ms"));
  t.throws(() => chatConfigFromEnv({ CHAT_SEND_RATE: "30/500ms" }), { message: /CHAT_SEND_RATE/ });
  t.throws(() => chatConfigFromEnv({ CHAT_SEND_RATE: "lots" }), { message: /CHAT_SEND_RATE/ });
});

test("typing: one signal per (conversation, user) per interval", (t) => {
  const typing = typingCoalescer(1_000);
  t.true(typing.admit("c1", "u1", 0));
  t.false(typing.admit("c1", "u1", 999));
  t.true(typing.admit("c1", "u2", 999));
  t.true(typing.admit("c2", "u1", 999));
  t.true(typing.admit("c1", "u1", 1_000));
});

test("a pair's direct key does not depend on who writes first; delivery ids are per event and member", (t) => {
  t.is(directKey("b", "a"), directKey("a", "b"));
  t.not(deliveryId("e1", "u1"), deliveryId("e1", "u2"));
  t.is(deliveryId("e1", "u1"), deliveryId("e1", "u1"));
  t.true(deliveryId(crypto.randomUUID(), crypto.randomUUID()).length <= 128);
});

test("cursors: only the shape encode wrote is accepted", (t) => {
  const id = crypto.randomUUID();
  t.deepEqual(parseCursor({ t: 5, c: id }), { atMs: 5, id });
  t.throws(() => parseCursor({ t: "5", c: id }));
  t.throws(() => parseCursor({ t: 5, c: "x" }));
  t.throws(() => parseCursor(null));
});

test("delivery: a redelivered event publishes nothing twice; the sender's own stream gets the message", async (t) => {
  const hub = new MemoryUserStreams();
  const [ana, ben] = [crypto.randomUUID(), crypto.randomUUID()];
  const message = create(ChatMessageSentSchema, { message: { conversationId: crypto.randomUUID(), seq: 1n, senderId: ana, text: "hi" }, memberIds: [ana, ben] });
  const event = {
    topic: "chat",
    key: "k",
    value: toBinary(ChatMessageSentSchema, message),
    headers: { "event-id": crypto.randomUUID(), "event-type": ChatMessageSentSchema.typeName, "content-type": "application/x-protobuf" },
    partition: 0,
    offset: "0",
    attempt: 1,
  };
  await deliverChatEvents(hub, [event]);
  await deliverChatEvents(hub, [{ ...event, attempt: 2 }]);
  for (const userId of [ana, ben]) t.is((await hub.position(userId)).offset, 1);
  await hub.close();
});

test("delivery of a batch across conversations: each member's stream in event order; a failure mid-batch, redelivered, publishes nothing twice", async (t) => {
  const hub = new MemoryUserStreams();
  const [ana, ben, cat] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  const [a, b] = [crypto.randomUUID(), crypto.randomUUID()];
  /** `<a|b><seq>` → the event's id. */
  const eventIds = new Map<string, string>();
  const label = (conversationId: string, seq: bigint | number) => `${conversationId === a ? "a" : "b"}${seq}`;
  const sent = (conversationId: string, seq: number, memberIds: string[], offset: number) => {
    const id = crypto.randomUUID();
    eventIds.set(label(conversationId, seq), id);
    return {
      topic: "chat",
      key: conversationId,
      value: toBinary(ChatMessageSentSchema, create(ChatMessageSentSchema, { message: { conversationId, seq: BigInt(seq), senderId: ana, text: `${seq}` }, memberIds })),
      headers: { "event-id": id, "event-type": ChatMessageSentSchema.typeName, "content-type": "application/x-protobuf" },
      partition: 0,
      offset: String(offset),
      attempt: 1,
    };
  };
  // Two conversations' events interleaved, as one partition holds them.
  const events = [sent(a, 1, [ana, ben], 0), sent(b, 1, [ana, cat], 1), sent(a, 2, [ana, ben], 2), sent(b, 2, [ana, cat], 3), sent(a, 3, [ana, ben], 4)];
  // The stream store fails after 4 of the batch's 10 items (a prefix, as the Redis adapter guarantees per user).
  let budget = 4;
  const failing: UserStreamPublisher = {
    publish: (userId, item) => hub.publish(userId, item),
    async publishMany(items: readonly UserItem[]) {
      const results = [];
      for (const item of items) {
        if (budget-- <= 0) throw new Error("stream store down");
        results.push(await hub.publish(item.userId, item));
      }
      return results;
    },
    signal: (userIds, item, options) => hub.signal(userIds, item, options),
    foregroundSessions: (userIds) => hub.foregroundSessions(userIds),
    ping: () => hub.ping(),
    close: async () => {},
  };
  await t.throwsAsync(deliverChatEvents(failing, events), { message: "stream store down" });
  // Redelivered: the whole batch again, then (as the bus falls back) each event on its own.
  budget = Number.POSITIVE_INFINITY;
  await deliverChatEvents(failing, events);
  for (const event of events) await deliverChatEvents(failing, [{ ...event, attempt: 2 }]);

  const stream = async (userId: string) => {
    const { epoch, offset } = await hub.position(userId);
    const items = (await hub.range(userId, epoch, 1, offset)) ?? [];
    return items.map((item) => {
      const decoded = decodeEvent(item.payload);
      if (decoded.payload.case !== "chatMessage") throw new Error("not a chat message");
      const which = label(decoded.payload.value.conversationId, decoded.payload.value.seq);
      // Each copy of the event carries its own item id, the rest encoded once for all recipients.
      t.is(decoded.id, item.id);
      t.is(item.id, deliveryId(eventIds.get(which)!, userId));
      return which;
    });
  };
  t.deepEqual(await stream(ana), ["a1", "b1", "a2", "b2", "a3"]);
  t.deepEqual(await stream(ben), ["a1", "a2", "a3"]);
  t.deepEqual(await stream(cat), ["b1", "b2"]);
  await hub.close();
});
