// The runtime's instruments as Prometheus reads them from /metrics: event
// outcomes counted by the delivery loop (handled, failed, dead_lettered per
// group and topic), cache hits and misses per keyspace, and the process
// gauges (RSS, live handles, event-loop delay reset per scrape). Consumer lag,
// outbox backlog, open streams and push outcomes are observed against real
// Kafka, PostgreSQL and services in tools/test/prometheus.test.ts.
import test from "ava";
import { MemoryEventBus } from "../src/bus/memory.ts";
import { MemoryCache } from "../src/cache/memory.ts";
import { meteredCache } from "../src/cache/metered.ts";
import { keyspaceOf } from "../src/metrics.ts";
import type { HttpResponse } from "../src/server.ts";
import { startTelemetry, type Telemetry } from "../src/telemetry.ts";
import { eventually } from "../test-support/infra.ts";

async function scrape(telemetry: Telemetry): Promise<string> {
  return new Promise((resolve) => {
    const res = { writeHead: () => res, end: (body: string) => resolve(body) } as unknown as HttpResponse;
    telemetry.metricsHandler({} as never, res);
  });
}

test("events_consumed_total counts handled events, failed attempts and dead letters per group and topic", async (t) => {
  const telemetry = startTelemetry({ serviceName: "metrics-test" });
  const bus = new MemoryEventBus();
  const parked: string[] = [];
  await bus.subscribe({
    groupId: "g1",
    topics: ["t1"],
    maxAttempts: 2,
    initialBackoffMs: 1,
    telemetry,
    handle: async (event) => {
      if (event.key === "poison") throw new Error("no");
    },
  });
  await bus.subscribe({ groupId: "dlq", topics: ["t1.dlq"], handle: async (event) => void parked.push(event.key) });
  const record = (key: string) => ({ topic: "t1", key, value: new Uint8Array(), headers: {} });
  await bus.publish([record("a"), record("poison"), record("b")]);
  await eventually("the poison event parked", async () => parked.length === 1, 5_000);
  const text = await scrape(telemetry);
  t.regex(text, /events_consumed_total\{[^}]*group="g1",topic="t1",outcome="handled"[^}]*\} 2/);
  t.regex(text, /events_consumed_total\{[^}]*group="g1",topic="t1",outcome="failed"[^}]*\} 2/);
  t.regex(text, /events_consumed_total\{[^}]*group="g1",topic="t1",outcome="dead_lettered"[^}]*\} 1/);
  await bus.close();
  await telemetry.shutdown();
});

test("cache_lookups_total counts hits and misses per keyspace; everything else goes straight through", async (t) => {
  const telemetry = startTelemetry({ serviceName: "metrics-test" });
  const cache = meteredCache(new MemoryCache(), telemetry.meter);
  t.is(cache.kind, "memory");
  await cache.set("feed:u1", "x");
  t.is(await cache.get("feed:u1"), "x");
  t.is(await cache.get("feed:u2"), null);
  t.is(await cache.get("NoColon"), null);
  t.is(await cache.incrWindow("auth:n", 10), 1);
  const text = await scrape(telemetry);
  t.regex(text, /cache_lookups_total\{[^}]*cache="memory",keyspace="feed",result="hit"[^}]*\} 1/);
  t.regex(text, /cache_lookups_total\{[^}]*cache="memory",keyspace="feed",result="miss"[^}]*\} 1/);
  t.regex(text, /cache_lookups_total\{[^}]*keyspace="other",result="miss"[^}]*\} 1/);
  t.is(keyspaceOf("auth:code:verify:x"), "auth");
  t.is(keyspaceOf("9f0e:x"), "other");
  await cache.close();
  await telemetry.shutdown();
});

test("the process gauges: RSS, live handles, and the event-loop delay since the previous scrape", async (t) => {
  const telemetry = startTelemetry({ serviceName: "metrics-process-test" });
  t.teardown(() => telemetry.shutdown());
  // Block the loop for 500 ms, so the delay histogram has something to show.
  await new Promise((resolve) => setTimeout(resolve, 20));
  const blockedUntil = performance.now() + 500;
  while (performance.now() < blockedUntil) {
    // busy on purpose
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
  const first = await scrape(telemetry);
  const gauge = (text: string, name: string, labels = "") => Number(new RegExp(`^${name}\\{?[^}\\n]*${labels}[^}\\n]*\\}? (\\S+)$`, "m").exec(text)?.[1]);
  t.true(gauge(first, "process_resident_memory_bytes") > 10 * 1024 * 1024);
  // The timers and sockets of this process: at least one is live.
  t.true(gauge(first, "nodejs_active_resources") >= 1);
  t.true(gauge(first, "nodejs_eventloop_delay_seconds", 'quantile="max"') >= 0.45);
  // Reset at each scrape: the next one covers only the 100 ms since, not the 500 ms stall before.
  await new Promise((resolve) => setTimeout(resolve, 100));
  const second = await scrape(telemetry);
  t.true(gauge(second, "nodejs_eventloop_delay_seconds", 'quantile="max"') < 0.45);
});
