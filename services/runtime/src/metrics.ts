// The runtime's own instruments beyond RPC RED (telemetry.ts): the event
// pipeline, the caches, realtime streams. Names are OpenTelemetry's dotted
// form; the Prometheus exporter turns `events.consumed` into
// `events_consumed_total`. Labels stay low-cardinality: group, topic,
// partition, outcome, keyspace — never a key, user or event id.
//
// Hot paths only add to counters. What needs a query (consumer lag, outbox
// backlog) is an observable gauge: its callback runs when Prometheus scrapes
// /metrics, so the cost is one cheap query per scrape, not per event.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { metrics, ValueType } from "@opentelemetry/api";
import type { BatchObservableResult, Counter, Meter, ObservableGauge } from "@opentelemetry/api";

/**
 * The meter of whatever telemetry a component was handed. Services hand the
 * bus and the relay their whole Telemetry (tracer, propagator, meter); without
 * one, the global API's meter (a no-op unless a provider was registered).
 */
export function meterOf(telemetry: object | undefined): Meter {
  const meter = telemetry !== undefined && "meter" in telemetry ? (telemetry.meter as Meter | undefined) : undefined;
  return meter ?? metrics.getMeter("aviary.runtime");
}

/** One set of instruments per meter (per service), however many components ask. */
function perMeter<T>(create: (meter: Meter) => T): (meter: Meter) => T {
  const made = new WeakMap<Meter, T>();
  return (meter) => {
    let instruments = made.get(meter);
    if (instruments === undefined) made.set(meter, (instruments = create(meter)));
    return instruments;
  };
}

/** What delivery did with one event (or one attempt of it). */
export type EventOutcome = "handled" | "failed" | "dead_lettered";

export const eventInstruments = perMeter((meter) => ({
  /** `events_consumed_total{group, topic, outcome}`: handled once per event, failed once per failed attempt, dead_lettered once per parked event. */
  consumed: meter.createCounter("events.consumed", {
    description: "Events delivered to consumers, by group, topic and outcome (failed counts attempts; dead_lettered counts events parked on <topic>.dlq)",
    valueType: ValueType.INT,
  }),
  /** `kafka_consumer_lag{group, topic, partition}`: high watermark minus the group's committed offset. */
  lag: meter.createObservableGauge("kafka.consumer.lag", {
    description: "Events not yet committed by the consumer group, per partition (high watermark - committed offset), read at scrape time",
    valueType: ValueType.INT,
  }),
}));

export const outboxInstruments = perMeter((meter) => ({
  /** `outbox_backlog{outbox}` */
  backlog: meter.createObservableGauge("outbox.backlog", { description: "Outbox rows committed but not yet published, read at scrape time", valueType: ValueType.INT }),
  /** `outbox_oldest_age_seconds{outbox}`: 0 when nothing is pending. */
  oldestAge: meter.createObservableGauge("outbox.oldest_age_seconds", {
    description: "Age of the oldest unpublished outbox row (0 when none), read at scrape time",
    valueType: ValueType.DOUBLE,
  }),
}));

export const cacheInstruments = perMeter((meter) => ({
  /** `cache_lookups_total{cache, keyspace, result}`, result hit|miss. */
  lookups: meter.createCounter("cache.lookups", { description: "Cache reads (get), by adapter, keyspace (the key's first segment) and result", valueType: ValueType.INT }),
}));

export const realtimeInstruments = perMeter(
  (meter): { open: ObservableGauge } => ({
    /** `realtime_streams_open`: device streams this instance holds. */
    open: meter.createObservableGauge("realtime.streams.open", { description: "Realtime device streams open on this instance", valueType: ValueType.INT }),
  }),
);

export const pushInstruments = perMeter((meter): { outcomes: Counter } => ({
  /** `push_deliveries_total{provider, verdict}`: one per device push settled (or skipped). */
  outcomes: meter.createCounter("push.deliveries", { description: "Push deliveries per device, by provider (platform) and final verdict", valueType: ValueType.INT }),
}));

/** The low-cardinality part of a cache key: `auth:code:…` → `auth`; anything unusual → `other`. */
export function keyspaceOf(key: string): string {
  const end = key.indexOf(":");
  const head = end < 0 ? "" : key.slice(0, end);
  return /^[a-z][a-z0-9_-]{0,23}$/.test(head) ? head : "other";
}

/**
 * The process's own health, for soak runs and dashboards: resident memory,
 * live libuv handles and requests (`process.getActiveResourcesInfo()`: what a
 * leak of sockets, timers or streams grows), and the event-loop delay seen
 * since the previous scrape (perf_hooks' histogram, reset on each read, so a
 * scrape shows the last interval, not the process's whole life). Every
 * service in one process (`make dev`, tests) reports the same process.
 * Returns a stop function that ends the delay sampling.
 */
export function observeProcess(meter: Meter): () => void {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const resident = meter.createObservableGauge("process.resident_memory_bytes", { description: "Resident set size of this process", unit: "By", valueType: ValueType.INT });
  const resources = meter.createObservableGauge("nodejs.active_resources", { description: "Live libuv handles and requests (sockets, timers, file handles) keeping the event loop alive", valueType: ValueType.INT });
  const lag = meter.createObservableGauge("nodejs.eventloop.delay_seconds", { description: "Event-loop delay since the previous scrape, by quantile (p50, p99, max)", unit: "s", valueType: ValueType.DOUBLE });
  const callback = (result: BatchObservableResult) => {
    result.observe(resident, process.memoryUsage.rss());
    result.observe(resources, process.getActiveResourcesInfo().length);
    if (delay.count > 0) {
      result.observe(lag, delay.percentile(50) / 1e9, { quantile: "p50" });
      result.observe(lag, delay.percentile(99) / 1e9, { quantile: "p99" });
      result.observe(lag, delay.max / 1e9, { quantile: "max" });
    }
    delay.reset();
  };
  meter.addBatchObservableCallback(callback, [resident, resources, lag]);
  return () => {
    meter.removeBatchObservableCallback(callback, [resident, resources, lag]);
    delay.disable();
  };
}
