import { and, asc, inArray, isNull, lt, sql } from "drizzle-orm";
import { getTableConfig } from "drizzle-orm/pg-core";
import type { EventBus } from "../bus/bus.ts";
import { Doorbell } from "../bus/doorbell.ts";
import { consoleSink, type LogSink } from "../bus/log-sink.ts";
import { sleep } from "../bus/timing.ts";
import { tracePublish, type EventTelemetry } from "../bus/tracing.ts";
import type { Database, Tx } from "../db/database.ts";
import { outboxChannel, type OutboxEventsTable } from "./tables.ts";
import { observeOutboxBacklog } from "./backlog.ts";

export interface OutboxRelayOptions {
  database: Database;
  bus: EventBus;
  tables: { outboxEvents: OutboxEventsTable };
  /** NOTIFY channel producers signal on; defaults to the one `enqueueEvent` uses. */
  channel?: string;
  /** Events per transaction (default 100). */
  batchSize?: number;
  logger?: LogSink;
  /** Safety-net poll for notifications lost while the LISTEN connection was down (default 5 s). */
  fallbackPollMs?: number;
  /** Published rows are kept this long for debugging, then pruned (default 1 h). */
  retainPublishedMs?: number;
  /** Cap of the retry backoff while the bus or database fails (default 10 s). */
  maxBackoffMs?: number;
  /**
   * While busy, passes start at least this far apart (default 0: at once).
   * Each pass costs a transaction of three statements and a Kafka request
   * (and a consumer fetch on the other side) however few events it carries,
   * so under load a few ms of waiting lets the events committed meanwhile go
   * out together. An event after a quiet spell still goes out at once.
   */
  lingerMs?: number;
  /** Told each time a busy relay lingers before its next pass (for tests: what the relay did, without timing it). */
  onLinger?: (ms: number) => void;
  /** The service's tracer and propagator, for the PRODUCER span of each published event (the global tracer and W3C tracecontext when absent). */
  telemetry?: EventTelemetry;
}

export interface OutboxRelay {
  /** Events committed but not yet published (for /readyz and tests). */
  pending(): Promise<number>;
  /** Resolves once nothing is pending; rejects after `timeoutMs` (default 10 s) saying why. */
  flushed(timeoutMs?: number): Promise<void>;
  /** The error of the last failed pass, cleared by the next successful one. */
  lastError(): Error | undefined;
  /** Finishes the batch in flight, then stops. */
  stop(): Promise<void>;
}

const INITIAL_BACKOFF_MS = 200;
const PRUNE_EVERY_MS = 60_000;
const PRUNE_BATCH = 1_000;
/** First key of the relay's advisory lock (ASCII "obox"); the second is per outbox table. */
export const RELAY_LOCK_NAMESPACE = 0x6f626f78;

/**
 * Publishes outbox rows to the bus, in insert order.
 *
 * One pass = one transaction: take the outbox's advisory lock, claim the
 * oldest unpublished rows (`FOR UPDATE SKIP LOCKED`) and mark them published,
 * all in one statement; publish them; commit. If publishing fails the transaction rolls back and the
 * same rows are retried after a backoff: nothing is lost. A crash between
 * publish and commit publishes the batch again; consumers absorb that
 * through the event id (`handleOnce`).
 *
 * Why the advisory lock on top of SKIP LOCKED: with two relay instances,
 * SKIP LOCKED alone lets the second publish rows 101–200 while the first is
 * still publishing 1–100, reordering events of one key. The lock makes one
 * instance relay at a time; the others skip the pass.
 *
 * Why rows are marked rather than deleted: a published row shows what went
 * out and when, which is what one needs when a consumer claims it never got
 * an event. They are pruned after `retainPublishedMs`.
 *
 * The relay wakes on NOTIFY from `enqueueEvent`, and polls every
 * `fallbackPollMs` in case a notification was lost.
 */
