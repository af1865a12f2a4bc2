// Chat live through the edge: a real Envoy (the generated loopback config)
// in front of the chat service and the realtime service, on real Postgres,
// Kafka and Redis. Ana and Ben have two devices each (two sessions), Cat, Dan
// and Eve one; every device holds a RealtimeService.Subscribe stream through
// the edge, over every transport a client uses: gRPC, gRPC-web, Connect, and
// REST as newline-delimited JSON. Every call (sends, typing, receipts, reads)
// goes through the edge too, over gRPC, gRPC-web, Connect or REST. Ana and
// Ben chat directly and all five in a group, several senders at once:
// - every device sees every message of its conversations exactly once, in
//   seq order, identical to the history, and its stream has no offset gap;
// - typing and receipts reach the other members' devices;
// - ListConversations' unread counts and GetUnreadCount match the history.
import test from "ava";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import {
  ChatService,
  GetUnreadCountResponseSchema,
  ListMessagesRequest_Direction,
  SendMessageResponseSchema,
  type Message,
} from "@aviary/gen/aviary/chat/v1/chat_pb";
import type { Event, SubscribeResponse } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import { startEnvoy, type RunningEnvoy } from "../../runtime/test-support/envoy.ts";
import { openStream, startTestRealtime, type Device, type TestRealtime } from "../../realtime/test/harness.ts";
import { restFrame, restStream } from "../../realtime/test/rest-stream.ts";
import { startTestChat, type TestChat } from "./harness.ts";

let rt: TestRealtime;
let chat: TestChat;
let envoy: RunningEnvoy;

test.before(async () => {
  rt = await startTestRealtime();
  // Behind the same auth and user services, delivering to the realtime service's streams.
  chat = await startTestChat({}, { user: rt.user, prefix: rt.prefix });
  envoy = await startEnvoy({ upstreams: { auth: rt.user.auth.service.url, user: rt.user.service.url, realtime: rt.service.url, chat: chat.service.url } });
});
test.after.always(async () => {
  await envoy?.stop();
  await chat?.close();
  await rt?.close();
});

const transports = {
  grpc: () => createGrpcTransport({ baseUrl: envoy.url }),
  "grpc-web": () => createGrpcWebTransport({ baseUrl: envoy.url }),
  connect: () => createConnectTransport({ baseUrl: envoy.url, httpVersion: "1.1" }),
} as const;
type Protocol = keyof typeof transports;

/** One device's stream through the edge, whatever the transport: the frames it decoded so far. */
interface Screen {
  label: string;
  userId: string;
  frames(): SubscribeResponse[];
  isEnded(): boolean;
  close(): void;
}

function subscribe(label: string, device: Device, over: Protocol | "rest"): Screen {
  if (over !== "rest") {
    const reader = openStream(transports[over](), device);
    return { label: `${label} (${over})`, userId: device.userId, frames: () => reader.frames, isEnded: () => reader.isEnded(), close: () => reader.cancel() };
  }
  const stream = restStream(envoy.url, device, "");
  let ended = false;
  void stream.done.then(() => (ended = true));
  const frames: SubscribeResponse[] = [];
  return {
    label: `${label} (rest)`,
    userId: device.userId,
    frames() {
      while (frames.length < stream.lines.length) frames.push(restFrame(stream.lines[frames.length]));
      return frames;
    },
    isEnded: () => ended,
    close: () => stream.close(),
  };
}

/** Where a device's stream started: the ready frame's offset. */
function readyOffset(screen: Screen): bigint {
  const first = screen.frames()[0];
  return first?.frame.case === "ready" ? (first.frame.value.position?.offset ?? 0n) : 0n;
}
const eventsOf = (screen: Screen): Event[] => screen.frames().flatMap((f) => (f.frame.case === "event" ? [f.frame.value] : []));
/** The chat messages (not membership entries) a device received for one conversation, in arrival order. */
const messagesOf = (screen: Screen, conversationId: string): Message[] =>
  eventsOf(screen).flatMap((e) => (e.payload.case === "chatMessage" && e.payload.value.conversationId === conversationId && e.payload.value.membership === undefined ? [e.payload.value] : []));
