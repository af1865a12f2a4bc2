// Starts the real notification service for a test file, behind the real
// post service (which brings auth, user and media): its own database on the
// shared PostgreSQL, its own consumer groups and realtime key prefix, and the
// three local push providers (APNs, FCM, Web Push test servers) it delivers
// to over TLS. Also a hub on the same realtime prefix, to read users' streams
// and to hold "live foreground streams" the way the realtime service does.
import { createHash, generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { decodeJwt } from "jose";
import webpush from "web-push";
import { NotificationService } from "@aviary/gen/aviary/notification/v1/notification_pb";
import type { NotificationsChanged } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import { Platform } from "@aviary/gen/aviary/user/v1/user_pb";
import { openRedisUserStreams } from "../../runtime/src/realtime/redis.ts";
import { decodeEvent } from "../../runtime/src/realtime/events.ts";
import type { UserStreamHub } from "../../runtime/src/realtime/user-streams.ts";
import { silentSink } from "../../runtime/src/bus/log-sink.ts";
import { openEventBus } from "../../runtime/src/bus/open.ts";
import type { EventBus } from "../../runtime/src/bus/bus.ts";
import { eventually, infra, uniqueName, withClient } from "../../runtime/test-support/infra.ts";
import { freshDatabase } from "../../runtime/test-support/database.ts";
import { startTestAuth, type TestAuth, type TestServiceClient } from "../../auth/test/harness.ts";
import { startTestPost, type TestPost } from "../../post/test/harness.ts";
import type { Account } from "../../user/test/harness.ts";
import { notificationConfigFromEnv, startNotificationService, type RunningNotificationService } from "../src/index.ts";
import { startApnsServer, type ApnsServer } from "./providers/apns-server.ts";
import { fakeServiceAccount, startFcmServer, type FcmServer } from "./providers/fcm-server.ts";
import { startWebPushServer, type WebPushServer } from "./providers/webpush-server.ts";

export { as, rejection } from "../../auth/test/harness.ts";
export { violatedFields } from "../../post/test/harness.ts";
export type { Account } from "../../user/test/harness.ts";

/**
 * How long a test waits for the consumer. Each suite's fresh group reads the
 * shared topics from the beginning, so in a full run it first works through
 * every other suite's events: generous, not tight.
 */
export const CONSUMER_WAIT_MS = 90_000;

export const APNS_TOPIC = "app.aviary.test";
const clientSecret = "notification-test-secret-6f5e4d3c2b1a0987";

export interface Signed extends Account {
  /** The session of its access token (a device). */
  sessionId: string;
}

export interface TestNotification {
  post: TestPost;
  auth: TestAuth;
  service: RunningNotificationService;
  client: Client<typeof NotificationService>;
  env: Record<string, string>;
  apns: ApnsServer;
  fcm: FcmServer;
  webPush: WebPushServer;
  /** A hub on the service's realtime prefix. */
  hub: UserStreamHub;
  signUp(): Promise<Signed>;
  /** Registers a push device for the account (as its session); returns the device id. */
  registerDevice(account: Account, platform: "ios" | "android" | "web"): Promise<{ deviceId: string; token: string }>;
  /** Collects the NotificationsChanged events published to the user's stream from now on. */
  watchStream(userId: string): Promise<StreamWatch>;
  /** A producer on the same Kafka. */
  bus: EventBus;
  /** Publishes an event the way the real producers do (headers event-id, event-type, content-type); returns the id. */
  publish<D extends DescMessage>(topic: string, key: string, schema: D, message: MessageInitShape<D>, id?: string): Promise<string>;
  /** Runs SQL against the notification service's database. */
  query<T extends Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Polls until `check` holds (CONSUMER_WAIT_MS). */
  until(what: string, check: () => Promise<boolean>): Promise<void>;
  close(): Promise<void>;
}

export interface StreamWatch {
  readonly events: NotificationsChanged[];
  stop(): Promise<void>;
}

/** This service's entry in AUTH_SERVICE_CLIENTS, for an auth service started elsewhere (`options.post`). */
export const notificationClientEntry = `notification:user.devices.read+user.devices.write+user.profiles.read:${createHash("sha256").update(clientSecret).digest("hex")}`;

export interface TestNotificationOptions {
  noService?: boolean;
  /** More clients the auth service issues service tokens to (tests of NotificationInternalService). */
  serviceClients?: readonly TestServiceClient[];
  /** The post service (and its auth, user and media) to run behind, owned by the caller; its auth must list notificationClientEntry. */
  post?: TestPost;
}

export async function startTestNotification(env: Record<string, string> = {}, options: TestNotificationOptions = {}): Promise<TestNotification> {
  const urls = await infra();
  const auth =
    options.post?.auth ?? (await startTestAuth({ AUTH_SERVICE_CLIENTS: [notificationClientEntry, ...(options.serviceClients ?? []).map((client) => client.entry)].join(",") }));
  const post = options.post ?? (await startTestPost({}, { auth }));
  const database = await freshDatabase(urls.databaseUrl, "notification_test");
  const prefix = `${uniqueName("notiftest")}:`;

  const apnsKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const apns = await startApnsServer({ teamId: "TEAM123456", keyId: "KEY1234567", publicKey: apnsKey.publicKey, topic: APNS_TOPIC });
  const fcm = await startFcmServer({ projectId: "aviary-test" });
  const account = fakeServiceAccount(fcm.url, { projectId: "aviary-test" });
  fcm.trust(account.serviceAccount.client_email, account.publicKey);
  const vapid = webpush.generateVAPIDKeys();
  const webPush = await startWebPushServer({ vapidPublicKey: vapid.publicKey });
  const dir = await mkdtemp(join(tmpdir(), "aviary-notification-test-"));
  const caFile = join(dir, "ca.pem");
  // One CA signs every test server's certificate (tls.ts).
  await writeFile(caFile, apns.ca);

  const fullEnv: Record<string, string> = {
    NOTIFICATION_PORT: "0",
    NOTIFICATION_INTERNAL_PORT: "0",
    DATABASE_URL: database.url,
    REDIS_URL: urls.redisUrl,
    KAFKA_BROKERS: urls.kafkaBrokers.join(","),
    AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
    AUTH_URL: auth.service.peerUrl,
    USER_URL: post.user.service.peerUrl,
    NOTIFICATION_CLIENT_SECRET: clientSecret,
    NOTIFICATION_GROUP: uniqueName("notification_test"),
    NOTIFICATION_PUSH_GROUP: uniqueName("notification_push_test"),
    // Its own push topic: a worker pushes every request it reads to the devices it knows.
    NOTIFICATION_EVENTS_TOPIC: uniqueName("notification_events_test"),
    // Its own chat topic too: the chat subscription reads only what this suite publishes there, not every other suite's messages.
    CHAT_EVENTS_TOPIC: uniqueName("chat_events_notification_test"),
    REALTIME_REDIS_PREFIX: prefix,
    TRUSTED_PROXY_HOPS: "1",
    PAGE_TOKEN_SECRET: "test-page-token-secret-0123456789",
    LOG_LEVEL: "silent",
    APNS_URL: apns.url,
    APNS_KEY_ID: "KEY1234567",
    APNS_TEAM_ID: "TEAM123456",
    APNS_KEY: apnsKey.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    APNS_TOPIC,
    FCM_URL: fcm.url,
    FCM_SERVICE_ACCOUNT: account.json,
    WEBPUSH_VAPID_PUBLIC_KEY: vapid.publicKey,
    WEBPUSH_VAPID_PRIVATE_KEY: vapid.privateKey,
    WEBPUSH_SUBJECT: "mailto:push-test@aviary.invalid",
    PUSH_CA_FILE: caFile,
    // Retries in tests: real backoff, short steps.
    PUSH_RETRY_INITIAL: "20ms",
    PUSH_RETRY_MAX: "2s",
    ...env,
  };
  const service = options.noService ? undefined : await startNotificationService(notificationConfigFromEnv(fullEnv));
  const client = createClient(NotificationService, createGrpcTransport({ baseUrl: service?.url ?? "http://127.0.0.1:1" }));
  const hub = openRedisUserStreams({ url: urls.redisUrl, prefix, logger: silentSink });
  const bus = await openEventBus({ brokers: urls.kafkaBrokers, clientId: "notification-test-producer" });
  let tokens = 0;

  const until = (what: string, check: () => Promise<boolean>) => eventually(what, check, CONSUMER_WAIT_MS);

  return {
    post,
    auth,
    service: service as RunningNotificationService,
    client,
    env: fullEnv,
    apns,
    fcm,
    webPush,
    hub,
    async signUp() {
      const account = await post.signUp();
      const sid = decodeJwt(account.token)["sid"];
      return { ...account, sessionId: typeof sid === "string" ? sid : "" };
    },
    async registerDevice(account, platform) {
      tokens += 1;
      const token =
        platform === "web"
          ? JSON.stringify(webPush.subscribe())
          : platform === "ios"
            ? createHash("sha256").update(`apns-${process.pid}-${tokens}-${Date.now()}`).digest("hex")
            : `fcm-${process.pid}-${tokens}-${Date.now()}:APA91b${"x".repeat(20)}`;
      const { device } = await post.user.client.registerDevice(
        { platform: platform === "ios" ? Platform.IOS : platform === "android" ? Platform.ANDROID : Platform.WEB, token },
        account.call,
      );
      return { deviceId: device?.deviceId ?? "", token };
    },
    async watchStream(userId) {
      const events: NotificationsChanged[] = [];
      const stop = await hub.listen(userId, (item) => {
        const event = decodeEvent(item.payload);
        if (event.payload.case === "notificationsChanged") events.push(event.payload.value);
      });
      return { events, stop };
    },
    bus,
    async publish(topic, key, schema, message, id = crypto.randomUUID()) {
      await bus.publish([
        { topic, key, value: toBinary(schema, create(schema, message)), headers: { "event-id": id, "event-type": schema.typeName, "content-type": "application/x-protobuf" } },
      ]);
      return id;
    },
    query: (text, params = []) => withClient(database.url, async (pg) => (await pg.query(text, params)).rows),
    until,
    async close() {
      await service?.close();
      await hub.close();
      await bus.close();
      await Promise.all([apns.close(), fcm.close(), webPush.close()]);
      await database.drop();
      await rm(dir, { recursive: true, force: true });
      if (options.post !== undefined) return;
      await post.close();
      await auth.close();
    },
  };
}

/** The web push subscription id of a registered web token (for the server's requestsFor). */
export function webPushId(server: WebPushServer, token: string): string {
  return server.idOf(JSON.parse(token) as Parameters<WebPushServer["idOf"]>[0]);
}
