/**
 * One suite for the EventBus port, run against the in-memory bus and real
 * Kafka: ordering, groups, retries, dead-lettering and commit-after-handle
 * must hold identically on both.
 */
import test from "ava";
import { deadLetterTopic, EventHeaders, type DeliveredEvent, type EventBus, type EventRecord, type SubscribeOptions } from "../src/bus/bus.ts";
import { MemoryEventBus } from "../src/bus/memory.ts";
import { openKafkaBus } from "../src/bus/kafka.ts";
import { openEventBus } from "../src/bus/open.ts";
import { silentSink } from "../src/bus/log-sink.ts";
import { EventDecodeError } from "../src/outbox/enqueue.ts";
import { eventually, infra, uniqueName } from "../test-support/infra.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const text = (value: Uint8Array) => Buffer.from(value).toString("utf8");
const record = (topic: string, key: string, value: string, headers: Record<string, string> = {}): EventRecord => ({
  topic,
  key,
  value: Buffer.from(value),
  headers,
});

interface Fixture {
  name: "memory" | "kafka";
  /** One bus per test file: buses are cheap to share, groups and topics are per test. */
  bus(): Promise<EventBus>;
  /** How long to keep watching to be sure something does NOT arrive. */
  quietMs: number;
}

let memoryBus: MemoryEventBus | undefined;
let kafkaBus: Promise<EventBus> | undefined;
const memory: Fixture = { name: "memory", bus: async () => (memoryBus ??= new MemoryEventBus()), quietMs: 300 };
const kafka: Fixture = {
  name: "kafka",
  bus: () => (kafkaBus ??= infra().then(({ kafkaBrokers }) => openKafkaBus({ brokers: kafkaBrokers, clientId: "runtime-bus-test", logger: silentSink }))),
  quietMs: 2_000,
};

test.after.always(async () => {
  await memoryBus?.close();
  await (await kafkaBus)?.close();
});

/** Collects what a subscription receives. */
function collector() {
  const events: DeliveredEvent[] = [];
  return {
    events,
    handle: async (event: DeliveredEvent) => {
      events.push(event);
    },
    values: () => events.map((e) => text(e.value)),
  };
}

