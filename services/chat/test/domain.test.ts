// The plain functions: send-rate parsing, typing coalescing, derived keys,
// cursors, and delivery of one event to the members' streams.
import test from "ava";
import { create, toBinary } from "@bufbuild/protobuf";
import { ChatMessageSentSchema } from "@aviary/gen/aviary/events/v1/chat_events_pb";
import { MemoryUserStreams } from "../../runtime/src/realtime/memory.ts";
import { deliverChatEvent } from "../src/events/deliver.ts";
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
  await deliverChatEvent(hub, event);
  await deliverChatEvent(hub, { ...event, attempt: 2 });
  for (const userId of [ana, ben]) t.is((await hub.position(userId)).offset, 1);
  await hub.close();
});
