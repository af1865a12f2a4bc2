import type { EventTelemetry } from "./tracing.ts";

/**
 * The event-bus port. Two adapters share these semantics and one test suite:
 * Kafka (kafkajs, idempotent producer) and an in-process bus for `make dev`.
 *
 * Delivery is at-least-once: a handler may see an event again after a crash or
 * rebalance, so consumers make themselves idempotent (see `idempotent.ts`).
 * Ordering is per key: records with the same key land on the same partition.
 */
export interface EventRecord {
  topic: string;
  /** The aggregate id; decides the partition. */
  key: string;
  value: Uint8Array;
  /** event-id, event-type, content-type, traceparent, … */
  headers: Record<string, string>;
}

export interface DeliveredEvent extends EventRecord {
  partition: number;
  offset: string;
  /** 1 on first delivery to the handler, then 2, 3, … on retries. */
  attempt: number;
}

export interface SubscribeOptions {
  /** Consumer group: each group sees every event once (modulo redelivery). */
  groupId: string;
  topics: string[];
  handle: (event: DeliveredEvent) => Promise<void>;
  /**
   * Optional, for handlers that gain from doing many events at once (one
   * round trip for all of them): called with runs of consecutive events of
   * one partition, in order, and must apply all of them or throw. When it
   * throws, the run's events go to `handle` one by one, with the retry and
   * dead-letter policy, so it must have the same effect as `handle` on each
   * event in turn, and be idempotent (events it did apply are seen again).
   */
  handleBatch?: (events: DeliveredEvent[]) => Promise<void>;
  /**
   * Attempts before an event that fails for an unknown reason is parked on
   * the dead-letter topic. Default 5. Poison events (undecodable, refused as
   * invalid) are parked at once; infrastructure failures (a store or peer
   * unreachable) are retried for as long as they last and never parked
   * (`failures.ts`).
   */
  maxAttempts?: number;
  /** First retry delay; doubles each attempt (capped at 30 s). Default 100 ms. */
  initialBackoffMs?: number;
  /** Read from the earliest retained event when the group has no offset yet. Default true. */
  fromBeginning?: boolean;
  /**
   * How many of this member's partitions are handled at the same time. Events
   * of one partition (so of one key) are always handled one at a time, in
   * order; a handler that is correct when events of different keys interleave
   * gains throughput from more. Default 1.
   */
  partitionsConcurrently?: number;
  /** The consuming service's tracer and propagator, for the CONSUMER span of each event (the global tracer and W3C tracecontext when absent). */
  telemetry?: EventTelemetry;
}

export interface Subscription {
  /** Stops consuming after the in-flight event is handled and committed. */
  stop(): Promise<void>;
}

export interface EventBus {
  readonly kind: "kafka" | "memory";
  /** Publishes records durably (acks from all in-sync replicas) before resolving. */
  publish(records: EventRecord[]): Promise<void>;
  subscribe(options: SubscribeOptions): Promise<Subscription>;
  /** Throws when the bus cannot answer (used by /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Where events that keep failing are parked, with the reason in headers. */
export function deadLetterTopic(topic: string): string {
  return `${topic}.dlq`;
}

/** Header names every event carries. */
export const EventHeaders = {
  id: "event-id",
  type: "event-type",
  contentType: "content-type",
  traceparent: "traceparent",
  /** On dead-lettered events: why, from which topic, for which group. */
  deadLetterReason: "dlq-reason",
  deadLetterTopic: "dlq-original-topic",
  deadLetterGroup: "dlq-group",
} as const;
