// Failures on real Postgres, Kafka and Redis, the chat service as a process
// of its own:
// - SIGKILL right after a SendMessage commits and before it answers (the
//   test-only CHAT_FAILPOINT=exit-after-send-commit), then a restart: the
//   message is in history once and reaches every member's stream once; the
//   client's retry (same client_message_id) gets the original back and
//   delivers nothing new.
// - the realtime Redis (a private one) down while members send: the
//   messages are still committed; once it is back, delivery (the consumer
//   retrying through the bus) catches up: nothing lost, nothing twice.
import test from "ava";
import type { ChildProcess } from "node:child_process";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ChatService, ListMessagesRequest_Direction, type Message } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { startServiceProcess } from "../../runtime/test-support/child.ts";
import { freePort } from "../../runtime/test-support/envoy.ts";
import { eventually, infra, privateServer, uniqueName, type PrivateServer } from "../../runtime/test-support/infra.ts";
import { freshDatabase } from "../../runtime/test-support/database.ts";
import { openRedisUserStreams } from "../../runtime/src/realtime/redis.ts";
import { decodeEvent } from "../../runtime/src/realtime/events.ts";
import type { UserStreamHub, UserStreamPublisher } from "../../runtime/src/realtime/user-streams.ts";
import { silentSink } from "../../runtime/src/bus/log-sink.ts";
import { startTestUser, type Account, type TestUser } from "../../user/test/harness.ts";
import { chatConfigFromEnv, startChatService, type RunningChatService } from "../src/index.ts";
import { DELIVERY_WAIT_MS } from "./harness.ts";

let user: TestUser;
let database: { url: string; drop(): Promise<void> };
let hub: UserStreamHub;
let env: Record<string, string>;
let url: string;
const children = new Set<ChildProcess>();
let redis: PrivateServer | undefined;
let inProcess: RunningChatService | undefined;

test.before(async () => {
  const urls = await infra();
  user = await startTestUser();
  database = await freshDatabase(urls.databaseUrl, "chat_fail");
  const prefix = `${uniqueName("chatfail")}:`;
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  env = {
    CHAT_ROLE: "all",
    CHAT_HOST: "127.0.0.1",
    CHAT_PORT: String(port),
    DATABASE_URL: database.url,
    REDIS_URL: urls.redisUrl,
    KAFKA_BROKERS: urls.kafkaBrokers.join(","),
    AUTH_JWKS_URL: `${user.auth.service.url}/.well-known/jwks.json`,
    USER_URL: user.service.peerUrl,
    CHAT_GROUP: uniqueName("chat_fail"),
    CHAT_EVENTS_TOPIC: uniqueName("chat_events_fail"),
    REALTIME_REDIS_PREFIX: prefix,
    PAGE_TOKEN_SECRET: "test-page-token-secret-0123456789",
  };
  hub = openRedisUserStreams({ url: urls.redisUrl, prefix, logger: silentSink });
});
test.after.always(async () => {
  for (const child of children) child.kill("SIGKILL");
  await inProcess?.close();
  await hub?.close();
  await database?.drop();
  await user?.close();
  await redis?.down();
});

async function startProcess(extra: Record<string, string> = {}): Promise<ChildProcess> {
  const child = await startServiceProcess({ entry: "services/chat/src/main.ts", env: { ...env, ...extra }, ready: "chat service listening" });
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

/** Every chat message a user's stream receives, in arrival order. */
async function watch(userId: string): Promise<{ messages: Message[]; stop(): Promise<void> }> {
  const messages: Message[] = [];
  const stop = await hub.listen(userId, (item) => {
    const event = decodeEvent(item.payload);
    if (event.payload.case === "chatMessage") messages.push(event.payload.value);
  });
  return { messages, stop };
}

const exited = (child: ChildProcess) =>
  new Promise<NodeJS.Signals | null>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(child.signalCode) : child.once("exit", (_code, signal) => resolve(signal))));