const typingOf = (screen: Screen, conversationId: string, userId: string) =>
  eventsOf(screen).filter((e) => e.payload.case === "chatTyping" && e.payload.value.conversationId === conversationId && e.payload.value.userId === userId);
const receiptsOf = (screen: Screen, conversationId: string, userId: string) =>
  eventsOf(screen).flatMap((e) => (e.payload.case === "chatReceipt" && e.payload.value.conversationId === conversationId && e.payload.value.userId === userId ? [e.payload.value] : []));

/** A REST call through the edge as the device, JSON both ways. */
async function rest(method: "GET" | "POST", path: string, device: Device, body?: unknown): Promise<JsonValue> {
  const response = await fetch(`${envoy.url}${path}`, {
    method,
    headers: { ...device.call.headers, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await response.json()) as JsonValue;
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

interface Person {
  name: string;
  device: Device;
  /** ChatService through the edge, over this person's protocol. */
  chat: Client<typeof ChatService>;
  /** Sends over REST instead (POST /v1/messages). */
  restSends: boolean;
}

/** Per person and conversation, how far the person has read: their own sends and MarkRead move it. */
const readUpTo = new Map<string, number>();
const readKey = (person: Person, conversationId: string) => `${person.device.userId}:${conversationId}`;
const advance = (person: Person, conversationId: string, seq: number) => readUpTo.set(readKey(person, conversationId), Math.max(readUpTo.get(readKey(person, conversationId)) ?? 0, seq));

async function send(person: Person, target: { conversationId: string } | { directUserId: string }, text: string): Promise<Message> {
  const clientMessageId = crypto.randomUUID();
  const message = person.restSends
    ? fromJson(SendMessageResponseSchema, await rest("POST", "/v1/messages", person.device, { ...target, clientMessageId, text })).message
    : (
        await person.chat.sendMessage(
          { target: "conversationId" in target ? { case: "conversationId", value: target.conversationId } : { case: "directUserId", value: target.directUserId }, clientMessageId, text },
          person.device.call,
        )
      ).message;
  if (!message) throw new Error(`${person.name}'s send answered no message`);
  advance(person, message.conversationId, Number(message.seq));
  return message;
}

/** Each sender sends `count` messages one after the other, all senders at once; the seqs each got, in its order. */
const sendAtOnce = (senders: readonly Person[], conversationId: string, count: number) =>
  Promise.all(senders.map(async (sender) => {
    const seqs: number[] = [];
    for (let i = 0; i < count; i++) seqs.push(Number((await send(sender, { conversationId }, `${sender.name} #${i}`)).seq));
    return seqs;
  }));

/** The whole history of a conversation as a member reads it, oldest first. */
async function history(reader: Person, conversationId: string): Promise<Message[]> {
  const all: Message[] = [];
  for (let anchorSeq = 0n, more = true; more; ) {
    const page = await reader.chat.listMessages({ conversationId, direction: ListMessagesRequest_Direction.AFTER, anchorSeq, pageSize: 100 }, reader.device.call);
    all.push(...page.messages);
    more = page.hasMore;
    anchorSeq = page.messages.at(-1)?.seq ?? anchorSeq;
  }
  return all;
}

/** A person's unread count in one conversation, from its history: messages by others after how far they read. */
const unreadFromHistory = (entries: readonly Message[], person: Person, conversationId: string) =>
  entries.filter((m) => m.membership === undefined && m.senderId !== person.device.userId && Number(m.seq) > (readUpTo.get(readKey(person, conversationId)) ?? 0)).length;

test.serial("Ana and Ben, two devices each, chat directly and in a group of five through the edge: every device sees every message once, in order; typing and receipts arrive; unread counts match the history", async (t) => {
  const devices = await Promise.all(Array.from({ length: 5 }, () => rt.signUp()));
  const [anaDevice, benDevice, catDevice, danDevice, eveDevice] = devices as [Device, Device, Device, Device, Device];
  const person = (name: string, device: Device, over: Protocol, restSends = false): Person => ({ name, device, chat: createClient(ChatService, transports[over]()), restSends });
  const ana = person("Ana", anaDevice, "grpc");
  const ben = person("Ben", benDevice, "connect");
  const cat = person("Cat", catDevice, "grpc-web", true);
  const dan = person("Dan", danDevice, "grpc-web");
  const eve = person("Eve", eveDevice, "grpc");
  const people = [ana, ben, cat, dan, eve];

  const [anaPhone, benPhone] = await Promise.all([rt.anotherDevice(anaDevice), rt.anotherDevice(benDevice)]);
  const screens = {
    ana: [subscribe("Ana's laptop", anaDevice, "grpc"), subscribe("Ana's phone", anaPhone, "grpc-web")],
    ben: [subscribe("Ben's laptop", benDevice, "connect"), subscribe("Ben's phone", benPhone, "rest")],
    cat: [subscribe("Cat", catDevice, "grpc-web")],
    dan: [subscribe("Dan", danDevice, "connect")],
    eve: [subscribe("Eve", eveDevice, "grpc")],
  };
  const all = Object.values(screens).flat();
  t.teardown(() => all.forEach((screen) => screen.close()));
  await chat.until("every device's ready frame", () => all.every((s) => s.frames()[0]?.frame.case === "ready" || s.isEnded()));
  for (const screen of all) t.is(screen.frames()[0]?.frame.case, "ready", `${screen.label} is subscribed`);
  const startOffset = new Map(all.map((s) => [s, readyOffset(s)]));

  // Directly: Ana's first message starts the conversation; then both write at once; Ana has the last word.
  const direct = (await send(ana, { directUserId: ben.device.userId }, "hi Ben")).conversationId;
  const directSeqs = await sendAtOnce([ana, ben], direct, 4);
  await send(ana, { conversationId: direct }, "see you in the group");
  // A group of five: Ana owns it (entry 1), everyone writes at once, Dan has the last word.
  const { conversation } = await ana.chat.createGroup({ title: "Five", memberIds: [ben, cat, dan, eve].map((p) => p.device.userId) }, ana.device.call);
  const group = conversation!.conversationId;
  advance(ana, group, 1);
  const groupSeqs = await sendAtOnce(people, group, 3);
  await send(dan, { conversationId: group }, "that's all from me");

  const directExpected = Array.from({ length: 10 }, (_, i) => i + 1);
  const groupExpected = Array.from({ length: 16 }, (_, i) => i + 2);
  t.deepEqual(directSeqs.flat().sort((a, b) => a - b), directExpected.slice(1, 9), "the direct sends took 2..9");
  t.deepEqual(groupSeqs.flat().sort((a, b) => a - b), groupExpected.slice(0, 15), "the group sends took 2..16");
  const members = { [direct]: [...screens.ana, ...screens.ben], [group]: all };
  const expected = { [direct]: directExpected, [group]: groupExpected };

  await chat.until("every message on every member's device", () =>
    Object.entries(members).every(([id, screensOf]) => screensOf.every((s) => messagesOf(s, id).length >= expected[id]!.length)),
  );
  for (const [id, screensOf] of Object.entries(members)) {
    const reference = (await history(ana, id)).filter((m) => m.membership === undefined).map((m) => `${m.seq}:${m.messageId}:${m.text}`);
    for (const screen of screensOf) {
      const received = messagesOf(screen, id);
      t.deepEqual(received.map((m) => Number(m.seq)), expected[id], `${screen.label}: every message of ${id === direct ? "the direct conversation" : "the group"} once, in seq order`);
      t.deepEqual(received.map((m) => `${m.seq}:${m.messageId}:${m.text}`), reference, `${screen.label}: the same messages as the history`);
    }
  }
  for (const screen of [...screens.cat, ...screens.dan, ...screens.eve]) t.deepEqual(messagesOf(screen, direct), [], `${screen.label}: nothing of a conversation they are not in`);

  // Typing: Ben in the direct conversation (Connect), Dan in the group (REST); only the other members' devices show it.
  const typed = await ben.chat.setTyping({ conversationId: direct }, ben.device.call);
  t.true(typed.expiresInSeconds > 0);
  await rest("POST", `/v1/conversations/${group}:typing`, dan.device, {});
  const othersOf = (who: keyof typeof screens, id: string) => members[id]!.filter((s) => !screens[who].includes(s));
  await chat.until("Ben typing on Ana's devices, Dan typing on the other members' devices", () =>
    othersOf("ben", direct).every((s) => typingOf(s, direct, ben.device.userId).length > 0) && othersOf("dan", group).every((s) => typingOf(s, group, dan.device.userId).length > 0),
  );
  for (const screen of othersOf("dan", group)) t.true(typingOf(screen, group, dan.device.userId).every((e) => e.offset === 0n), `${screen.label}: typing is ephemeral (no offset)`);

  // Receipts: Ben reads the direct conversation to its end (Connect), Cat the group (REST); every member's devices hear of it.
  const benRead = await ben.chat.markRead({ conversationId: direct, readSeq: 10n }, ben.device.call);
  t.is(benRead.unreadCount, 0n);
  advance(ben, direct, 10);
  await rest("POST", `/v1/conversations/${group}:markRead`, cat.device, { readSeq: "17" });
  advance(cat, group, 17);
  await chat.until("Ben's receipt on the direct conversation's devices, Cat's on the group's", () =>
    members[direct]!.every((s) => receiptsOf(s, direct, ben.device.userId).some((r) => r.readSeq === 10n)) && members[group]!.every((s) => receiptsOf(s, group, cat.device.userId).some((r) => r.readSeq === 17n)),
  );
  // By now the typing signals (published before) would have arrived: a typer's own devices never got theirs.
  for (const screen of screens.ben) t.deepEqual(typingOf(screen, direct, ben.device.userId), [], `${screen.label}: not Ben's own typing`);
  for (const screen of screens.dan) t.deepEqual(typingOf(screen, group, dan.device.userId), [], `${screen.label}: not Dan's own typing`);

  // Unread, as each person's list and summary say (through the edge), against the history.
  const histories = { [direct]: await history(ana, direct), [group]: await history(ana, group) };
  for (const someone of people) {
    const listed = (await someone.chat.listConversations({}, someone.device.call)).conversations;
    const mine = Object.keys(histories).filter((id) => id === group || someone === ana || someone === ben);
    t.deepEqual(listed.map((x) => x.conversationId).sort(), [...mine].sort(), `${someone.name}'s conversations`);
    const fromHistory = mine.map((id) => unreadFromHistory(histories[id]!, someone, id));
    t.deepEqual(
      mine.map((id) => Number(listed.find((x) => x.conversationId === id)?.unreadCount)),
      fromHistory,
      `${someone.name}: ListConversations' unread counts are the history's`,
    );
    const summary = await someone.chat.getUnreadCount({}, someone.device.call);
    t.deepEqual(
      { conversations: Number(summary.unreadConversations), messages: Number(summary.unreadMessages) },
      { conversations: fromHistory.filter((n) => n > 0).length, messages: fromHistory.reduce((a, b) => a + b, 0) },
      `${someone.name}: GetUnreadCount is the history's`,
    );
  }
  // Ana: Ben's four direct messages were before her last word; in the group, everything after her own last send.
  t.is(unreadFromHistory(histories[direct]!, ana, direct), 0);
  t.is(unreadFromHistory(histories[direct]!, ben, direct), 0, "Ben read to the end");
  t.is(unreadFromHistory(histories[group]!, cat, group), 0, "Cat read to the end");
  t.true(unreadFromHistory(histories[group]!, eve, group) > 0, "Eve has not read Dan's last word");
  // The REST summary is the same message (int64 as JSON strings; zero left out).
  t.deepEqual(fromJson(GetUnreadCountResponseSchema, await rest("GET", "/v1/chat/unread-count", eve.device)), await eve.chat.getUnreadCount({}, eve.device.call));

  // Every stream stayed open, with every durable item once: offsets gapless from where it started.
  for (const screen of all) {
    t.false(screen.isEnded(), `${screen.label}: the stream stayed open`);
    const offsets = eventsOf(screen).filter((e) => e.offset > 0n).map((e) => e.offset);
    const from = startOffset.get(screen)!;
    t.deepEqual(offsets, offsets.map((_, i) => from + BigInt(i) + 1n), `${screen.label}: offsets gapless, no duplicate`);
    t.log(`${screen.label}: ${offsets.length} durable items from offset ${from + 1n}, ${eventsOf(screen).length - offsets.length} ephemeral`);
  }
});
