/**
 * One suite for the transactional outbox (enqueue → relay → bus → handleOnce),
 * run on the two stacks that matter: embedded (PGlite + in-memory bus, as in
 * `make dev`) and real (PostgreSQL + Kafka).
 */
import test from "ava";
import { create } from "@bufbuild/protobuf";
import { sql } from "drizzle-orm";
import { bigint, integer, pgSchema, text, uuid } from "drizzle-orm/pg-core";
import { UserLoggedInSchema, UserRegisteredSchema } from "@aviary/gen/aviary/events/v1/auth_events_pb";
import { deadLetterTopic, EventHeaders, type DeliveredEvent, type EventBus, type EventRecord, type SubscribeOptions } from "../src/bus/bus.ts";
import { MemoryEventBus } from "../src/bus/memory.ts";
import { openKafkaBus } from "../src/bus/kafka.ts";
import { silentSink } from "../src/bus/log-sink.ts";
import type { Database, Queryable } from "../src/db/database.ts";
import { openDatabase } from "../src/db/open.ts";
import { decodeEvent, enqueueEvent, enqueueEventWith, EventDecodeError, outboxInsertWhere, outboxPlaceholderValues, PROTOBUF_CONTENT_TYPE } from "../src/outbox/enqueue.ts";
import { preparedSql } from "../src/db/prepared.ts";
import { handleOnce } from "../src/outbox/idempotent.ts";
import { RELAY_LOCK_NAMESPACE, startOutboxRelay, type OutboxRelayOptions } from "../src/outbox/relay.ts";
import type { OutboxTables } from "../src/outbox/tables.ts";
import { eventually, infra, uniqueName, withClient } from "../test-support/infra.ts";
import { createOutboxSchema } from "../test-support/outbox-schema.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Stack {
  name: string;
  database(): Promise<Database>;
  bus(): Promise<EventBus>;
  quietMs: number;
}

/** Opened once per file and shared: each test has its own schema, topic and groups. */
function memoize<T>(open: () => Promise<T>): { get(): Promise<T>; opened(): Promise<T> | undefined } {
  let value: Promise<T> | undefined;
  return { get: () => (value ??= open()), opened: () => value };
}

const pglite = memoize(() => openDatabase());
const memoryBus = memoize(async () => new MemoryEventBus());
const postgres = memoize(async () => openDatabase({ url: (await infra()).databaseUrl, logger: silentSink }));
const kafkaBus = memoize(async () => openKafkaBus({ brokers: (await infra()).kafkaBrokers, clientId: "runtime-outbox-test", logger: silentSink }));

const embedded: Stack = { name: "pglite+memory", database: pglite.get, bus: memoryBus.get, quietMs: 300 };
const real: Stack = { name: "postgres+kafka", database: postgres.get, bus: kafkaBus.get, quietMs: 2_000 };

// PGlite starts synchronously (WASM initdb): do it before the tests, so it
// cannot stall the timers of the Postgres and Kafka tests running alongside.
test.before(async () => {
  await pglite.get();
});

test.after.always(async () => {
  for (const resource of [memoryBus, kafkaBus, pglite, postgres]) await (await resource.opened())?.close();
});

async function rows(db: Queryable, query: ReturnType<typeof sql>): Promise<Array<Record<string, unknown>>> {
  const result: unknown = await db.execute(query);
  if (typeof result === "object" && result !== null && "rows" in result && Array.isArray(result.rows)) return result.rows;
  throw new Error("no rows in result");
}

/** A registration event whose email carries a sequence number, to check order. */
function registered(key: string, n: number) {
  return create(UserRegisteredSchema, { userId: key, email: `${n}@${key}.test` });
}
const sequenceOf = (event: DeliveredEvent) => Number(decodeEvent(UserRegisteredSchema, event).email.split("@")[0]);

/** A bus whose next `failures` publishes throw, as Kafka does when down. */
class FlakyBus implements EventBus {
  readonly kind: EventBus["kind"];
  readonly #inner: EventBus;
  failures = 0;
  attempts = 0;
  constructor(inner: EventBus) {
    this.#inner = inner;
    this.kind = inner.kind;
  }
  async publish(records: EventRecord[]): Promise<void> {
    this.attempts++;
    if (this.failures > 0) {
      this.failures--;
      throw new Error("broker unavailable (simulated)");
    }
    await this.#inner.publish(records);
  }
  subscribe(options: SubscribeOptions) {
    return this.#inner.subscribe(options);
  }
  ping() {
    return this.#inner.ping();
  }
  async close() {}
}