function busSuite(fixture: Fixture): void {
  const name = fixture.name;
  const subscribe = async (options: SubscribeOptions) => (await fixture.bus()).subscribe(options);
  const publish = async (records: EventRecord[]) => (await fixture.bus()).publish(records);

  test(`${name}: delivers key, value, headers, partition, offset and attempt`, async (t) => {
    const topic = uniqueName("bus");
    const got = collector();
    const sub = await subscribe({ groupId: uniqueName("g"), topics: [topic], handle: got.handle });
    try {
      await publish([record(topic, "user-1", "hello", { [EventHeaders.id]: "e-1", "x-extra": "yes" })]);
      await eventually("one event", () => got.events.length === 1);
      const [event] = got.events;
      t.is(event!.topic, topic);
      t.is(event!.key, "user-1");
      t.is(text(event!.value), "hello");
      t.like(event!.headers, { [EventHeaders.id]: "e-1", "x-extra": "yes" });
      t.true(event!.partition >= 0 && event!.partition < 3);
      t.is(event!.offset, "0");
      t.is(event!.attempt, 1);
      await (await fixture.bus()).ping();
    } finally {
      await sub.stop();
    }
  });

  test(`${name}: events of one key arrive in order, on one partition`, async (t) => {
    const topic = uniqueName("bus");
    const got = collector();
    const sub = await subscribe({ groupId: uniqueName("g"), topics: [topic], handle: got.handle });
    try {
      const keys = ["alice", "bob", "carol", "dave", "erin"];
      // Interleaved keys, over several publish calls.
      for (let batch = 0; batch < 4; batch++) {
        const records: EventRecord[] = [];
        for (let i = 0; i < 10; i++) for (const key of keys) records.push(record(topic, key, String(batch * 10 + i)));
        await publish(records);
      }
      await eventually("200 events", () => got.events.length >= 200);
      t.is(got.events.length, 200);
      for (const key of keys) {
        const mine = got.events.filter((e) => e.key === key);
        t.deepEqual(
          mine.map((e) => Number(text(e.value))),
          Array.from({ length: 40 }, (_, i) => i),
          `order of ${key}`,
        );
        t.is(new Set(mine.map((e) => e.partition)).size, 1, `${key} stays on one partition`);
      }
    } finally {
      await sub.stop();
    }
  });

  test(`${name}: handleBatch gets runs of one partition in order; when it throws, handle gets each of them, and a poison event is parked alone`, async (t) => {
    const topic = uniqueName("bus");
    const keys = ["alice", "bob", "carol"];
    const batches: DeliveredEvent[][] = [];
    const single: DeliveredEvent[] = [];
    let failBatches = true;
    const sub = await subscribe({
      groupId: uniqueName("g"),
      topics: [topic],
      maxAttempts: 1,
      initialBackoffMs: 10,
      handleBatch: async (events) => {
        if (failBatches) throw new Error("batch refused");
        batches.push(events);
      },
      handle: async (event) => {
        if (text(event.value) === "poison") throw Object.assign(new Error("cannot decode"), { name: "EventDecodeError" });
        single.push(event);
      },
    });
    try {
      // Failing batches: every event still arrives once through handle, in order per key; the poison one goes to the DLQ.
      const first: EventRecord[] = [];
      for (let n = 0; n < 5; n++) for (const key of keys) first.push(record(topic, key, n === 2 && key === "bob" ? "poison" : String(n)));
      await publish(first);
      await eventually("14 events one by one", () => single.length >= 14, 60_000);
      for (const key of keys) {
        const expected = key === "bob" ? [0, 1, 3, 4] : [0, 1, 2, 3, 4];
        t.deepEqual(single.filter((e) => e.key === key).map((e) => Number(text(e.value))), expected, `order of ${key}`);
      }
      // Working batches: each run is one partition's, in offset order, and nothing is seen twice.
      failBatches = false;
      const second: EventRecord[] = [];
      for (let n = 10; n < 20; n++) for (const key of keys) second.push(record(topic, key, String(n)));
      await publish(second);
      await eventually("30 more events", () => batches.flat().length + (single.length - 14) >= 30, 60_000);
      await sleep(fixture.quietMs);
      const batched = [...batches.flat(), ...single.slice(14)];
      t.is(batched.length, 30);
      for (const run of batches) {
        t.is(new Set(run.map((e) => e.partition)).size, 1, "a run is one partition's");
        t.deepEqual(run.map((e) => Number(e.offset)), [...run].map((e) => Number(e.offset)).sort((a, b) => a - b), "in offset order");
      }
      for (const key of keys) t.deepEqual(batched.filter((e) => e.key === key).map((e) => Number(text(e.value))), Array.from({ length: 10 }, (_, i) => 10 + i), `order of ${key}`);
    } finally {
      await sub.stop();
    }
  });

  test(`${name}: partitionsConcurrently handles partitions at once, each still in order; the default one at a time`, async (t) => {
    const run = async (partitionsConcurrently: number | undefined) => {
      const topic = uniqueName("bus");
      const keys = Array.from({ length: 12 }, (_, i) => `key-${i}`);
      const seen: Array<{ key: string; n: number }> = [];
      let inFlight = 0;
      let maxInFlight = 0;
      const sub = await subscribe({
        groupId: uniqueName("g"),
        topics: [topic],
        ...(partitionsConcurrently === undefined ? {} : { partitionsConcurrently }),
        handle: async (event) => {
          inFlight += 1;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await sleep(20);
          seen.push({ key: event.key, n: Number(text(event.value)) });
          inFlight -= 1;
        },
      });
      try {
        const records: EventRecord[] = [];
        for (let n = 0; n < 4; n++) for (const key of keys) records.push(record(topic, key, String(n)));
        await publish(records);
        await eventually("48 events", () => seen.length >= 48, 60_000);
      } finally {
        await sub.stop();
      }
      for (const key of keys) t.deepEqual(seen.filter((e) => e.key === key).map((e) => e.n), [0, 1, 2, 3], `order of ${key}`);
      return maxInFlight;
    };
    // Twelve keys over three partitions: more than one busy at once, never more than asked.
    const concurrent = await run(3);
    t.true(concurrent >= 2 && concurrent <= 3, `max in flight ${concurrent}`);
    t.is(await run(undefined), 1);
  });

  test(`${name}: every group gets every event; members of one group share them`, async (t) => {
    const topic = uniqueName("bus");
    const [a, b, c1, c2] = [collector(), collector(), collector(), collector()];
    const sharedGroup = uniqueName("g");
    const subs = [
      await subscribe({ groupId: uniqueName("g"), topics: [topic], handle: a.handle }),
      await subscribe({ groupId: uniqueName("g"), topics: [topic], handle: b.handle }),
      await subscribe({ groupId: sharedGroup, topics: [topic], handle: c1.handle }),
      await subscribe({ groupId: sharedGroup, topics: [topic], handle: c2.handle }),
    ];
    try {
      // Enough distinct keys to land on every partition.
      const records = Array.from({ length: 60 }, (_, i) => record(topic, `key-${i % 12}`, String(i)));
      await publish(records);
      const all = records.map((r) => text(r.value)).sort();
      await eventually("both groups and the shared group to see all 60", () => {
        const shared = new Set([...c1.values(), ...c2.values()]);
        return a.events.length >= 60 && b.events.length >= 60 && shared.size === 60;
      }, 30_000);
      await sleep(fixture.quietMs);
      t.deepEqual([...new Set(a.values())].sort(), all);
      t.deepEqual([...new Set(b.values())].sort(), all);
      t.is(a.events.length, 60, "no duplicates without failures");
      t.is(b.events.length, 60);
      t.true(c1.events.length > 0 && c2.events.length > 0, `split ${c1.events.length}/${c2.events.length}`);
      t.is(c1.events.length + c2.events.length, 60, "each event handled by one member");
      const partitionsOf = (events: DeliveredEvent[]) => new Set(events.map((e) => e.partition));
      const overlap = [...partitionsOf(c1.events)].filter((p) => partitionsOf(c2.events).has(p));
      t.deepEqual(overlap, [], "members own disjoint partitions");
    } finally {
      await Promise.all(subs.map((s) => s.stop()));
    }
  });

  test(`${name}: a failing handler is retried with growing backoff, then succeeds`, async (t) => {
    const topic = uniqueName("bus");
    const attempts: Array<{ attempt: number; at: number }> = [];
    const dead = collector();
    const deadSub = await subscribe({ groupId: uniqueName("dlq"), topics: [deadLetterTopic(topic)], handle: dead.handle });
    const sub = await subscribe({
      groupId: uniqueName("g"),
      topics: [topic],
      maxAttempts: 5,
      initialBackoffMs: 100,
      handle: async (event) => {
        attempts.push({ attempt: event.attempt, at: Date.now() });
        if (event.attempt < 3) throw new Error(`transient ${event.attempt}`);
      },
    });
    try {
      await publish([record(topic, "k", "v")]);
      await eventually("three attempts", () => attempts.length === 3);
      await sleep(fixture.quietMs);
      t.deepEqual(
        attempts.map((a) => a.attempt),
        [1, 2, 3],
      );
      t.true(attempts[1]!.at - attempts[0]!.at >= 90, "first retry after ~100 ms");
      t.true(attempts[2]!.at - attempts[1]!.at >= 190, "second retry after ~200 ms");
      t.is(dead.events.length, 0, "nothing dead-lettered");
    } finally {
      await Promise.all([sub.stop(), deadSub.stop()]);
    }
  });

  test(`${name}: a poison event goes to <topic>.dlq with the reason after maxAttempts, and the partition moves on`, async (t) => {
    const topic = uniqueName("bus");
    const groupId = uniqueName("g");
    const dead = collector();
    const handled: string[] = [];
    const attempts: number[] = [];
    const deadSub = await subscribe({ groupId: uniqueName("dlq"), topics: [deadLetterTopic(topic)], handle: dead.handle });
    const sub = await subscribe({
      groupId,
      topics: [topic],
      maxAttempts: 3,
      initialBackoffMs: 20,
      handle: async (event) => {
        if (text(event.value) === "poison") {
          attempts.push(event.attempt);
          throw new Error("cannot decode payload");
        }
        handled.push(text(event.value));
      },
    });
    try {
      await publish([
        record(topic, "same-key", "before"),
        record(topic, "same-key", "poison", { [EventHeaders.id]: "poison-1", [EventHeaders.type]: "test.Poison" }),
        record(topic, "same-key", "after"),
      ]);
      await eventually("the dead letter and the event behind it", () => dead.events.length === 1 && handled.length === 2);
      await sleep(fixture.quietMs);
      t.deepEqual(attempts, [1, 2, 3]);
      t.deepEqual(handled, ["before", "after"], "the next event on the partition is still delivered");
      t.is(dead.events.length, 1);
      const [letter] = dead.events;
      t.is(letter!.topic, deadLetterTopic(topic));
      t.is(letter!.key, "same-key");
      t.is(text(letter!.value), "poison");
      t.like(letter!.headers, {
        [EventHeaders.deadLetterReason]: "cannot decode payload",
        [EventHeaders.deadLetterTopic]: topic,
        [EventHeaders.deadLetterGroup]: groupId,
        [EventHeaders.id]: "poison-1",
        [EventHeaders.type]: "test.Poison",
      });
    } finally {
      await Promise.all([sub.stop(), deadSub.stop()]);
    }
  });

  test(`${name}: an infrastructure failure holds the partition past maxAttempts and is never parked; an undecodable event is parked at its first attempt`, async (t) => {
    const topic = uniqueName("bus");
    const dead = collector();
    const handled: string[] = [];
    const attempts: Record<string, number[]> = { outage: [], garbage: [] };
    const OUTAGE_ATTEMPTS = 7;
    const deadSub = await subscribe({ groupId: uniqueName("dlq"), topics: [deadLetterTopic(topic)], handle: dead.handle });
    const sub = await subscribe({
      groupId: uniqueName("g"),
      topics: [topic],
      maxAttempts: 2,
      initialBackoffMs: 1,
      handle: async (event) => {
        const value = text(event.value);
        if (value === "garbage") {
          attempts.garbage!.push(event.attempt);
          throw new EventDecodeError("not a valid test event");
        }
        if (value === "outage") {
          attempts.outage!.push(event.attempt);
          // What a store client throws while its server is down: a refused connection inside the driver's own error.
          const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6379"), { code: "ECONNREFUSED" });
          if (event.attempt < OUTAGE_ATTEMPTS) throw new Error("timeline write failed", { cause: refused });
        }
        handled.push(value);
      },
    });
    try {
      await publish([record(topic, "same-key", "outage"), record(topic, "same-key", "after"), record(topic, "other-key", "garbage")]);
      await eventually("the outage waited out and the garbage parked", () => handled.length === 2 && dead.events.length === 1, 30_000);
      await sleep(fixture.quietMs);
      t.deepEqual(attempts.outage, [1, 2, 3, 4, 5, 6, 7], "retried well past maxAttempts (2) until it succeeded");
      t.deepEqual(handled, ["outage", "after"], "the partition waited: nothing behind the event ran before it");
      t.deepEqual(attempts.garbage, [1], "parked at the first attempt");
      t.is(text(dead.events[0]!.value), "garbage");
      t.is(dead.events[0]!.headers[EventHeaders.deadLetterReason], "not a valid test event");
    } finally {
      await Promise.all([sub.stop(), deadSub.stop()]);
    }
  });

  test(`${name}: stop waits for the in-flight handler, and its offset is committed`, async (t) => {
    const topic = uniqueName("bus");
    const groupId = uniqueName("g");
    let finished = false;
    let started = false;
    const sub = await subscribe({
      groupId,
      topics: [topic],
      handle: async () => {
        started = true;
        await sleep(500);
        finished = true;
      },
    });
    await publish([record(topic, "k", "slow")]);
    await eventually("the handler to start", () => started);
    await sub.stop();
    t.true(finished, "stop resolved only after the handler finished");

    const again = collector();
    const next = await subscribe({ groupId, topics: [topic], handle: again.handle });
    try {
      await publish([record(topic, "k", "next")]);
      await eventually("the next event", () => again.events.length >= 1);
      await sleep(fixture.quietMs);
      t.deepEqual(again.values(), ["next"], "the finished event is not redelivered to its group");
    } finally {
      await next.stop();
    }
  });

  test(`${name}: an event whose retries were cut short by stop is redelivered to the group`, async (t) => {
    const topic = uniqueName("bus");
    const groupId = uniqueName("g");
    const firstAttempts: number[] = [];
    const sub = await subscribe({
      groupId,
      topics: [topic],
      initialBackoffMs: 5_000,
      handle: async (event) => {
        firstAttempts.push(event.attempt);
        throw new Error("not yet");
      },
    });
    await publish([record(topic, "k", "retry-me")]);
    await eventually("the first attempt", () => firstAttempts.length === 1);
    const stopStarted = Date.now();
    await sub.stop();
    t.true(Date.now() - stopStarted < 4_000, "stop interrupts the backoff");

    const again = collector();
    const next = await subscribe({ groupId, topics: [topic], handle: again.handle });
    try {
      await eventually("redelivery", () => again.events.length === 1);
      t.is(text(again.events[0]!.value), "retry-me");
      t.is(again.events[0]!.offset, "0");
      t.deepEqual(firstAttempts, [1]);
    } finally {
      await next.stop();
    }
  });

  test(`${name}: fromBeginning false skips what was published before the group existed`, async (t) => {
    const topic = uniqueName("bus");
    const early = collector();
    const earlySub = await subscribe({ groupId: uniqueName("g"), topics: [topic], handle: early.handle });
    await publish([record(topic, "k", "old")]);
    await eventually("the old event to be stored", () => early.events.length === 1);
    await earlySub.stop();

    const late = collector();
    const sub = await subscribe({ groupId: uniqueName("g"), topics: [topic], fromBeginning: false, handle: late.handle });
    try {
      // Kafka resolves "latest" on the group's first fetch; let it happen.
      await sleep(fixture.quietMs);
      await publish([record(topic, "k", "new")]);
      await eventually("the new event", () => late.events.length >= 1);
      await sleep(fixture.quietMs);
      t.deepEqual(late.values(), ["new"]);
    } finally {
      await sub.stop();
    }
  });
}

busSuite(memory);
busSuite(kafka);

test("openEventBus picks kafka for brokers and memory without", async (t) => {
  const { kafkaBrokers } = await infra();
  const withBrokers = await openEventBus({ brokers: kafkaBrokers, clientId: "runtime-bus-test", logger: silentSink });
  const without = await openEventBus({ clientId: "runtime-bus-test" });
  try {
    t.is(withBrokers.kind, "kafka");
    t.is(without.kind, "memory");
    await withBrokers.ping();
  } finally {
    await Promise.all([withBrokers.close(), without.close()]);
  }
});

test("kafka: ping fails quickly when no broker answers", async (t) => {
  const bus = openKafkaBus({ brokers: ["127.0.0.1:1"], clientId: "runtime-bus-test", logger: silentSink });
  try {
    const started = Date.now();
    await t.throwsAsync(() => bus.ping());
    t.true(Date.now() - started < 30_000, `took ${Date.now() - started} ms`);
  } finally {
    await bus.close();
  }
});
