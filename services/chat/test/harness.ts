// Starts the real chat service for a test file, behind real auth and user
// services: its own database on the shared PostgreSQL, its own events topic,
// consumer group and realtime key prefix. Also a hub on that prefix, to read
// members' streams and to hold live connections the way the realtime
// service does.
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { decodeJwt } from "jose";
import { ChatService, type Message } from "@aviary/gen/aviary/chat/v1/chat_pb";
import type { Event } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import { openRedisUserStreams } from "../../runtime/src/realtime/redis.ts";
import { decodeEvent } from "../../runtime/src/realtime/events.ts";
import type { UserStreamHub } from "../../runtime/src/realtime/user-streams.ts";
import { silentSink } from "../../runtime/src/bus/log-sink.ts";
import { eventually, infra, uniqueName, withClient } from "../../runtime/test-support/infra.ts";
import { freshDatabase } from "../../runtime/test-support/database.ts";
import { NO_MEDIA_URL, startTestUser, type Account, type TestUser } from "../../user/test/harness.ts";
import { startTestMedia, uploadSample, type TestMedia } from "../../media/test/harness.ts";
import type { MediaPurpose } from "@aviary/gen/aviary/media/v1/media_pb";
import { chatConfigFromEnv, startChatService, type RunningChatService } from "../src/index.ts";

export { rejection } from "../../auth/test/harness.ts";
export { violatedFields } from "../../post/test/harness.ts";

/** How long a test waits for delivery (Kafka consumer start-up and rebalances included): generous, not tight. */
export const DELIVERY_WAIT_MS = 60_000;

export interface Signed extends Account {
  /** The session of its access token (a device). */
  sessionId: string;
}

/** Everything one user's stream received, decoded, in arrival order. */
export interface StreamWatch {
  readonly events: Event[];
  /** The stream offset each event arrived with (0: ephemeral), parallel to events. */
  readonly offsets: number[];
  /** The chat messages received, in arrival order. */
  messages(): Message[];
  stop(): Promise<void>;
}

export interface TestChat {
  user: TestUser;
  service: RunningChatService;
  /** The service's CHAT_EVENTS_TOPIC. */
  eventsTopic: string;
  client: Client<typeof ChatService>;
  hub: UserStreamHub;
  signUp(): Promise<Signed>;
  watchStream(userId: string): Promise<StreamWatch>;
  /** Runs SQL against the chat service's database. */
  query<T extends Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Rows of the chat tables (for "nothing was written"). */
  counts(): Promise<{ conversations: number; members: number; entries: number; outbox: number }>;
  /** Polls until `check` holds (DELIVERY_WAIT_MS). */
  until(what: string, check: () => boolean | Promise<boolean>): Promise<void>;
  /** The media service (with `media: true`), verifying the same issuer's tokens. */
  media?: TestMedia;
  /** Uploads a small PNG as `account` (confirmed unless `confirm` is false); needs `media: true`. */
  upload(account: Signed, options: { purpose: MediaPurpose; confirm?: boolean }): Promise<string>;
  close(): Promise<void>;
}

export interface TestChatOptions {
  /** Auth and user services to run behind (left running at close); its own otherwise. */
  user?: TestUser;
  /** The realtime key prefix (a realtime service's, to deliver to its streams); its own otherwise. */
  prefix?: string;
  /** Starts a media service (attachments, group avatars); without it media checks fail as UNAVAILABLE. */
  media?: boolean;
}

/**
 * A chat instance's environment on the shared infrastructure: its own
 * database, consumer group (`group`, made unique) and topic, the realtime
 * prefix whose streams it delivers to, and `user`'s auth and user services.
 * Instances given the same result share all of it (ordering, fast-path tests).
 */
export async function chatTestEnv(options: { databaseUrl: string; user: TestUser; prefix: string; group: string; eventsTopic?: string }): Promise<Record<string, string>> {
  const urls = await infra();
  return {
    CHAT_PORT: "0",
    CHAT_INTERNAL_PORT: "0",
    DATABASE_URL: options.databaseUrl,
    REDIS_URL: urls.redisUrl,
    KAFKA_BROKERS: urls.kafkaBrokers.join(","),
    AUTH_JWKS_URL: `${options.user.auth.service.url}/.well-known/jwks.json`,
    USER_URL: options.user.service.peerUrl,
    CHAT_GROUP: uniqueName(options.group),
    // Its own topic: a fresh group on the shared one would first work through every other suite's events.
    CHAT_EVENTS_TOPIC: options.eventsTopic ?? uniqueName(`${options.group}_events`),
    REALTIME_REDIS_PREFIX: options.prefix,
    PAGE_TOKEN_SECRET: "test-page-token-secret-0123456789",
    // CHAT_TEST_LOG=warn shows the service's log while debugging a test.
    LOG_LEVEL: process.env["CHAT_TEST_LOG"] ?? "silent",
  };
}

export async function startTestChat(env: Record<string, string> = {}, options: TestChatOptions = {}): Promise<TestChat> {
  const urls = await infra();
  const user = options.user ?? (await startTestUser());
  const database = await freshDatabase(urls.databaseUrl, "chat_test");
  const prefix = options.prefix ?? `${uniqueName("chattest")}:`;
  const media = options.media === true ? await startTestMedia({}, user.auth) : undefined;
  // Its own topic: a fresh group on the shared one would first work through every other suite's events.
  const eventsTopic = env["CHAT_EVENTS_TOPIC"] ?? uniqueName("chat_events_test");
  const service = await startChatService(
    chatConfigFromEnv({
      ...(await chatTestEnv({ databaseUrl: database.url, user, prefix, group: "chat_test", eventsTopic })),
      MEDIA_URL: media?.service.peerUrl ?? NO_MEDIA_URL,
      ...env,
    }),
  );
  const client = createClient(ChatService, createGrpcTransport({ baseUrl: service.url }));
  const hub = openRedisUserStreams({ url: urls.redisUrl, prefix, logger: silentSink });
  const query = <T extends Record<string, unknown>>(text: string, params: unknown[] = []) => withClient(database.url, async (pg) => (await pg.query(text, params)).rows as T[]);

  return {
    user,
    service,
    eventsTopic,
    client,
    hub,
    async signUp() {
      const account = await user.signUp();
      const sid = decodeJwt(account.token)["sid"];
      return { ...account, sessionId: typeof sid === "string" ? sid : "" };
    },
    async watchStream(userId) {
      const events: Event[] = [];
      const offsets: number[] = [];
      const stop = await hub.listen(userId, (item) => {
        events.push(decodeEvent(item.payload));
        offsets.push(item.offset);
      });
      return {
        events,
        offsets,
        messages: () => events.flatMap((e) => (e.payload.case === "chatMessage" ? [e.payload.value] : [])),
        stop,
      };
    },
    query,
    async counts() {
      const [row] = await query<{ conversations: number; members: number; entries: number; outbox: number }>(
        `select (select count(*) from chat.conversations)::int as conversations, (select count(*) from chat.members)::int as members,
                (select count(*) from chat.entries)::int as entries, (select count(*) from chat.outbox_events)::int as outbox`,
      );
      return row!;
    },
    until: (what, check) => eventually(what, check, DELIVERY_WAIT_MS),
    ...(media === undefined ? {} : { media }),
    async upload(account, uploadOptions) {
      if (media === undefined) throw new Error("startTestChat without media: true");
      return uploadSample(media.client, account.call, uploadOptions);
    },
    async close() {
      await service.close();
      await hub.close();
      await database.drop();
      await media?.close();
      if (options.user === undefined) await user.close();
    },
  };
}
