// The post-commit fast path (events/fast-path.ts). On real Postgres, Kafka
// and Redis: an API-only chat instance and a delivery-only one, so the
// delivery consumer can be stopped while sends go on. With it stopped, a
// message into an existing conversation still reaches every device (only the
// fast path runs); a membership change (durable path only) holds back the
// messages after it, and a new conversation's first message waits for the
// conversation. Once the consumer is back, every device has every entry once,
// in seq order. Then the fast path's own bookkeeping, on the memory adapter.
import test from "ava";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { create } from "@bufbuild/protobuf";
import { ChatService, MessageSchema, type Message } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { MemoryUserStreams } from "../../runtime/src/realtime/memory.ts";
import type { UserStreamPublisher } from "../../runtime/src/realtime/user-streams.ts";
import { silentSink } from "../../runtime/src/bus/log-sink.ts";
import { infra, uniqueName } from "../../runtime/test-support/infra.ts";
import { freshDatabase } from "../../runtime/test-support/database.ts";
import { startTestUser, type TestUser } from "../../user/test/harness.ts";
import { openStream, startTestRealtime, type Device, type StreamReader, type TestRealtime } from "../../realtime/test/harness.ts";
import { chatConfigFromEnv, startChatService, type RunningChatService } from "../src/index.ts";
import { deliveryId } from "../src/domain/ids.ts";
import { fastDelivery } from "../src/events/fast-path.ts";
import { chatTestEnv, DELIVERY_WAIT_MS } from "./harness.ts";

let user: TestUser;
let rt: TestRealtime;
let database: { url: string; drop(): Promise<void> };
let env: Record<string, string>;
let api: RunningChatService;
let delivery: RunningChatService | undefined;
let client: Client<typeof ChatService>;

test.before(async () => {
  const urls = await infra();
  user = await startTestUser();
  rt = await startTestRealtime({}, { user });
  database = await freshDatabase(urls.databaseUrl, "chat_fast");
  env = await chatTestEnv({ databaseUrl: database.url, user, prefix: rt.prefix, group: "chat_fast" });
  // The API first: it runs the migrations the delivery instance then finds done.
  api = await startChatService(chatConfigFromEnv({ ...env, CHAT_ROLE: "api" }));
  delivery = await startChatService(chatConfigFromEnv({ ...env, CHAT_ROLE: "delivery" }));
  client = createClient(ChatService, createGrpcTransport({ baseUrl: api.url }));
});
test.after.always(async () => {
  await delivery?.close();
  await api?.close();
  await rt?.close();
  await database?.drop();
  await user?.close();
});

/** A device's entries of one conversation, in arrival order: `conversation <last_seq>` and `message <seq>`. */
function entries(reader: StreamReader, conversationId: string): string[] {
  return reader.events().flatMap((e) => {
    if (e.payload.case === "chatConversation" && e.payload.value.conversationId === conversationId) return [`conversation ${e.payload.value.lastSeq}`];
    if (e.payload.case === "chatMessage" && e.payload.value.conversationId === conversationId) return [`message ${e.payload.value.seq}`];
    return [];
  });
}

test.serial("with the delivery consumer stopped, sends still reach every device through the fast path; what must wait, waits; all once, in order, when it is back", async (t) => {
  const [ana, ben, cy] = [await rt.signUp(), await rt.signUp(), await rt.signUp()];
  const devices: { label: string; device: Device; reader: StreamReader }[] = [];
  for (const [label, device] of [["ana 1", ana], ["ana 2", await rt.anotherDevice(ana)], ["ben", ben], ["cy", cy]] as const) {
    devices.push({ label, device, reader: openStream(rt.client, device) });
  }
  await Promise.all(devices.map((d) => d.reader.ready()));
  const send = async (target: { case: "conversationId" | "directUserId"; value: string }, text: string) =>
    (await client.sendMessage({ target, clientMessageId: crypto.randomUUID(), text, replyToSeq: 0n }, ana.call)).message!;
  const seeAll = (what: string, conversationId: string, entry: string, among = devices) =>
    Promise.all(among.map((d) => d.reader.until(`${d.label}: ${what}`, (r) => entries(r, conversationId).includes(entry), DELIVERY_WAIT_MS)));

  const { conversation } = await client.createGroup({ title: "Fast", memberIds: [ben.userId, cy.userId] }, ana.call);
  const groupId = conversation!.conversationId;
  t.is(Number((await send({ case: "conversationId", value: groupId }, "two")).seq), 2);
  // Delivered with the consumer running: every member's mark is now 2.
  await seeAll("message 2", groupId, "message 2");

  await delivery!.close();
  delivery = undefined;
  await send({ case: "conversationId", value: groupId }, "three");
  await send({ case: "conversationId", value: groupId }, "four");
  await seeAll("message 4 with no consumer running", groupId, "message 4");
  for (const d of devices) t.deepEqual(entries(d.reader, groupId), ["conversation 1", "message 2", "message 3", "message 4"], `${d.label}: in order before the rename`);

  // A rename is entry 5, delivered by the consumer only: message 6 must not overtake it.
  await client.updateConversation({ conversationId: groupId, title: "Renamed" }, ana.call);
  t.is(Number((await send({ case: "conversationId", value: groupId }, "six")).seq), 6);
  // A new direct conversation: its first message must not arrive before the conversation.
  const direct = await send({ case: "directUserId", value: ben.userId }, "hello ben");
  await api.eventsFlushed(DELIVERY_WAIT_MS);

  delivery = await startChatService(chatConfigFromEnv({ ...env, CHAT_ROLE: "delivery" }));
  await seeAll("message 6", groupId, "message 6");
  const pair = devices.filter((d) => d.device.userId !== cy.userId);
  await seeAll("the direct message", direct.conversationId, "message 1", pair);
  for (const d of devices) {
    t.deepEqual(entries(d.reader, groupId), ["conversation 1", "message 2", "message 3", "message 4", "conversation 5", "message 6"], `${d.label}: every entry once, in seq order`);
  }
  for (const d of pair) t.deepEqual(entries(d.reader, direct.conversationId), ["conversation 1", "message 1"], `${d.label}: the conversation before its first message`);
  t.deepEqual(entries(devices.find((d) => d.label === "cy")!.reader, direct.conversationId), [], "nothing of it reaches a non-member");
  for (const d of devices) d.reader.cancel();
});

