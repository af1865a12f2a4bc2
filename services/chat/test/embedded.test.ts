// `make dev` mode: PGlite, the in-process bus, the in-memory cache and
// stream hub, and a user peer handed in. The same outbox relay and delivery
// consumer run on them: a group's creation and messages reach every
// member's stream.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { ChatService } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { openDatabase } from "@aviary/runtime/db/open";
import { openEventBus } from "@aviary/runtime/bus/open";
import { openCache } from "@aviary/runtime/cache/open";
import { authConfigFromEnv, startAuthService } from "@aviary/auth";
import { MemoryUserStreams } from "../../runtime/src/realtime/memory.ts";
import { decodeEvent } from "../../runtime/src/realtime/events.ts";
import { eventually } from "../../runtime/test-support/infra.ts";
import { password, uniqueEmail } from "../../auth/test/harness.ts";
import { rejection } from "./harness.ts";
import { chatConfigFromEnv, startChatService, type ChatUsers } from "../src/index.ts";

test("a group and its messages reach every member's stream on embedded adapters", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "aviary-chat-embedded-"));
  const database = await openDatabase({});
  const cache = await openCache({});
  const bus = await openEventBus({ clientId: "chat-embedded-test" });
  const hub = new MemoryUserStreams();
  const auth = await startAuthService(
    authConfigFromEnv({ AUTH_PORT: "0", AUTH_CODE_SINK: join(dir, "codes.jsonl"), AUTH_ARGON2_MEMORY_KIB: "1024", AUTH_ARGON2_PASSES: "1", LOG_LEVEL: "silent" }),
    { database, cache, bus },
  );
  const authClient = createClient(AuthService, createConnectTransport({ baseUrl: auth.url, httpVersion: "1.1" }));
  const signUp = async () => {
    const identity = { case: "email" as const, value: uniqueEmail("chat") };
    const { userId } = await authClient.register({ identity, password });
    const login = await authClient.login({ identity, password });
    return { userId, call: { headers: { authorization: `Bearer ${login.tokens?.accessToken}` } } };
  };
  const [ana, ben, cat] = [await signUp(), await signUp(), await signUp()];
  // Everyone exists for everyone, except that Cat blocked Ana.
  const users: ChatUsers = {
    reachable: async (callerId, ids, call) => {
      const caller = [ana, ben, cat].find((u) => u.call.headers.authorization === call.headers["authorization"]);
      if (caller?.userId !== callerId) throw new Error("the caller id is not the token's");
      return new Set(ids.filter((id) => [ana, ben, cat].some((u) => u.userId === id) && !(caller === ana && id === cat.userId)));
    },
  };
  const chat = await startChatService(chatConfigFromEnv({ CHAT_PORT: "0", AUTH_JWKS_URL: `${auth.url}/.well-known/jwks.json`, LOG_LEVEL: "silent" }), { database, cache, bus, userStreams: hub, users });
  t.teardown(async () => {
    await chat.close();
    await auth.close();
    await hub.close();
    await bus.close();
    await cache.close();
    await database.close();
    await rm(dir, { recursive: true, force: true });
  });
  t.is(chat.database.kind, "pglite");
  t.is(chat.bus.kind, "memory");

  const seen = new Map<string, string[]>();
  for (const user of [ana, ben]) {
    seen.set(user.userId, []);
    await hub.listen(user.userId, (item) => {
      const event = decodeEvent(item.payload);
      seen.get(user.userId)!.push(event.payload.case === "chatMessage" ? `message ${event.payload.value.seq}` : String(event.payload.case));
    });
  }
  const client = createClient(ChatService, createConnectTransport({ baseUrl: chat.url, httpVersion: "1.1" }));
  const { conversation } = await client.createGroup({ title: "dev", memberIds: [ben.userId] }, ana.call);
  const conversationId = conversation!.conversationId;
  await client.sendMessage({ target: { case: "conversationId", value: conversationId }, clientMessageId: crypto.randomUUID(), text: "one" }, ana.call);
  await client.sendMessage({ target: { case: "conversationId", value: conversationId }, clientMessageId: crypto.randomUUID(), text: "two" }, ben.call);
  await eventually("both streams hold the group and both messages", () => [...seen.values()].every((events) => events.length >= 3), 20_000);
  for (const events of seen.values()) t.deepEqual(events, ["chatConversation", "message 2", "message 3"]);

  const blocked = await rejection(client.createGroup({ title: "no", memberIds: [cat.userId] }, ana.call));
  t.is(blocked.code, Code.InvalidArgument);
  t.is((await client.listConversations({}, ben.call)).conversations[0]?.unreadCount, 0n);
  t.is((await client.listConversations({}, ana.call)).conversations[0]?.unreadCount, 1n);
});
