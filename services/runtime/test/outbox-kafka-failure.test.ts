/**
 * THE failure test: the Kafka broker is stopped (SIGTERM, a clean shutdown) or
 * killed (SIGKILL, a crash) in the middle of a stream of outbox events and
 * started again a few seconds later. Every event must still
 * arrive, each applied exactly once, in per-key order — for a consumer that
 * lived through the outage and for a fresh group reading afterwards.
 *
 * It stops and starts a broker, so it runs serially and on a broker of its own
 * (see `privateServer`): bouncing the shared one would break suites running in
 * parallel.
 */
import test, { type ExecutionContext } from "ava";
import { create } from "@bufbuild/protobuf";
import { sql } from "drizzle-orm";
import { UserRegisteredSchema } from "@aviary/gen/aviary/events/v1/auth_events_pb";
import { EventHeaders, type DeliveredEvent, type EventBus, type Subscription } from "../src/bus/bus.ts";
import { openKafkaBus } from "../src/bus/kafka.ts";
import type { LogSink } from "../src/bus/log-sink.ts";
import type { Database } from "../src/db/database.ts";
import { openDatabase } from "../src/db/open.ts";
import { decodeEvent, enqueueEvent } from "../src/outbox/enqueue.ts";
import { handleOnce } from "../src/outbox/idempotent.ts";
import { startOutboxRelay } from "../src/outbox/relay.ts";
import type { OutboxTables } from "../src/outbox/tables.ts";
import { eventually, infra, privateServer, uniqueName, type PrivateServer } from "../test-support/infra.ts";
import { createOutboxSchema } from "../test-support/outbox-schema.ts";

const EVENTS = 300;
const KEYS = ["k0", "k1", "k2", "k3", "k4", "k5"];
const OUTAGE_AT = 100;
const OUTAGE_MS = 4_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Keeps log lines (to show the outage was felt) without printing them. */
function recordingSink(): LogSink & { lines: string[] } {
  const lines: string[] = [];
  return { lines, warn: (_c, message) => void lines.push(message), error: (_c, message) => void lines.push(message) };
}

let broker: PrivateServer | undefined;
test.after.always(async () => {
  await broker?.down();
});

type Outage = "stop" | "kill";

for (const how of ["stop", "kill"] as const) {
  const what = how === "kill" ? "killed (SIGKILL)" : "stopped (SIGTERM)";
  test.serial(`kafka ${what} mid-run: every outbox event arrives, each applied once, in per-key order`, (t) => survivesOutage(t, how));
}