// The bookkeeping that spares the consumer a second publish: the members
// published to, taken once; deferred members left to the consumer; nothing
// kept in a process without a consumer; the oldest forgotten past capacity.
const message = (conversationId: string, seq: number): Message => create(MessageSchema, { conversationId, seq: BigInt(seq), messageId: crypto.randomUUID(), text: `#${seq}` });
/** Lets the memory adapter's publish and the fast path's continuation run. */
const settled = () => new Promise((resolve) => setImmediate(resolve));

test("fastDelivery remembers whom it published to, for the consumer to take once; deferred members are not among them", async (t) => {
  const streams = new MemoryUserStreams();
  const [u, v, w] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  const conversationId = crypto.randomUUID();
  // u and v got entry 1 through the in-order path; w (say, a member added since) has no mark.
  await streams.publishMany([u, v].map((userId) => ({ userId, id: `entry1:${userId}`, payload: new Uint8Array([1]), sequence: { key: conversationId, seq: 1 } })));
  const fast = fastDelivery({ streams, remember: true, capacity: 2, logger: silentSink });
  const eventId = crypto.randomUUID();
  fast.messageSent({ eventId, message: message(conversationId, 2), memberIds: [u, v, w, u] });
  await settled();
  t.deepEqual([...fast.takePublished(eventId)].sort(), [u, v].sort());
  t.deepEqual([...fast.takePublished(eventId)], [], "taken once");
  t.is((await streams.position(u)).offset, 2);
  t.is((await streams.position(w)).offset, 0, "w's copy waits for the consumer");
  const replayed = await streams.replay(u, { epoch: (await streams.position(u)).epoch, offset: 1 });
  t.deepEqual(replayed.recovered ? replayed.items.map((i) => i.id) : [], [deliveryId(eventId, u)], "the consumer's item id, so its publish is a duplicate");

  // Past capacity (2) the oldest event is forgotten: the consumer then just publishes it again (a duplicate).
  const later = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  later.forEach((id, i) => fast.messageSent({ eventId: id, message: message(conversationId, 3 + i), memberIds: [u] }));
  await settled();
  t.deepEqual(later.map((id) => fast.takePublished(id).size), [0, 1, 1]);

  const apiOnly = fastDelivery({ streams, remember: false, logger: silentSink });
  const unremembered = crypto.randomUUID();
  apiOnly.messageSent({ eventId: unremembered, message: message(conversationId, 6), memberIds: [u] });
  await settled();
  t.is((await streams.position(u)).offset, 6, "published");
  t.is(apiOnly.takePublished(unremembered).size, 0, "but not remembered where no consumer would take it");
});

test("fastDelivery never throws at the sender: a failing stream store is left to the consumer", async (t) => {
  // Only publishMany is called by the fast path.
  const failing = { publishMany: () => Promise.reject(new Error("redis down")) } as unknown as UserStreamPublisher;
  const warnings: string[] = [];
  const fast = fastDelivery({ streams: failing, remember: true, logger: { warn: (_context, text) => warnings.push(text), error: () => undefined } });
  const eventId = crypto.randomUUID();
  t.notThrows(() => fast.messageSent({ eventId, message: message(crypto.randomUUID(), 2), memberIds: [crypto.randomUUID()] }));
  await settled();
  t.is(fast.takePublished(eventId).size, 0);
  t.is(warnings.length, 1);
});
