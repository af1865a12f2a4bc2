import { Kafka, logLevel, Partitioners, type Admin, type ITopicConfig, type Producer, type TopicMessages } from "kafkajs";
import { deadLetterTopic, type EventBus, type EventRecord, type SubscribeOptions, type Subscription } from "./bus.ts";
import { startKafkaSubscription } from "./kafka-consumer.ts";
import { zeroEventCounters } from "./delivery.ts";
import { observeConsumerLag } from "./kafka-lag.ts";
import { kafkaLogCreator } from "./kafka-log.ts";
import { consoleSink, type LogSink } from "./log-sink.ts";
import { sleep } from "./timing.ts";
import { tracedSubscriber } from "./tracing.ts";

export interface KafkaBusOptions {
  brokers: string[];
  clientId: string;
  /** Partitions of topics this bus creates (default 3, as the memory bus). */
  partitions?: number;
  /** Replication factor of topics this bus creates (default 1, for single-broker setups). */
  replicationFactor?: number;
  logger?: LogSink;
  /** How long `subscribe` waits for its consumer group join (default 30 s). */
  joinTimeoutMs?: number;
  /**
   * Consumer session timeout (default 10 s). After a crash or a broker
   * restart the group waits this long for the lost member before handing its
   * partitions on, so shorter means faster recovery; but a handler must not
   * run longer than this between heartbeats (retry backoffs do heartbeat).
   */
  sessionTimeoutMs?: number;
}

const PING_TIMEOUT_MS = 3_000;

/**
 * The Kafka adapter. Producer: idempotent, one request in flight, acks from
 * all in-sync replicas, so a retried send neither duplicates nor reorders
 * within a partition. Topics (and their `.dlq`) are created through the admin
 * client before first use, so existence never depends on broker auto-creation.
 * Producer and admin are built lazily and rebuilt after a failure, which is
 * how they recover when a broker goes away and comes back.
 */
export function openKafkaBus(options: KafkaBusOptions): EventBus {
  const log = options.logger ?? consoleSink;
  const kafka = new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    logLevel: logLevel.WARN,
    logCreator: kafkaLogCreator(log),
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    retry: { initialRetryTime: 300, retries: 5, maxRetryTime: 5_000 },
  });
  const numPartitions = options.partitions ?? 3;
  const replicationFactor = options.replicationFactor ?? 1;
  const knownTopics = new Set<string>();
  const subscriptions = new Set<Subscription>();
  /** Consumer-lag gauge callbacks (kafka-lag.ts), one per subscription; removed before the admin client closes. */
  const lagObservers = new Set<() => void>();

  const admin = lazyClient<Admin>(
    () => connected(kafka.admin()),
    (client) => client.disconnect(),
  );

  const producer = lazyClient<Producer>(
    () =>
      connected(
        kafka.producer({
          idempotent: true,
          maxInFlightRequests: 1,
          allowAutoTopicCreation: false,
          createPartitioner: Partitioners.DefaultPartitioner,
          // Bounded, unlike kafkajs' default for idempotent producers: during
          // an outage publish must fail (after ~15 s) rather than hang, so the
          // outbox relay ends its transaction and retries the batch itself.
          retry: { initialRetryTime: 300, retries: 5, maxRetryTime: 5_000 },
        }),
      ),
    (client) => client.disconnect(),
  );

  async function withAdmin<T>(use: (client: Admin) => Promise<T>): Promise<T> {
    try {
      return await use(await admin.get());
    } catch (error) {
      await admin.reset();
      throw error;
    }
  }

  async function ensureTopics(topics: string[]): Promise<void> {
    const missing = [...new Set(topics)].filter((topic) => !knownTopics.has(topic));
    if (missing.length === 0) return;
    await withAdmin((client) => createTopicsWithLeaders(client, missing.map((topic) => ({ topic, numPartitions, replicationFactor }))));
    for (const topic of missing) knownTopics.add(topic);
  }

  // kafkajs' idempotent producer keeps sequence numbers per partition; two
  // sends racing on one producer can trip them. Publishes go one at a time.
  let queue: Promise<unknown> = Promise.resolve();
  function serially<T>(task: () => Promise<T>): Promise<T> {
    const run = queue.then(task, task);
    queue = run.catch(() => undefined);
    return run;
  }

  const publish = (records: EventRecord[]): Promise<void> =>
    serially(async () => {
      if (records.length === 0) return;
      await ensureTopics(records.map((r) => r.topic));
      const client = await producer.get();
      try {
        await client.sendBatch({ acks: -1, timeout: 10_000, topicMessages: groupByTopic(records) });
      } catch (error) {
        // A fresh producer gets a new producer id and clean sequence state;
        // reusing one whose retries ran out can wedge on OUT_OF_ORDER_SEQUENCE.
        await producer.reset();
        throw error;
      }
    });

  return {
    kind: "kafka",
    publish,

    async subscribe(subscribeOptions: SubscribeOptions) {
      await ensureTopics([...subscribeOptions.topics, ...subscribeOptions.topics.map(deadLetterTopic)]);
      zeroEventCounters(subscribeOptions);
      const subscription = await startKafkaSubscription(
        { kafka, publish, log, joinTimeoutMs: options.joinTimeoutMs ?? 30_000, sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000 },
        tracedSubscriber(subscribeOptions, "kafka"),
      );
      subscriptions.add(subscription);
      const unobserve = observeConsumerLag(subscribeOptions.telemetry, subscribeOptions.groupId, subscribeOptions.topics, withAdmin);
      lagObservers.add(unobserve);
      return {
        async stop() {
          lagObservers.delete(unobserve);
          unobserve();
          subscriptions.delete(subscription);
          await subscription.stop();
        },
      };
    },

    async ping() {
      // The bound covers connecting too: with no broker, kafkajs would retry
      // the connection for many seconds before describeCluster even starts.
      const answer = withAdmin((client) => client.describeCluster());
      answer.catch(() => undefined); // settles later if the timeout wins
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`kafka did not answer within ${PING_TIMEOUT_MS} ms`)), PING_TIMEOUT_MS);
      });
      try {
        await Promise.race([answer, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },

    async close() {
      for (const unobserve of lagObservers) unobserve();
      lagObservers.clear();
      await Promise.all([...subscriptions].map((s) => s.stop()));
      subscriptions.clear();
      await serially(() => producer.reset());
      await admin.reset();
    },
  };
}

