import { deadLetterTopic, EventHeaders, type DeliveredEvent, type EventRecord, type SubscribeOptions } from "./bus.ts";
import { eventInstruments, meterOf, type EventOutcome } from "../metrics.ts";
import { classifyFailure } from "./failures.ts";

/**
 * The delivery policy both adapters run: call the handler and, when it
 * fails, act on why (`failures.ts`): a poison event (undecodable, or
 * refused as invalid) is parked on the dead-letter topic at once; an
 * infrastructure failure (a store or peer unreachable) is retried with
 * exponential backoff for as long as it lasts, holding the partition (its
 * offset is not committed, nothing behind it on the partition runs) and
 * never parked; any other failure is retried up to `maxAttempts` and then
 * parked. Sharing the code (not just the spec) is what keeps the Kafka and
 * in-memory buses behaving the same.
 */

export const DEFAULT_MAX_ATTEMPTS = 5;
export const DEFAULT_INITIAL_BACKOFF_MS = 100;
export const MAX_BACKOFF_MS = 30_000;

export interface RetryPolicy {
  maxAttempts: number;
  initialBackoffMs: number;
}

export function retryPolicy(options: Pick<SubscribeOptions, "maxAttempts" | "initialBackoffMs">): RetryPolicy {
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const initialBackoffMs = options.initialBackoffMs ?? DEFAULT_INITIAL_BACKOFF_MS;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new RangeError(`maxAttempts must be a positive integer, got ${maxAttempts}`);
  if (!(initialBackoffMs >= 0)) throw new RangeError(`initialBackoffMs must be >= 0, got ${initialBackoffMs}`);
  return { maxAttempts, initialBackoffMs };
}

/** Delay before attempt `attempt + 1`: initial, 2×, 4×, … capped at 30 s. */
export function backoffMs(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.initialBackoffMs * 2 ** (attempt - 1), MAX_BACKOFF_MS);
}

export interface DeliveryHooks {
  /** Waits `ms`; resolves false when the wait was cut short and delivery must stop (shutdown, rebalance). */
  sleep(ms: number): Promise<boolean>;
  /** Durably publishes the dead-letter record; a failure propagates and the event stays unacknowledged. */
  deadLetter(record: EventRecord): Promise<void>;
}

/**
 * Runs the handler until it succeeds or the event is dead-lettered. Resolves
 * true when the event is done (its offset may be committed), false when the
 * delivery was interrupted and the event must be redelivered later.
 */
export async function deliver(
  event: Omit<DeliveredEvent, "attempt">,
  groupId: string,
  handle: (event: DeliveredEvent) => Promise<void>,
  policy: RetryPolicy,
  hooks: DeliveryHooks,
  count: (event: EventRecord, outcome: EventOutcome, n?: number) => void = () => {},
): Promise<boolean> {
  // Only failures of unknown cause use up the budget: an outage of any
  // length before or between them does not bring an event closer to the DLQ.
  let unexplained = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      await handle({ ...event, attempt });
      count(event, "handled");
      return true;
    } catch (error) {
      count(event, "failed");
      const kind = classifyFailure(error);
      if (kind === "unknown") unexplained++;
      if (kind === "poison" || unexplained >= policy.maxAttempts) {
        await hooks.deadLetter(deadLetterRecord(event, groupId, error));
        count(event, "dead_lettered");
        return true;
      }
      if (!(await hooks.sleep(backoffMs(policy, attempt)))) return false;
    }
  }
}

/**
 * Exports the subscription's events_consumed_total series at 0 for every
 * outcome as it starts, so the first dead letter after a start is an
 * increase Prometheus sees (a counter that appears at 1 has not increased).
 * Both adapters call it in `subscribe`.
 */
export function zeroEventCounters(options: Pick<SubscribeOptions, "groupId" | "topics" | "telemetry">): void {
  const { consumed } = eventInstruments(meterOf(options.telemetry));
  for (const topic of options.topics) for (const outcome of ["handled", "failed", "dead_lettered"] as const) consumed.add(0, { group: options.groupId, topic, outcome });
}

/** Events handed to `handleBatch` at once, at most (bounds a run's latency and its retry). */
export const MAX_BATCH = 256;

/**
 * Delivers a run of consecutive events of one partition: through
 * `handleBatch` in one call when the subscriber has one and the run is
 * longer than one event, else (or when that call throws) each event through
 * `deliver`. Calls `done(event)` for each event done, in order (the adapter
 * commits its offset); returns false when delivery was interrupted and the
 * rest of the run must be redelivered later.
 */
export async function deliverRun(
  events: ReadonlyArray<Omit<DeliveredEvent, "attempt">>,
  groupId: string,
  options: Pick<SubscribeOptions, "handle" | "handleBatch" | "telemetry">,
  policy: RetryPolicy,
  hooks: DeliveryHooks & { done(event: Omit<DeliveredEvent, "attempt">): Promise<void> },
): Promise<boolean> {
  // events_consumed_total{group, topic, outcome}: a counter add per event, nothing more on the hot path.
  const consumed = eventInstruments(meterOf(options.telemetry)).consumed;
  const count = (event: EventRecord, outcome: EventOutcome, n = 1) => consumed.add(n, { group: groupId, topic: event.topic, outcome });
  if (options.handleBatch !== undefined && events.length > 1) {
    let applied = false;
    try {
      await options.handleBatch(events.map((event) => ({ ...event, attempt: 1 })));
      applied = true;
    } catch {
      // Not counted as an attempt: each event is tried on its own next.
    }
    if (applied) {
      count(events[0]!, "handled", events.length);
      for (const event of events) await hooks.done(event);
      return true;
    }
  }
  for (const event of events) {
    if (!(await deliver(event, groupId, options.handle, policy, hooks, count))) return false;
    await hooks.done(event);
  }
  return true;
}

/** The original record, re-addressed to `<topic>.dlq`, with why and from where. */
export function deadLetterRecord(event: EventRecord, groupId: string, error: unknown): EventRecord {
  return {
    topic: deadLetterTopic(event.topic),
    key: event.key,
    value: event.value,
    headers: {
      ...event.headers,
      [EventHeaders.deadLetterReason]: reasonOf(error),
      [EventHeaders.deadLetterTopic]: event.topic,
      [EventHeaders.deadLetterGroup]: groupId,
    },
  };
}

function reasonOf(error: unknown): string {
  const text = error instanceof Error ? error.message || error.name : String(error);
  // Header values travel with every copy of the event; keep them bounded.
  return text.length > 1_000 ? `${text.slice(0, 1_000)}…` : text;
}