async function survivesOutage(t: ExecutionContext, how: Outage): Promise<void> {
  t.timeout(400_000);
  const startedAt = Date.now();
  broker ??= await privateServer("kafka", "kafka-failure");
  t.log(`private broker ${broker.url} up in ${Date.now() - startedAt} ms`);
  const { databaseUrl } = await infra();
  const relayLog = recordingSink();
  const busLog = recordingSink();
  const database = await openDatabase({ url: databaseUrl, logger: relayLog });
  const bus = openKafkaBus({ brokers: broker.url.split(","), clientId: "outbox-failure-test", logger: busLog });
  const schema = uniqueName("obf");
  const topic = uniqueName("failure");
  const resources: Array<() => Promise<void>> = [];
  try {
    const tables = await createOutboxSchema(database, schema);
    await database.db.execute(
      sql.raw(`CREATE TABLE ${schema}.applied (seq bigserial PRIMARY KEY, consumer text NOT NULL, event_id uuid NOT NULL, key text NOT NULL, n int NOT NULL)`),
    );

    // A consumer that lives through the outage.
    const live = consumer("live", database, bus, tables, schema);
    const liveSub = await live.subscribe(topic);
    resources.push(() => liveSub.stop());
    const relay = await startOutboxRelay({ database, bus, tables, batchSize: 50, maxBackoffMs: 2_000, logger: relayLog });
    resources.push(() => relay.stop());

    // Produce 300 events, one transaction each; stop the broker after 100.
    const ids: string[] = [];
    let outage: Promise<void> | undefined;
    for (let n = 0; n < EVENTS; n++) {
      if (n === OUTAGE_AT) outage = bounce(broker, how, t);
      const id = crypto.randomUUID();
      ids.push(id);
      const key = KEYS[n % KEYS.length]!;
      await database.db.transaction((tx) =>
        enqueueEvent(tx, tables, { topic, key, id, schema: UserRegisteredSchema, message: create(UserRegisteredSchema, { userId: key, email: `${n}@x` }) }),
      );
      await sleep(15);
    }
    await outage;
    await relay.flushed(120_000);
    const failedPasses = relayLog.lines.filter((l) => l.includes("outbox relay pass failed")).length;
    t.log(`relay: ${failedPasses} failed passes during the outage; all ${EVENTS} published ${Date.now() - startedAt} ms after start`);
    t.true(failedPasses > 0, "the outage really hit the relay");

    // A fresh group reading everything afterwards.
    const fresh = consumer("fresh", database, bus, tables, schema);
    const freshSub = await fresh.subscribe(topic);
    resources.push(() => freshSub.stop());

    for (const c of [live, fresh]) {
      await eventually(`${c.name} to apply all ${EVENTS}`, () => c.appliedIds.size === EVENTS, 120_000, 100);
      t.log(`${c.name}: all ${EVENTS} applied ${Date.now() - startedAt} ms after start`);
    }
    await sleep(2_000); // let stragglers (duplicates) arrive before counting

    for (const c of [live, fresh]) {
      t.deepEqual([...new Set(c.deliveredIds)].sort(), [...ids].sort(), `${c.name}: every event id arrived`);
      const applied = await database.db.execute(
        sql.raw(`SELECT key, n, event_id FROM ${schema}.applied WHERE consumer = '${c.name}' ORDER BY seq`),
      );
      const appliedRows = rowsOf(applied);
      t.is(appliedRows.length, EVENTS, `${c.name}: applied exactly ${EVENTS} times`);
      t.is(new Set(appliedRows.map((r) => r["event_id"])).size, EVENTS, `${c.name}: no event applied twice`);
      for (const key of KEYS) {
        const expected = Array.from({ length: EVENTS }, (_, n) => n).filter((n) => KEYS[n % KEYS.length] === key);
        t.deepEqual(
          appliedRows.filter((r) => r["key"] === key).map((r) => r["n"]),
          expected,
          `${c.name}: order of ${key}`,
        );
      }
      t.log(`${c.name}: ${c.deliveredIds.length} deliveries for ${EVENTS} events (${c.deliveredIds.length - EVENTS} redeliveries absorbed by handleOnce)`);
    }
    t.log(`consumer/producer recovery log lines: ${busLog.lines.length}; total ${Date.now() - startedAt} ms`);
    if (process.env["AVIARY_TEST_DEBUG"]) t.log(busLog.lines);
  } finally {
    for (const release of resources.reverse()) await release().catch(() => undefined);
    await bus.close();
    await database.db.execute(sql.raw(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
    await database.close();
  }
}

/** Stops or kills the broker, keeps it down for a few seconds, starts it again. */
async function bounce(kafka: PrivateServer, how: Outage, t: { log(...values: unknown[]): void }): Promise<void> {
  const at = Date.now();
  await (how === "kill" ? kafka.kill() : kafka.stop());
  t.log(`broker ${how === "kill" ? "killed" : "stopped"} (${Date.now() - at} ms)`);
  await sleep(OUTAGE_MS);
  const restartAt = Date.now();
  await kafka.start();
  t.log(`broker started again (${Date.now() - restartAt} ms); down for ${Date.now() - at} ms`);
}

/** A consumer group applying events through handleOnce into `applied`. */
function consumer(name: string, database: Database, bus: EventBus, tables: OutboxTables, schema: string) {
  const deliveredIds: string[] = [];
  const appliedIds = new Set<string>();
  return {
    name,
    deliveredIds,
    appliedIds,
    subscribe(topic: string): Promise<Subscription> {
      return bus.subscribe({
        groupId: uniqueName(`failure_${name}`),
        topics: [topic],
        initialBackoffMs: 50,
        handle: async (event: DeliveredEvent) => {
          const id = event.headers[EventHeaders.id]!;
          deliveredIds.push(id);
          const n = Number(decodeEvent(UserRegisteredSchema, event).email.split("@")[0]);
          await handleOnce(database, tables, name, id, async (tx) => {
            await tx.execute(sql.raw(`INSERT INTO ${schema}.applied (consumer, event_id, key, n) VALUES ('${name}', '${id}', '${event.key}', ${n})`));
          });
          appliedIds.add(id);
        },
      });
    },
  };
}

function rowsOf(result: unknown): Array<Record<string, unknown>> {
  if (typeof result === "object" && result !== null && "rows" in result && Array.isArray(result.rows)) return result.rows;
  throw new Error("no rows in result");
}