/** One record list per topic, order kept (kafkajs keeps it per partition). */
function groupByTopic(records: EventRecord[]): TopicMessages[] {
  const byTopic = new Map<string, TopicMessages>();
  for (const record of records) {
    let entry = byTopic.get(record.topic);
    if (!entry) byTopic.set(record.topic, (entry = { topic: record.topic, messages: [] }));
    entry.messages.push({
      key: record.key,
      value: Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength),
      headers: record.headers,
    });
  }
  return [...byTopic.values()];
}

const TOPIC_READY_TIMEOUT_MS = 15_000;

/**
 * Creates `topics` (those that exist already are left as they are) and
 * waits until every partition has a leader, by polling metadata: kafkajs'
 * own `waitForLeaders` gives up on UNKNOWN_TOPIC_OR_PARTITION, which a KRaft
 * broker answers until a new topic reaches its metadata cache. The bus'
 * ensureTopics and the benchmarks' admin clients create topics this way.
 */
export async function createTopicsWithLeaders(admin: Admin, topics: ITopicConfig[]): Promise<void> {
  await admin.createTopics({ topics, waitForLeaders: false, timeout: 10_000 });
  await waitForLeaders(admin, topics.map((t) => t.topic));
}

/** Polls metadata until every partition of `topics` has a leader. */
async function waitForLeaders(admin: Admin, topics: string[]): Promise<void> {
  const deadline = Date.now() + TOPIC_READY_TIMEOUT_MS;
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    try {
      const { topics: metadata } = await admin.fetchTopicMetadata({ topics });
      const ready = metadata.length === topics.length && metadata.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0));
      if (ready) return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline) throw new Error(`kafka topics ${topics.join(", ")} have no leaders after ${TOPIC_READY_TIMEOUT_MS} ms`);
    await sleep(delay);
  }
}

async function connected<T extends { connect(): Promise<void>; disconnect(): Promise<void> }>(client: T): Promise<T> {
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.disconnect().catch(() => undefined);
    throw error;
  }
}

/** A client built on first use and thrown away on `reset` (after a failure, or to close). */
function lazyClient<T>(make: () => Promise<T>, dispose: (client: T) => Promise<void>) {
  let current: Promise<T> | null = null;
  return {
    get(): Promise<T> {
      current ??= make().catch((error: unknown) => {
        current = null;
        throw error;
      });
      return current;
    },
    async reset(): Promise<void> {
      const previous = current;
      current = null;
      const client = await previous?.catch(() => null);
      if (client) await dispose(client).catch(() => undefined);
    },
  };
}