test.serial("SIGKILL right after a send commits, then a restart: the message is in history once and on every member's stream once; the retry returns it", async (t) => {
  const [owner, ...others] = await Promise.all([user.signUp(), user.signUp(), user.signUp()]);
  const members: Account[] = [owner!, ...others];
  const first = await startProcess({ CHAT_FAILPOINT: "exit-after-send-commit" });
  const client: Client<typeof ChatService> = createClient(ChatService, createGrpcTransport({ baseUrl: url }));
  const { conversation } = await client.createGroup({ title: "Crash", memberIds: others.map((o) => o.userId) }, owner!.call);
  const conversationId = conversation!.conversationId;
  const streams = await Promise.all(members.map((m) => watch(m.userId)));

  const clientMessageId = crypto.randomUUID();
  const request = { target: { case: "conversationId" as const, value: conversationId }, clientMessageId, text: "committed, never answered", replyToSeq: 0n };
  const died = exited(first);
  await t.throwsAsync(client.sendMessage(request, owner!.call), undefined, "the process died before answering");
  t.is(await died, "SIGKILL");

  await startProcess();
  const history = async () => (await client.listMessages({ conversationId, direction: ListMessagesRequest_Direction.AFTER, pageSize: 100 }, owner!.call)).messages.filter((m) => m.membership === undefined);
  const committed = await history();
  t.deepEqual(
    committed.map((m) => [m.clientMessageId, Number(m.seq)]),
    [[clientMessageId, 2]],
    "committed once, before the kill",
  );
  const ofConversation = (s: { messages: Message[] }) => s.messages.filter((m) => m.conversationId === conversationId && m.membership === undefined);
  await eventually("the message on every member's stream after the restart", () => streams.every((s) => ofConversation(s).length >= 1), DELIVERY_WAIT_MS);

  const retry = await client.sendMessage(request, owner!.call);
  t.false(retry.created);
  t.is(retry.message?.messageId, committed[0]!.messageId);
  t.is(retry.message?.seq, 2n);

  // A marker sent after the retry, on the same conversation (one partition, in order): once it has arrived,
  // anything the retry delivered would have arrived before it.
  const marker = await client.sendMessage({ ...request, clientMessageId: crypto.randomUUID(), text: "marker" }, owner!.call);
  t.true(marker.created);
  t.is(marker.message?.seq, 3n);
  await eventually("the marker on every member's stream", () => streams.every((s) => ofConversation(s).some((m) => m.seq === 3n)), DELIVERY_WAIT_MS);
  for (const s of streams) {
    t.deepEqual(
      ofConversation(s).map((m) => [m.clientMessageId, Number(m.seq)]),
      [
        [clientMessageId, 2],
        [marker.message!.clientMessageId, 3],
      ],
      "each message exactly once, in order",
    );
  }
  t.deepEqual((await history()).map((m) => Number(m.seq)), [2, 3], "history holds the message once");
  await Promise.all(streams.map((s) => s.stop()));
});

