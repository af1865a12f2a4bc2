// Starts the real feed service for a test file, behind the real post service
// (which brings auth, user and media, see services/post/test/harness.ts):
// its own database on the shared PostgreSQL, its own consumer group, and its
// own Redis key prefix, so test files never share projections or timelines.
// Also a producer on the same Kafka, for tests that send events by hand
// (redelivery, poison events), and a Redis client to look at timelines.
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { toBinary } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import { FeedService } from "@aviary/gen/aviary/feed/v1/feed_pb";
import { openEventBus } from "@aviary/runtime/bus/open";
import type { EventBus } from "@aviary/runtime/bus/bus";
import { infra, uniqueName, withClient } from "../../runtime/test-support/infra.ts";
import { freshDatabase } from "../../runtime/test-support/database.ts";
import { startTestPost, type Account, type TestPost } from "../../post/test/harness.ts";
import type { TestAuth } from "../../auth/test/harness.ts";
import type { TestUser } from "../../user/test/harness.ts";
import type { TestMedia } from "../../media/test/harness.ts";
import { feedConfigFromEnv, startFeedService, type RunningFeedService } from "../src/index.ts";

export { as, rejection } from "../../auth/test/harness.ts";

/**
 * How long a test waits for the consumer to apply something. Each suite's
 * fresh group reads the shared topics from the beginning, so in a full run it
 * first works through every other suite's events: generous, not tight.
 */
export const CONSUMER_WAIT_MS = 60_000;
export type { Account } from "../../user/test/harness.ts";

export interface TestFeed {
  post: TestPost;
  service: RunningFeedService;
  client: Client<typeof FeedService>;
  /** The environment the feed service was started with (to start more instances, or a consumer process). */
  env: Record<string, string>;
  databaseUrl: string;
  redis: Redis;
  /** The Redis key of a user's home timeline. */
  timelineKey(userId: string): string;
  /** The post ids in a user's timeline, newest first; null when the timeline does not exist. */
  timeline(userId: string): Promise<string[] | null>;
  /** Runs SQL against the feed service's database. */
  query<T extends Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Publishes an event the way the real producers do (headers event-id, event-type, content-type). */
  publish<D extends DescMessage>(topic: string, key: string, schema: D, message: MessageInitShape<D>, id?: string): Promise<string>;
  bus: EventBus;
  signUp(): Promise<Account>;
  close(): Promise<void>;
}

export interface TestFeedOptions {
  /** Environment for the post service (e.g. a private KAFKA_BROKERS). */
  postEnv?: Record<string, string>;
  /** Services to reuse (left running on close). */
  deps?: { auth?: TestAuth; user?: TestUser; media?: TestMedia };
  /** Start no feed service in this process (a test runs it as a child process). */
  noService?: boolean;
}

export async function startTestFeed(env: Record<string, string> = {}, options: TestFeedOptions = {}): Promise<TestFeed> {
  const urls = await infra();
  const post = await startTestPost(options.postEnv ?? {}, options.deps ?? {});
  const database = await freshDatabase(urls.databaseUrl, "feed_test");
  const prefix = `${uniqueName("feedtest")}:`;
  const fullEnv: Record<string, string> = {
    FEED_PORT: "0",
    FEED_INTERNAL_PORT: "0",
    DATABASE_URL: database.url,
    REDIS_URL: urls.redisUrl,
    KAFKA_BROKERS: urls.kafkaBrokers.join(","),
    AUTH_JWKS_URL: `${post.auth.service.url}/.well-known/jwks.json`,
    POST_URL: post.service.peerUrl,
    USER_URL: post.user.service.peerUrl,
    // Each suite its own group and key prefix: shared ones would split partitions and timelines between suites.
    FEED_GROUP: uniqueName("feed_test"),
    FEED_REDIS_PREFIX: prefix,
    TRUSTED_PROXY_HOPS: "1",
    PAGE_TOKEN_SECRET: "test-page-token-secret-0123456789",
    LOG_LEVEL: "silent",
    ...env,
  };
  const service = options.noService ? undefined : await startFeedService(feedConfigFromEnv(fullEnv));
  const client = createClient(FeedService, createGrpcTransport({ baseUrl: service?.url ?? "http://127.0.0.1:1" }));
  const redis = new Redis(fullEnv["FEED_REDIS_URL"] ?? fullEnv["REDIS_URL"]!, { maxRetriesPerRequest: 1 });
  redis.on("error", () => undefined);
  const bus = await openEventBus({ brokers: fullEnv["KAFKA_BROKERS"]!.split(","), clientId: "feed-test-producer" });
  const timelineKey = (userId: string) => `${prefix}feed:home:{${userId}}`;

  return {
    post,
    service: service as RunningFeedService,
    client,
    env: fullEnv,
    databaseUrl: database.url,
    redis,
    timelineKey,
    async timeline(userId) {
      const key = timelineKey(userId);
      const [[, exists], [, members]] = (await redis.multi().exists(key).zrevrange(key, 0, -1).exec()) as [[null, number], [null, string[]]];
      return exists === 1 ? members.filter((m) => m !== "_") : null;
    },
    query: (text, params = []) => withClient(database.url, async (pg) => (await pg.query(text, params)).rows),
    async publish(topic, key, schema, message, id = crypto.randomUUID()) {
      await bus.publish([
        {
          topic,
          key,
          value: toBinary(schema, create(schema, message)),
          headers: { "event-id": id, "event-type": schema.typeName, "content-type": "application/x-protobuf" },
        },
      ]);
      return id;
    },
    bus,
    signUp: () => post.signUp(),
    async close() {
      await service?.close();
      await bus.close();
      redis.disconnect();
      await database.drop();
      await post.close();
    },
  };
}
