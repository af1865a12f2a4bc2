// Ordering across instances, on real Postgres, Kafka and Redis: two chat
// instances (one database, one consumer group — they split the delivery
// partitions — one realtime prefix) and two realtime instances on that
// prefix. Every member has two devices, each subscribed (a real
// RealtimeService.Subscribe stream) through a different realtime instance.
// Several members send at once through both chat instances: every device
// sees every message once, in strictly increasing, gapless seq order, the
// same on every device.
import test from "ava";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ChatService, type Message } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { RealtimeService } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import { eventually, infra, uniqueName } from "../../runtime/test-support/infra.ts";
import { freshDatabase } from "../../runtime/test-support/database.ts";
import { startTestUser, type TestUser } from "../../user/test/harness.ts";
import { openStream, startTestRealtime, type Device, type StreamReader, type TestRealtime } from "../../realtime/test/harness.ts";
import type { RunningRealtimeService } from "../../realtime/src/index.ts";
import { chatConfigFromEnv, startChatService, type RunningChatService } from "../src/index.ts";
import { chatTestEnv, DELIVERY_WAIT_MS } from "./harness.ts";

const SENDERS = 5;
const PER_SENDER = 20;
const TOTAL = SENDERS * PER_SENDER;

let user: TestUser;
let rt: TestRealtime;
let rt2: RunningRealtimeService;
let database: { url: string; drop(): Promise<void> };
const chats: RunningChatService[] = [];
let clients: Client<typeof ChatService>[] = [];

test.before(async () => {
  const urls = await infra();
  user = await startTestUser();
  rt = await startTestRealtime({}, { user });
  rt2 = await rt.startInstance();
  database = await freshDatabase(urls.databaseUrl, "chat_order");
  const env = {
    ...(await chatTestEnv({ databaseUrl: database.url, user, prefix: rt.prefix, group: "chat_order" })),
    // 20 sends per sender in a burst: well inside the limit.
    CHAT_SEND_RATE: "1000/10s",
  };
  // One after the other: both run migrations on the same database.
  for (let i = 0; i < 2; i++) chats.push(await startChatService(chatConfigFromEnv(env)));
  clients = chats.map((chat) => createClient(ChatService, createGrpcTransport({ baseUrl: chat.url })));
});
test.after.always(async () => {
  for (const chat of chats) await chat.close();
  await rt?.close();
  await database?.drop();
  await user?.close();
});

const chatMessages = (reader: StreamReader, conversationId: string): Message[] =>
  reader.events().flatMap((e) => (e.payload.case === "chatMessage" && e.payload.value.conversationId === conversationId && e.payload.value.membership === undefined ? [e.payload.value] : []));

test.serial(`${SENDERS} members send ${PER_SENDER} messages each at once through two chat instances: every device on either realtime instance sees all, once, gapless, in seq order`, async (t) => {
  const members: Device[] = [];
  for (let i = 0; i < SENDERS; i++) members.push(await rt.signUp());
  const owner = members[0]!;
  const realtimeClients = [rt.client, createClient(RealtimeService, createGrpcTransport({ baseUrl: rt2.url }))];
  // Each member's two devices, subscribed through different realtime instances.
  const devices: { label: string; reader: StreamReader }[] = [];
  for (const [index, member] of members.entries()) {
    const other = await rt.anotherDevice(member);
    devices.push({ label: `member ${index} device A (realtime 1)`, reader: openStream(realtimeClients[0]!, member) });
    devices.push({ label: `member ${index} device B (realtime 2)`, reader: openStream(realtimeClients[1]!, other) });
  }
  await Promise.all(devices.map((d) => d.reader.ready()));

  const { conversation } = await clients[0]!.createGroup({ title: "Order", memberIds: members.slice(1).map((m) => m.userId) }, owner.call);
  const conversationId = conversation!.conversationId;

  const sent = await Promise.all(
    members.map(async (member, s) => {
      const seqs: number[] = [];
      for (let i = 0; i < PER_SENDER; i++) {
        // Alternate instances, offset per sender so both are busy at every step.
        const reply = await clients[(s + i) % 2]!.sendMessage(
          { target: { case: "conversationId", value: conversationId }, clientMessageId: crypto.randomUUID(), text: `sender ${s} #${i}`, replyToSeq: 0n },
          member.call,
        );
        seqs.push(Number(reply.message!.seq));
      }
      return seqs;
    }),
  );
  // The group's creation is entry 1; the messages took 2..TOTAL+1, each sender's in its own order.
  const expected = Array.from({ length: TOTAL }, (_, i) => i + 2);
  t.deepEqual(sent.flat().sort((a, b) => a - b), expected, "gapless numbering across both chat instances");
  for (const seqs of sent) t.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "a sender's messages numbered in its order");

  await eventually(`${TOTAL} messages on every device`, () => devices.every((d) => chatMessages(d.reader, conversationId).length >= TOTAL), DELIVERY_WAIT_MS, 50);
  const reference = chatMessages(devices[0]!.reader, conversationId).map((m) => `${m.seq}:${m.messageId}`);
  for (const device of devices) {
    const messages = chatMessages(device.reader, conversationId);
    t.deepEqual(messages.map((m) => Number(m.seq)), expected, `${device.label}: every message once, strictly increasing, gapless`);
    t.deepEqual(messages.map((m) => `${m.seq}:${m.messageId}`), reference, `${device.label}: identical to the other devices`);
    t.false(device.reader.isEnded(), `${device.label}: the stream stayed open`);
  }
  for (const device of devices) device.reader.cancel();
});