test.serial("the realtime Redis down while members send: the messages are committed, and delivered once each when it is back", async (t) => {
  redis = await privateServer("redis", "chat-realtime-redis");
  const prefix = `${uniqueName("chat_outage")}:`;
  // In process, on its own streams (a private Redis; the cache stays on the shared one), group and topic.
  const outageHub = openRedisUserStreams({ url: redis.url, prefix, logger: silentSink });
  // The service's streams are that hub, counting failed publishes: proof that delivery ran into the outage.
  let failedPublishes = 0;
  const streams: UserStreamPublisher = {
    async publish(userId, item) {
      try {
        return await outageHub.publish(userId, item);
      } catch (error) {
        failedPublishes++;
        throw error;
      }
    },
    async publishMany(items) {
      try {
        return await outageHub.publishMany(items);
      } catch (error) {
        failedPublishes++;
        throw error;
      }
    },
    signal: (userIds, item, options) => outageHub.signal(userIds, item, options),
    foregroundSessions: (userIds) => outageHub.foregroundSessions(userIds),
    ping: () => outageHub.ping(),
    close: async () => {},
  };
  inProcess = await startChatService(
    chatConfigFromEnv({ ...env, CHAT_PORT: "0", REALTIME_REDIS_PREFIX: prefix, CHAT_GROUP: uniqueName("chat_outage"), CHAT_EVENTS_TOPIC: uniqueName("chat_events_outage"), LOG_LEVEL: process.env["CHAT_TEST_LOG"] ?? "silent" }),
    { userStreams: streams },
  );
  const client = createClient(ChatService, createGrpcTransport({ baseUrl: inProcess.url }));
  try {
    const members = await Promise.all([user.signUp(), user.signUp(), user.signUp()]);
    const [owner, second] = members;
    const { conversation } = await client.createGroup({ title: "Outage", memberIds: members.slice(1).map((m) => m.userId) }, owner!.call);
    const conversationId = conversation!.conversationId;
    const send = (from: Account, text: string) => client.sendMessage({ target: { case: "conversationId", value: conversationId }, clientMessageId: crypto.randomUUID(), text, replyToSeq: 0n }, from.call);
    /** The chat messages of this conversation now in a user's stream (its current epoch), as seqs. */
    const stored = async (userId: string) => {
      const position = await outageHub.position(userId);
      const items = position.offset === 0 ? [] : ((await outageHub.range(userId, position.epoch, 1, position.offset)) ?? []);
      return items.flatMap((item) => {
        const event = decodeEvent(item.payload);
        return event.payload.case === "chatMessage" && event.payload.value.conversationId === conversationId && event.payload.value.membership === undefined ? [Number(event.payload.value.seq)] : [];
      });
    };

    const before = await send(owner!, "before the outage");
    await eventually("delivery works before the outage", async () => (await Promise.all(members.map((m) => stored(m.userId)))).every((seqs) => seqs.includes(Number(before.message!.seq))), DELIVERY_WAIT_MS);

    await redis.stop();
    const during = [await send(owner!, "during 1"), await send(second!, "during 2"), await send(owner!, "during 3")];
    t.true(during.every((reply) => reply.created), "sends are answered while the realtime Redis is down");
    // In Kafka: the delivery consumer is now failing on these (the streams are unreachable) and retrying.
    await inProcess.eventsFlushed(DELIVERY_WAIT_MS);
    const history = (await client.listMessages({ conversationId, direction: ListMessagesRequest_Direction.AFTER, pageSize: 100 }, owner!.call)).messages.filter((m) => m.membership === undefined);
    t.deepEqual(history.map((m) => m.text), ["before the outage", "during 1", "during 2", "during 3"], "committed during the outage");

    // Back as soon as delivery has failed at least once: the bus retries a few times with backoff before it parks an
    // event on the DLQ, so this checks the retry path, not an outage longer than that budget.
    await eventually("delivery to fail on the outage", () => failedPublishes > 0, DELIVERY_WAIT_MS);
    const startedAt = Date.now();
    await redis.start();
    t.log(`failed publishes before the restart: ${failedPublishes}; redis start took ${Date.now() - startedAt} ms`);
    const duringSeqs = during.map((reply) => Number(reply.message!.seq));
    // The private Redis keeps nothing across a restart (no persistence): its streams start a new epoch, so only what was
    // delivered after it came back is there. That must be each message of the outage, once, in order.
    await eventually("the outage's messages on every member's stream", async () => (await Promise.all(members.map((m) => stored(m.userId).catch((): number[] => [])))).every((seqs) => duringSeqs.every((seq) => seqs.includes(seq))), DELIVERY_WAIT_MS);
    // A marker behind them on the same conversation (one partition, in order): once it is in, any second copy would be too.
    const marker = await send(second!, "after the outage");
    await eventually("the marker on every member's stream", async () => (await Promise.all(members.map((m) => stored(m.userId)))).every((seqs) => seqs.includes(Number(marker.message!.seq))), DELIVERY_WAIT_MS);
    for (const member of members) t.deepEqual(await stored(member.userId), [...duringSeqs, Number(marker.message!.seq)], "each once, in order");
  } finally {
    await outageHub.close();
  }
});