export async function startOutboxRelay(options: OutboxRelayOptions): Promise<OutboxRelay> {
  const { database, bus } = options;
  const table = options.tables.outboxEvents;
  const log = options.logger ?? consoleSink;
  const batchSize = options.batchSize ?? 100;
  const fallbackPollMs = options.fallbackPollMs ?? 5_000;
  const retainPublishedMs = options.retainPublishedMs ?? 3_600_000;
  const maxBackoffMs = options.maxBackoffMs ?? 10_000;
  const lingerMs = options.lingerMs ?? 0;
  const config = getTableConfig(table);
  const lockName = `${config.schema ?? "public"}.${config.name}`;

  const wake = new Doorbell();
  const passed = new Doorbell();
  const stop = new AbortController();
  let lastError: Error | undefined;

  async function publishBatch(tx: Tx): Promise<number> {
    // Locked, claimed and marked in one statement (the mark is undone with
    // the transaction if publishing fails); RETURNING has no order, so by seq
    // here. The lock is an uncorrelated subquery, so PostgreSQL evaluates it
    // once, as a one-time filter below FOR UPDATE: an instance that does not
    // get it locks no row (locked rows would make the holder's SKIP LOCKED
    // pass over them and publish later events first) and returns none.
    const claimed = tx
      .select({ id: table.id })
      .from(table)
      .where(and(isNull(table.publishedAt), sql`(SELECT pg_try_advisory_xact_lock(${sql.raw(String(RELAY_LOCK_NAMESPACE))}, hashtext(${lockName})))`))
      .orderBy(asc(table.seq))
      .limit(batchSize)
      .for("update", { skipLocked: true });
    const rows = (
      await tx
        .update(table)
        .set({ publishedAt: sql`now()` })
        .where(inArray(table.id, claimed))
        .returning({ id: table.id, seq: table.seq, topic: table.topic, key: table.key, payload: table.payload, headers: table.headers })
    ).sort((a, b) => a.seq - b.seq);
    if (rows.length === 0) return 0;
    // One PRODUCER span per event, child of the context enqueueEvent stored with it.
    const published = tracePublish(
      rows.map((row) => ({ topic: row.topic, key: row.key, value: row.payload, headers: row.headers })),
      bus.kind,
      options.telemetry,
    );
    try {
      await bus.publish(published.records);
    } catch (error) {
      published.end(error);
      throw error;
    }
    published.end();
    return rows.length;
  }

  async function prune(): Promise<void> {
    const cutoff = new Date(Date.now() - retainPublishedMs);
    const expired = database.db.select({ id: table.id }).from(table).where(lt(table.publishedAt, cutoff)).limit(PRUNE_BATCH);
    await database.db.delete(table).where(inArray(table.id, expired));
  }

  async function run(): Promise<void> {
    let backoff = INITIAL_BACKOFF_MS;
    let prunedAt = 0;
    while (!stop.signal.aborted) {
      try {
        const startedAt = performance.now();
        const published = await database.db.transaction(publishBatch);
        lastError = undefined;
        backoff = INITIAL_BACKOFF_MS;
        passed.ring();
        // Checked on busy passes too: under steady load the relay never idles.
        if (Date.now() - prunedAt >= PRUNE_EVERY_MS) {
          prunedAt = Date.now();
          await prune();
        }
        if (published === batchSize) continue; // likely more waiting
        await wake.wait(fallbackPollMs);
        // Busy (the last pass had events): the next starts lingerMs after it did, taking what commits meanwhile too.
        const lingered = startedAt + lingerMs - performance.now();
        if (published > 0 && lingered > 0) {
          options.onLinger?.(lingered);
          await sleep(lingered, stop.signal);
        }
      } catch (error) {
        lastError = error instanceof Error ? error : new Error(String(error));
        passed.ring();
        log.warn({ err: lastError, outbox: lockName, retryInMs: backoff }, "outbox relay pass failed; retrying");
        // Notifications do not cut this short: new events must not turn a
        // bus outage into a hot loop.
        await sleep(backoff, stop.signal);
        backoff = Math.min(backoff * 2, maxBackoffMs);
      }
    }
  }

  const pending = (): Promise<number> => database.db.$count(table, isNull(table.publishedAt));

  const unlisten = await database.listen(options.channel ?? outboxChannel(table), () => wake.ring());
  wake.ring(); // drain what was committed while no relay ran
  const running = run();
  // outbox_backlog / outbox_oldest_age_seconds, read at scrape time (backlog.ts).
  const unobserve = observeOutboxBacklog(options.telemetry, database, table, lockName);

  return {
    pending,

    async flushed(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const left = await pending();
        if (left === 0) return;
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          const cause = lastError ? `; last error: ${lastError.message}` : "";
          throw new Error(`outbox ${lockName} still has ${left} unpublished events after ${timeoutMs} ms${cause}`);
        }
        wake.ring();
        await passed.wait(Math.min(remaining, 100));
      }
    },

    lastError: () => lastError,

    async stop() {
      unobserve();
      stop.abort();
      wake.ring();
      await running;
      await unlisten();
    },
  };
}

/** Both drivers answer raw queries with `{ rows }`; drizzle types that as unknown. */
