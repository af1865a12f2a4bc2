import type { Consumer, EachBatchPayload, IHeaders, Kafka, KafkaMessage } from "kafkajs";
import type { DeliveredEvent, EventRecord, SubscribeOptions, Subscription } from "./bus.ts";
import { deliverRun, MAX_BATCH, retryPolicy } from "./delivery.ts";
import type { LogSink } from "./log-sink.ts";
import { abortable, sleep } from "./timing.ts";

export interface KafkaSubscriptionDeps {
  kafka: Kafka;
  /** The bus' producer, for dead-lettering. */
  publish(records: EventRecord[]): Promise<void>;
  log: LogSink;
  /** How long `subscribe` waits for the first group join before giving up. */
  joinTimeoutMs: number;
  sessionTimeoutMs: number;
}

const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;
/** Longest stretch a retry backoff goes without a heartbeat (well inside any session timeout). */
const HEARTBEAT_SLICE_MS = 1_000;

/**
 * One kafkajs consumer per subscription, supervised.
 *
 * Delivery: `eachBatch` with manual offset resolution. An offset is resolved
 * only after its handler succeeded or the event was dead-lettered, and only
 * resolved offsets are committed (at batch end, every second, on rebalance
 * and on stop): at-least-once. While a failing event waits for its retry, the
 * loop heartbeats; if the group rebalances meanwhile, the heartbeat throws,
 * the batch is abandoned unresolved, and whoever owns the partition next
 * starts again from that event — retries are cut short, events never skipped.
 * A subscriber's `handleBatch` gets up to MAX_BATCH of a batch's events at
 * once (`deliverRun`: one by one when that fails).
 *
 * Recovery: kafkajs restarts a crashed consumer itself when the error was
 * retriable; for the others (e.g. no broker reachable for a while) it gives
 * up, so the supervisor builds a fresh consumer with backoff until stopped.
 */
export async function startKafkaSubscription(deps: KafkaSubscriptionDeps, options: SubscribeOptions): Promise<Subscription> {
  const policy = retryPolicy(options);
  const { groupId } = options;
  const fromBeginning = options.fromBeginning ?? true;
  const stop = new AbortController();
  let joined!: () => void;
  const firstJoin = new Promise<void>((resolve) => (joined = resolve));

  const eachBatch = async ({ batch, resolveOffset, heartbeat, isRunning, isStale, commitOffsetsIfNecessary }: EachBatchPayload) => {
    const active = () => !stop.signal.aborted && isRunning() && !isStale();
    const sleepWithHeartbeats = async (ms: number): Promise<boolean> => {
      for (let left = ms; left > 0 && active(); left -= HEARTBEAT_SLICE_MS) {
        await sleep(Math.min(left, HEARTBEAT_SLICE_MS), stop.signal);
        if (active()) await heartbeat();
      }
      return active();
    };
    const hooks = {
      sleep: sleepWithHeartbeats,
      deadLetter: (record: EventRecord) => deps.publish([record]),
      async done(event: { offset: string }) {
        resolveOffset(event.offset);
        await commitOffsetsIfNecessary();
        await heartbeat();
      },
    };
    for (let start = 0; start < batch.messages.length; start += MAX_BATCH) {
      if (!active()) return;
      const run = batch.messages.slice(start, start + MAX_BATCH).map((message) => toEvent(batch.topic, batch.partition, message));
      if (!(await deliverRun(run, groupId, options, policy, hooks))) return;
    }
  };

  const newConsumer = (): Consumer =>
    deps.kafka.consumer({
      groupId,
      sessionTimeout: deps.sessionTimeoutMs,
      heartbeatInterval: Math.min(3_000, Math.floor(deps.sessionTimeoutMs / 3)),
      // Bounds how long stop() waits for an idle long-poll fetch.
      maxWaitTimeInMs: 500,
      allowAutoTopicCreation: false,
      // kafkajs restarts a crashed consumer on a timer it sets after its own
      // disconnect; a stop() landing in between would find no timer to clear,
      // and the consumer would come back after stop (keeping the process
      // alive, retrying a broker that is gone). So no restart once stopping.
      retry: { initialRetryTime: 300, retries: 8, maxRetryTime: 5_000, restartOnFailure: async () => !stop.signal.aborted },
    });

  /** Runs `consumer` until it dies for good; resolves with why, or undefined on stop. */
  const runUntilDead = async (consumer: Consumer): Promise<unknown> => {
    const died = new Promise<unknown>((resolve) => {
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        if (!payload.restart) resolve(payload.error);
      });
    });
    consumer.on(consumer.events.GROUP_JOIN, () => joined());
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: options.topics, fromBeginning });
      await consumer.run({
        eachBatch,
        eachBatchAutoResolve: false,
        autoCommitInterval: 1_000,
        // kafkajs never runs two batches of one partition at once, so per-key order holds.
        partitionsConsumedConcurrently: options.partitionsConcurrently ?? 1,
      });
    } catch (error) {
      return error;
    }
    return abortable(died, stop.signal);
  };

  // The supervisor alone creates and disconnects consumers, so a stop that
  // lands mid-restart cannot leave one running.
  const supervise = async (): Promise<void> => {
    let delay = RESTART_MIN_MS;
    while (!stop.signal.aborted) {
      const startedAt = Date.now();
      const consumer = newConsumer();
      const error = await runUntilDead(consumer);
      // Waits for the in-flight batch, commits what was resolved and leaves
      // the group, so on stop the partitions move on at once.
      await consumer.disconnect().catch((e: unknown) => deps.log.warn({ err: e, groupId }, "kafka consumer disconnect failed"));
      if (stop.signal.aborted) return;
      // A consumer that ran for a while earned a quick restart.
      if (Date.now() - startedAt > RESTART_MAX_MS) delay = RESTART_MIN_MS;
      deps.log.error({ err: error, groupId, restartInMs: delay }, "kafka consumer stopped; starting a new one");
      await sleep(delay, stop.signal);
      delay = Math.min(delay * 2, RESTART_MAX_MS);
    }
  };

  const supervising = supervise();
  const subscription: Subscription = {
    async stop() {
      stop.abort();
      await supervising;
    },
  };

  const joinWait = new AbortController();
  const timedOut = sleep(deps.joinTimeoutMs, AbortSignal.any([stop.signal, joinWait.signal])).then(() => "timeout" as const);
  const outcome = await Promise.race([firstJoin.then(() => "joined" as const), timedOut]);
  joinWait.abort();
  if (outcome === "timeout") {
    await subscription.stop();
    throw new Error(`kafka consumer group ${groupId} did not join within ${deps.joinTimeoutMs} ms`);
  }
  return subscription;
}

function toEvent(topic: string, partition: number, message: KafkaMessage): Omit<DeliveredEvent, "attempt"> {
  const value = message.value ?? Buffer.alloc(0);
  return {
    topic,
    partition,
    offset: message.offset,
    key: message.key?.toString("utf8") ?? "",
    value: new Uint8Array(value.buffer, value.byteOffset, value.byteLength),
    headers: decodeHeaders(message.headers),
  };
}

function decodeHeaders(headers: IHeaders | undefined): Record<string, string> {
  const decoded: Record<string, string> = {};
  for (const [name, raw] of Object.entries(headers ?? {})) {
    // Kafka allows repeated headers; ours are written once, the first wins.
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (value !== undefined) decoded[name] = value.toString();
  }
  return decoded;
}