function outboxSuite(stack: Stack): void {
  const name = stack.name;

  /** Per test: a schema with the outbox tables and an `applied` table for consumers' effects. */
  async function setup() {
    const database = await stack.database();
    const bus = await stack.bus();
    const schema = uniqueName("ob");
    const tables = await createOutboxSchema(database, schema);
    await database.db.execute(
      sql.raw(`CREATE TABLE ${schema}.applied (seq bigserial PRIMARY KEY, event_id uuid NOT NULL, key text NOT NULL, n int NOT NULL)`),
    );
    const topic = uniqueName("outbox");
    const stoppers: Array<() => Promise<void>> = [];
    return {
      database,
      bus,
      schema,
      tables,
      topic,
      async relay(options: Partial<OutboxRelayOptions> = {}) {
        const relay = await startOutboxRelay({ database, bus, tables, logger: silentSink, ...options });
        stoppers.push(() => relay.stop());
        return relay;
      },
      async consume(handle: (event: DeliveredEvent) => Promise<void>, options: Partial<SubscribeOptions> = {}) {
        const sub = await bus.subscribe({ groupId: uniqueName("g"), topics: [topic], handle, ...options });
        stoppers.push(() => sub.stop());
        return sub;
      },
      async enqueue(key: string, n: number, id?: string) {
        await database.db.transaction((tx) =>
          enqueueEvent(tx, tables, { topic, key, schema: UserRegisteredSchema, message: registered(key, n), ...(id ? { id } : {}) }),
        );
      },
      async cleanup() {
        for (const stop of stoppers.reverse()) await stop();
        await database.db.execute(sql.raw(`DROP SCHEMA ${schema} CASCADE`));
      },
    };
  }

  test(`${name}: a committed event is published with its headers and a decodable payload`, async (t) => {
    const s = await setup();
    try {
      const got: DeliveredEvent[] = [];
      await s.consume(async (e) => void got.push(e));
      const relay = await s.relay();
      const id = crypto.randomUUID();
      const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
      await s.database.db.transaction((tx) =>
        enqueueEvent(tx, s.tables, { topic: s.topic, key: "user-7", schema: UserRegisteredSchema, message: registered("user-7", 1), id, traceparent }),
      );
      await eventually("the event", () => got.length === 1);
      const [event] = got;
      t.is(event!.key, "user-7");
      t.deepEqual(event!.headers, {
        [EventHeaders.id]: id,
        [EventHeaders.type]: "aviary.events.v1.UserRegistered",
        [EventHeaders.contentType]: PROTOBUF_CONTENT_TYPE,
        [EventHeaders.traceparent]: traceparent,
      });
      const decoded = decodeEvent(UserRegisteredSchema, event!);
      t.is(decoded.userId, "user-7");
      t.is(decoded.email, "1@user-7.test");
      await relay.flushed(); // the consumer can be faster than the relay's commit
      const [row] = await rows(s.database.db, sql.raw(`SELECT published_at IS NOT NULL AS published, type FROM ${s.schema}.outbox_events WHERE id = '${id}'`));
      t.deepEqual(row, { published: true, type: "aviary.events.v1.UserRegistered" });
    } finally {
      await s.cleanup();
    }
  });

  // The relay takes the outbox's advisory lock inside the statement that
  // claims rows (relay.ts publishBatch): an instance that does not get it
  // must publish nothing, and the holder's events then go out in order. A
  // session of its own holds the lock here, as a second relay instance
  // would. Real PostgreSQL only: PGlite is one connection, which the holder
  // would keep from the relay altogether.
  if (stack === real) {
    test(`${name}: a relay that does not get the outbox's lock publishes nothing until it is free`, async (t) => {
      const s = await setup();
      try {
        const got: DeliveredEvent[] = [];
        await s.consume(async (event) => void got.push(event));
        const relay = await s.relay({ fallbackPollMs: 50 });
        await withClient((await infra()).databaseUrl, async (holder) => {
          await holder.query("BEGIN");
          await holder.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [RELAY_LOCK_NAMESPACE, `${s.schema}.outbox_events`]);
          for (let n = 0; n < 3; n++) await s.enqueue("k", n);
          // Woken by each NOTIFY and every poll: dozens of passes in this time, each without the lock.
          await sleep(stack.quietMs);
          t.is(got.length, 0, "nothing published while another session holds the lock");
          t.is(await relay.pending(), 3, "nothing claimed either");
          await holder.query("COMMIT");
        });
        await eventually("the three events", () => got.length === 3, 30_000);
        t.deepEqual(got.map(sequenceOf), [0, 1, 2]);
        await relay.flushed(10_000);
      } finally {
        await s.cleanup();
      }
    });
  }

  test(`${name}: an event enqueued in a rolled-back transaction is never published`, async (t) => {
    const s = await setup();
    try {
      const got: DeliveredEvent[] = [];
      await s.consume(async (e) => void got.push(e));
      const relay = await s.relay();
      const ghost = crypto.randomUUID();
      await t.throwsAsync(
        s.database.db.transaction(async (tx) => {
          await enqueueEvent(tx, s.tables, { topic: s.topic, key: "k", schema: UserRegisteredSchema, message: registered("k", 0), id: ghost });
          throw new Error("state change failed");
        }),
        { message: "state change failed" },
      );
      await s.enqueue("k", 1);
      await relay.flushed();
      await eventually("the committed event", () => got.length >= 1);
      await sleep(stack.quietMs);
      t.deepEqual(
        got.map((e) => e.headers[EventHeaders.id] === ghost),
        [false],
      );
      t.deepEqual(got.map(sequenceOf), [1]);
      t.deepEqual(await rows(s.database.db, sql.raw(`SELECT count(*)::int AS n FROM ${s.schema}.outbox_events WHERE id = '${ghost}'`)), [{ n: 0 }]);
    } finally {
      await s.cleanup();
    }
  });

  test(`${name}: the relay wakes on NOTIFY instead of waiting for its poll`, async (t) => {
    const s = await setup();
    try {
      const got: DeliveredEvent[] = [];
      await s.consume(async (event) => void got.push(event));
      // The poll is far beyond the wait below: an event seen within it came from NOTIFY.
      const fallbackPollMs = 10 * 60_000;
      const relay = await s.relay({ fallbackPollMs });
      await relay.flushed(); // the start-up pass is done; the relay now idles
      await s.enqueue("k", 1);
      await eventually("the event", () => got.length === 1, fallbackPollMs / 10);
      t.pass("published long before the poll would have run");
      // The consumer may see the event before the relay's commit lands.
      await relay.flushed(5_000);
    } finally {
      await s.cleanup();
    }
  });

  test(`${name}: with lingerMs, an event after a quiet spell goes out at once and a burst behind it in one pass or two`, async (t) => {
    const s = await setup();
    try {
      const got: DeliveredEvent[] = [];
      await s.consume(async (event) => void got.push(event));
      const inner = await stack.bus();
      // What the relay did, observed instead of timed: each publish's size and
      // how many times the relay had lingered before it.
      const lingers: number[] = [];
      const batches: Array<{ size: number; lingeredBefore: number }> = [];
      const counting: EventBus = {
        kind: inner.kind,
        publish: (records) => {
          batches.push({ size: records.length, lingeredBefore: lingers.length });
          return inner.publish(records);
        },
        subscribe: (options) => inner.subscribe(options),
        ping: () => inner.ping(),
        close: () => inner.close(),
      };
      // A linger long enough that the burst (ten inserts) is all committed within it even on a busy machine.
      const relay = await s.relay({ bus: counting, lingerMs: 5_000, fallbackPollMs: 10 * 60_000, onLinger: (ms) => lingers.push(ms) });
      await relay.flushed();
      await s.enqueue("k", 0);
      await eventually("the first event", () => got.length === 1, 60_000);
      t.deepEqual(batches[0], { size: 1, lingeredBefore: 0 }, "the event after a quiet spell went out alone, without lingering first");
      for (let n = 1; n <= 10; n++) await s.enqueue("k", n);
      await eventually("eleven events", () => got.length === 11, 60_000);
      t.deepEqual(got.map(sequenceOf), Array.from({ length: 11 }, (_, i) => i), "in order");
      t.true(batches.slice(1).every((b) => b.lingeredBefore >= 1), "the busy relay lingered before taking the burst");
      t.true(batches.length <= 3, `the burst of ten went out in ${batches.length - 1} passes (${batches.map((b) => b.size).join(", ")})`);
      await relay.flushed(5_000);
    } finally {
      await s.cleanup();
    }
  });

  test(`${name}: per-key order holds across batches and two relays`, async (t) => {
    const s = await setup();
    try {
      const got: DeliveredEvent[] = [];
      await s.consume(async (e) => void got.push(e));
      const relays = [await s.relay({ batchSize: 7 }), await s.relay({ batchSize: 7 })];
      const keys = ["k1", "k2", "k3"];
      for (let n = 0; n < 30; n++) {
        await s.database.db.transaction(async (tx) => {
          for (const key of keys) await enqueueEvent(tx, s.tables, { topic: s.topic, key, schema: UserRegisteredSchema, message: registered(key, n) });
        });
      }
      await relays[0]!.flushed(30_000);
      await eventually("90 events", () => new Set(got.map((e) => e.headers[EventHeaders.id])).size === 90, 30_000);
      for (const key of keys) {
        t.deepEqual(
          got.filter((e) => e.key === key).map(sequenceOf),
          Array.from({ length: 30 }, (_, i) => i),
          `order of ${key}`,
        );
      }
    } finally {
      await s.cleanup();
    }
  });

  test(`${name}: while the bus fails the relay retries with backoff and loses nothing`, async (t) => {
    const s = await setup();
    const flaky = new FlakyBus(s.bus);
    flaky.failures = 3;
    try {
      const got: DeliveredEvent[] = [];
      await s.consume(async (e) => void got.push(e));
      for (let n = 0; n < 10; n++) await s.enqueue(n % 2 ? "odd" : "even", n);
      const relay = await startOutboxRelay({ database: s.database, bus: flaky, tables: s.tables, logger: silentSink });
      try {
        await eventually("a failed pass", () => relay.lastError() !== undefined, 5_000);
        t.regex(relay.lastError()!.message, /simulated/);
        t.is(await relay.pending(), 10, "failed passes roll back: nothing marked published");
        await relay.flushed(15_000);
        t.is(relay.lastError(), undefined);
        t.is(flaky.attempts, 4, "three failures, then one successful publish of the whole batch");
      } finally {
        await relay.stop();
      }
      await eventually("10 events", () => got.length >= 10);
      t.deepEqual(got.filter((e) => e.key === "even").map(sequenceOf), [0, 2, 4, 6, 8]);
      t.deepEqual(got.filter((e) => e.key === "odd").map(sequenceOf), [1, 3, 5, 7, 9]);
    } finally {
      await s.cleanup();
    }
  });

  test(`${name}: redelivered events are applied once by handleOnce`, async (t) => {
    const s = await setup();
    try {
      const outcomes: boolean[] = [];
      let crashed = false;
      await s.consume(
        async (event) => {
          const id = event.headers[EventHeaders.id]!;
          const message = decodeEvent(UserRegisteredSchema, event);
          const applied = await handleOnce(s.database, s.tables, "test-consumer", id, async (tx) => {
            await tx.execute(sql.raw(`INSERT INTO ${s.schema}.applied (event_id, key, n) VALUES ('${id}', '${event.key}', ${Number(message.email.split("@")[0])})`));
          });
          outcomes.push(applied);
          // Crash after the effects committed but before the offset did: the
          // bus redelivers, handleOnce must skip.
          if (!crashed) {
            crashed = true;
            throw new Error("crash before ack");
          }
        },
        { initialBackoffMs: 10 },
      );
      const relay = await s.relay();
      const id = crypto.randomUUID();
      await s.enqueue("k", 1, id);
      await relay.flushed();
      // And a duplicate publication, as after a relay crash between publish and commit.
      const [row] = await s.database.db.select().from(s.tables.outboxEvents);
      await s.bus.publish([{ topic: s.topic, key: row!.key, value: row!.payload, headers: row!.headers }]);
      await eventually("three deliveries", () => outcomes.length >= 3);
      await sleep(stack.quietMs);
      t.deepEqual(outcomes, [true, false, false]);
      t.deepEqual(await rows(s.database.db, sql.raw(`SELECT event_id, n FROM ${s.schema}.applied`)), [{ event_id: id, n: 1 }]);
    } finally {
      await s.cleanup();
    }
  });

  test(`${name}: handleOnce keeps nothing when apply fails, so the retry applies`, async (t) => {
    const s = await setup();
    try {
      const id = crypto.randomUUID();
      const insert = async (tx: Queryable) => {
        await tx.execute(sql.raw(`INSERT INTO ${s.schema}.applied (event_id, key, n) VALUES ('${id}', 'k', 1)`));
      };
      await t.throwsAsync(
        handleOnce(s.database, s.tables, "c", id, async (tx) => {
          await insert(tx);
          throw new Error("apply failed");
        }),
        { message: "apply failed" },
      );
      t.deepEqual(await rows(s.database.db, sql.raw(`SELECT count(*)::int AS n FROM ${s.schema}.processed_events`)), [{ n: 0 }]);
      t.true(await handleOnce(s.database, s.tables, "c", id, insert));
      t.false(await handleOnce(s.database, s.tables, "c", id, insert));
      t.true(await handleOnce(s.database, s.tables, "another-consumer", id, async () => {}), "idempotency is per consumer");
      t.deepEqual(await rows(s.database.db, sql.raw(`SELECT count(*)::int AS n FROM ${s.schema}.applied`)), [{ n: 1 }]);
    } finally {
      await s.cleanup();
    }
  });

  test(`${name}: enqueueEventWith writes a change and its event in one statement, or neither`, async (t) => {
    const s = await setup();
    try {
      const applied = pgSchema(s.schema).table("applied", { seq: bigint("seq", { mode: "number" }).primaryKey(), eventId: uuid("event_id").notNull(), key: text("key").notNull(), n: integer("n").notNull() });
      const got: DeliveredEvent[] = [];
      await s.consume(async (e) => void got.push(e));
      const relay = await s.relay();
      const id = crypto.randomUUID();
      const event = (eventId: string) => ({ topic: s.topic, key: "k", schema: UserRegisteredSchema, message: registered("k", 7), id: eventId });
      await enqueueEventWith(s.database.db, s.tables, s.database.db.insert(applied).values({ seq: 1, eventId: id, key: "k", n: 7 }), event(id));
      await eventually("the event", () => got.length === 1);
      t.is(got[0]!.headers[EventHeaders.id], id);
      t.is(decodeEvent(UserRegisteredSchema, got[0]!).email, "7@k.test");
      // The same primary key again: the change fails, and its event with it.
      const failed = crypto.randomUUID();
      await t.throwsAsync(enqueueEventWith(s.database.db, s.tables, s.database.db.insert(applied).values({ seq: 1, eventId: failed, key: "k", n: 8 }), event(failed)));
      t.deepEqual(await rows(s.database.db, sql.raw(`SELECT count(*)::int AS n FROM ${s.schema}.outbox_events WHERE id = '${failed}'`)), [{ n: 0 }]);
      t.deepEqual(await rows(s.database.db, sql.raw(`SELECT event_id FROM ${s.schema}.applied`)), [{ event_id: id }]);
      await relay.flushed();
    } finally {
      await s.cleanup();
    }
  });

  test(`${name}: a prepared statement's outboxInsertWhere writes the event only where its condition holds, and the statement answers either way`, async (t) => {
    const s = await setup();
    try {
      await s.database.db.execute(sql.raw(`INSERT INTO ${s.schema}.applied (event_id, key, n) VALUES ('${crypto.randomUUID()}', 'k', 1)`));
      const applied = pgSchema(s.schema).table("applied", { seq: bigint("seq", { mode: "number" }).primaryKey(), n: integer("n").notNull() });
      const took = sql`exists (select 1 from bumped)`;
      // A compare-and-set: n moves on only from the value expected.
      const statement = preparedSql(
        s.database.db,
        uniqueName("bump"),
        sql`with bumped as (update ${applied} set n = n + 1 where n = ${sql.placeholder("expected")}::int returning n),
          queued as ${outboxInsertWhere(s.tables, took)}
          select ${took} as took, (select n from ${applied} limit 1) as seen`,
      );
      const got: DeliveredEvent[] = [];
      await s.consume(async (e) => void got.push(e));
      const relay = await s.relay();
      const bump = (expected: number, id: string) => statement.execute({ expected, ...outboxPlaceholderValues({ topic: s.topic, key: "k", schema: UserRegisteredSchema, message: registered("k", expected), id }) });
      const [first, second] = [crypto.randomUUID(), crypto.randomUUID()];
      t.deepEqual(await bump(1, first), [{ took: true, seen: 1 }]);
      // Expected 1 again: nothing taken, no event, and the statement says what it saw.
      t.deepEqual(await bump(1, second), [{ took: false, seen: 2 }]);
      t.deepEqual(await rows(s.database.db, sql.raw(`SELECT id::text FROM ${s.schema}.outbox_events`)), [{ id: first }]);
      await eventually("the event", () => got.length === 1);
      t.is(got[0]!.headers[EventHeaders.id], first);
      t.is(decodeEvent(UserRegisteredSchema, got[0]!).email, "1@k.test");
      await relay.flushed();
    } finally {
      await s.cleanup();
    }
  });

  test(`${name}: an event of the wrong type fails to decode and is dead-lettered with the reason`, async (t) => {
    const s = await setup();
    try {
      const dead: DeliveredEvent[] = [];
      const dlq = await s.bus.subscribe({ groupId: uniqueName("dlq"), topics: [deadLetterTopic(s.topic)], handle: async (e) => void dead.push(e) });
      const groupId = uniqueName("g");
      await s.consume(
        async (event) => {
          decodeEvent(UserRegisteredSchema, event);
        },
        { groupId, maxAttempts: 2, initialBackoffMs: 10 },
      );
      const relay = await s.relay();
      const id = crypto.randomUUID();
      await s.database.db.transaction((tx) =>
        enqueueEvent(tx, s.tables, { topic: s.topic, key: "u", schema: UserLoggedInSchema, message: create(UserLoggedInSchema, { userId: "u" }), id }),
      );
      await relay.flushed();
      await eventually("the dead letter", () => dead.length === 1);
      await dlq.stop();
      const reason = dead[0]!.headers[EventHeaders.deadLetterReason];
      t.is(reason, `event ${id} on ${s.topic} has event-type aviary.events.v1.UserLoggedIn, expected aviary.events.v1.UserRegistered`);
      t.is(dead[0]!.headers[EventHeaders.deadLetterGroup], groupId);
      t.throws(() => decodeEvent(UserRegisteredSchema, dead[0]!), { instanceOf: EventDecodeError });
      t.is(decodeEvent(UserLoggedInSchema, dead[0]!).userId, "u");
    } finally {
      await s.cleanup();
    }
  });

  test(`${name}: stop drains the batch in flight`, async (t) => {
    const s = await setup();
    let publishing = false;
    let published = false;
    const slow: EventBus = {
      kind: s.bus.kind,
      publish: async (records) => {
        publishing = true;
        await sleep(400);
        await s.bus.publish(records);
        published = true;
      },
      subscribe: (o) => s.bus.subscribe(o),
      ping: () => s.bus.ping(),
      close: async () => {},
    };
    try {
      await s.enqueue("k", 1);
      const relay = await startOutboxRelay({ database: s.database, bus: slow, tables: s.tables, logger: silentSink });
      await eventually("publishing to start", () => publishing, 5_000);
      await relay.stop();
      t.true(published, "stop waited for the publish");
      t.deepEqual(await rows(s.database.db, sql.raw(`SELECT count(*)::int AS n FROM ${s.schema}.outbox_events WHERE published_at IS NULL`)), [{ n: 0 }]);
    } finally {
      await s.cleanup();
    }
  });

  test(`${name}: published rows are pruned after the retention`, async (t) => {
    const s = await setup();
    try {
      for (let n = 0; n < 3; n++) await s.enqueue("k", n);
      const relay = await s.relay({ retainPublishedMs: 0 });
      await relay.flushed();
      await eventually(
        "published rows to be pruned",
        async () => (await rows(s.database.db, sql.raw(`SELECT count(*)::int AS n FROM ${s.schema}.outbox_events`)))[0]!["n"] === 0,
        5_000,
      );
      t.is(await relay.pending(), 0);
    } finally {
      await s.cleanup();
    }
  });
}

outboxSuite(embedded);
outboxSuite(real);

test("decodeEvent rejects a wrong content-type and garbage bytes with clear messages", (t) => {
  const base = { topic: "t", headers: { [EventHeaders.id]: "e1", [EventHeaders.type]: "aviary.events.v1.UserRegistered" } };
  t.throws(() => decodeEvent(UserRegisteredSchema, { ...base, headers: { ...base.headers, [EventHeaders.contentType]: "application/json" }, value: new Uint8Array() }), {
    instanceOf: EventDecodeError,
    message: "event e1 on t has content-type application/json, expected application/x-protobuf",
  });
  t.throws(() => decodeEvent(UserRegisteredSchema, { ...base, value: new Uint8Array([0xff, 0xff, 0xff]) }), {
    instanceOf: EventDecodeError,
    message: /^event e1 on t is not a valid aviary.events.v1.UserRegistered: /,
  });
  t.throws(() => decodeEvent(UserRegisteredSchema, { topic: "t", headers: {}, value: new Uint8Array() }), {
    message: "event (no event-id) on t has event-type (missing), expected aviary.events.v1.UserRegistered",
  });
});
