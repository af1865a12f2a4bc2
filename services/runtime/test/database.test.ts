/**
 * One suite for the Database port, run against embedded PGlite and real
 * PostgreSQL. Each test works in a schema of its own.
 */
import test from "ava";
import { sql } from "drizzle-orm";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Database, Queryable } from "../src/db/database.ts";
import { openDatabase } from "../src/db/open.ts";
import { idArray, preparedSql, textArray } from "../src/db/prepared.ts";
import { isDatabaseUnavailable } from "../src/db/unavailable.ts";
import { silentSink } from "../src/bus/log-sink.ts";
import { eventually, freshSchema, infra, uniqueName, withClient } from "../test-support/infra.ts";

const migrations = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures/migrations");

interface Fixture {
  name: "pglite" | "postgres";
  /** A Database shared by this file's tests (PGlite takes seconds to start). */
  shared(): Promise<Database>;
  /** `count` handles on one database whose search_path is a fresh schema; as many processes would have. */
  scoped(count: number): Promise<{ schema: string; handles: Database[]; dispose(): Promise<void> }>;
}

async function rows(db: Queryable, query: ReturnType<typeof sql>): Promise<Array<Record<string, unknown>>> {
  const result: unknown = await db.execute(query);
  if (typeof result === "object" && result !== null && "rows" in result && Array.isArray(result.rows)) return result.rows;
  throw new Error("no rows in result");
}

// PGlite starts synchronously on the event loop (WASM initdb, seconds of
// CPU). Started in a hook, before any test runs, it cannot stall the timers
// of the Postgres tests (whose 5 s connect timeout would then fire).
const PGLITE_SCOPED = 3;
let sharedPglite: Promise<Database> | undefined;
const sparePglites: Array<{ schema: string; database: Promise<Database> }> = [];
test.before(async () => {
  sharedPglite = openDatabase();
  for (let i = 0; i < PGLITE_SCOPED; i++) {
    const schema = uniqueName("t");
    sparePglites.push({ schema, database: openDatabase({ searchPath: schema }) });
  }
  await Promise.all([sharedPglite, ...sparePglites.map((s) => s.database)]);
});

const pglite: Fixture = {
  name: "pglite",
  shared: () => sharedPglite!,
  async scoped(count) {
    const spare = sparePglites.pop();
    if (!spare) throw new Error("raise PGLITE_SCOPED: more scoped PGlite tests than instances");
    const database = await spare.database;
    await database.db.execute(sql.raw(`CREATE SCHEMA ${spare.schema}`));
    // A PGlite data dir belongs to one process: "several processes" is one
    // instance used concurrently.
    return { schema: spare.schema, handles: Array.from({ length: count }, () => database), dispose: () => database.close() };
  },
};

let sharedPostgres: Promise<Database> | undefined;
const postgres: Fixture = {
  name: "postgres",
  shared: () => (sharedPostgres ??= infra().then(({ databaseUrl }) => openDatabase({ url: databaseUrl, logger: silentSink }))),
  async scoped(count) {
    const { databaseUrl } = await infra();
    const schema = await freshSchema(databaseUrl);
    const handles = await Promise.all(
      Array.from({ length: count }, () => openDatabase({ url: databaseUrl, searchPath: schema.name, poolMax: 2, logger: silentSink })),
    );
    return {
      schema: schema.name,
      handles,
      async dispose() {
        await Promise.all(handles.map((h) => h.close()));
        await schema.drop();
      },
    };
  },
};

test.after.always(async () => {
  await Promise.all([sharedPglite, sharedPostgres, ...sparePglites.map((s) => s.database)].map(async (database) => (await database)?.close()));
});

function databaseSuite(fixture: Fixture): void {
  const name = fixture.name;

  test(`${name}: kind, ping and drizzle queries with transactions`, async (t) => {
    const database = await fixture.shared();
    t.is(database.kind, name);
    await database.ping();
    const schema = uniqueName("t");
    await database.db.execute(sql.raw(`CREATE SCHEMA ${schema}`));
    await database.db.execute(sql.raw(`CREATE TABLE ${schema}.items (id int PRIMARY KEY, label text)`));
    await database.db.transaction(async (tx) => {
      await tx.execute(sql.raw(`INSERT INTO ${schema}.items VALUES (1, 'kept')`));
    });
    await t.throwsAsync(
      database.db.transaction(async (tx) => {
        await tx.execute(sql.raw(`INSERT INTO ${schema}.items VALUES (2, 'rolled back')`));
        throw new Error("abort");
      }),
      { message: "abort" },
    );
    t.deepEqual(await rows(database.db, sql.raw(`SELECT id, label FROM ${schema}.items ORDER BY id`)), [{ id: 1, label: "kept" }]);
    await database.db.execute(sql.raw(`DROP SCHEMA ${schema} CASCADE`));
  });

  test(`${name}: a prepared statement takes id and text lists as one array parameter each, any text as itself`, async (t) => {
    const database = await fixture.shared();
    const statement = preparedSql(
      database.db,
      uniqueName("arrays"),
      sql`select ${sql.placeholder("texts")}::text[] as texts, cardinality(${sql.placeholder("texts")}::text[]) as n, ${sql.placeholder("ids")}::uuid[] as ids`,
    );
    const texts = ["plain", 'a "quoted" word', "back\\slash", "comma, {brace}", "", "NULL", "#tag", "ünïcødé 🐦"];
    const ids = [crypto.randomUUID(), crypto.randomUUID()];
    const [row] = await statement.execute({ texts: textArray(texts), ids: idArray(ids) });
    t.is(Number(row?.["n"]), texts.length);
    const asText = await rows(database.db, sql`select unnest(${textArray(texts)}::text[]) as item`);
    t.deepEqual(asText.map((r) => r["item"]), texts, "every element comes back as itself, in order (\"NULL\" as the text, not a null)");
    const [empty] = await statement.execute({ texts: textArray([]), ids: idArray([]) });
    t.is(Number(empty?.["n"]), 0);
  });

  test(`${name}: migrate applies each migration once, journal in the given schema`, async (t) => {
    const scope = await fixture.scoped(1);
    const [database] = scope.handles;
    try {
      await database!.migrate(migrations, { schema: scope.schema });
      await database!.migrate(migrations, { schema: scope.schema }); // idempotent
      await database!.db.execute(sql`INSERT INTO widgets (id, name) VALUES (1, 'gear')`);
      t.deepEqual(await rows(database!.db, sql`SELECT id, name, color FROM widgets`), [{ id: 1, name: "gear", color: "blue" }]);
      const journal = await rows(database!.db, sql.raw(`SELECT created_at FROM ${scope.schema}.__drizzle_migrations ORDER BY id`));
      t.deepEqual(
        journal.map((r) => Number(r["created_at"])),
        [1763856000000, 1763856060000],
      );
    } finally {
      await scope.dispose();
    }
  });

  test(`${name}: concurrent migrate from several handles is serialised`, async (t) => {
    const scope = await fixture.scoped(4);
    try {
      await Promise.all(scope.handles.map((h) => h.migrate(migrations, { schema: scope.schema })));
      const [database] = scope.handles;
      const journal = await rows(database!.db, sql.raw(`SELECT count(*)::int AS n FROM ${scope.schema}.__drizzle_migrations`));
      t.deepEqual(journal, [{ n: 2 }], "each migration recorded exactly once");
      const columns = await rows(
        database!.db,
        sql`SELECT column_name FROM information_schema.columns WHERE table_schema = ${scope.schema} AND table_name = 'widgets' ORDER BY ordinal_position`,
      );
      t.deepEqual(
        columns.map((c) => c["column_name"]),
        ["id", "name", "color"],
      );
    } finally {
      await scope.dispose();
    }
  });

  test(`${name}: listen gets NOTIFYs on commit only, channel names are case-sensitive`, async (t) => {
    const database = await fixture.shared();
    const channel = `Mixed_${uniqueName("Ch")}`;
    const received: string[] = [];
    const lower: string[] = [];
    const unlisten = await database.listen(channel, (payload) => received.push(payload));
    const unlistenLower = await database.listen(channel.toLowerCase(), (payload) => lower.push(payload));

    await t.throwsAsync(
      database.db.transaction(async (tx) => {
        await tx.execute(sql`SELECT pg_notify(${channel}, 'rolled-back')`);
        throw new Error("abort");
      }),
    );
    await database.db.transaction(async (tx) => {
      await tx.execute(sql`SELECT pg_notify(${channel}, 'one')`);
      await tx.execute(sql`SELECT pg_notify(${channel}, 'two')`);
    });
    await eventually("two notifications", () => received.length >= 2, 15_000);
    t.deepEqual(received, ["one", "two"]);
    t.deepEqual(lower, [], "a channel differing in case is another channel");

    await unlisten();
    await database.db.execute(sql`SELECT pg_notify(${channel}, 'after')`);
    await database.db.execute(sql`SELECT pg_notify(${channel.toLowerCase()}, 'lower')`);
    await eventually("the lower-case channel notification", () => lower.length === 1, 15_000);
    t.deepEqual(received, ["one", "two"], "nothing after unlisten");
    await unlistenLower();
  });

  test(`${name}: ping fails after close`, async (t) => {
    const scope = await fixture.scoped(1);
    const [database] = scope.handles;
    await database!.ping();
    await scope.dispose();
    await t.throwsAsync(() => database!.ping());
  });
}

databaseSuite(pglite);
databaseSuite(postgres);

test("postgres: the LISTEN connection comes back after the server drops it, and says when it was gone", async (t) => {
  const { databaseUrl } = await infra();
  const database = await openDatabase({ url: databaseUrl, logger: silentSink });
  const channel = uniqueName("reconnect");
  const received: string[] = [];
  /** Each onListening call, with how many notifications had arrived by then. */
  const states: Array<{ listening: boolean; received: number }> = [];
  try {
    await database.listen(channel, (payload) => received.push(payload), { onListening: (listening) => states.push({ listening, received: received.length }) });
    await database.db.execute(sql`SELECT pg_notify(${channel}, 'before')`);
    await eventually("the notification before the drop", async () => received.length === 1, 10_000, 20);
    t.deepEqual(states, [], "nothing to tell while the first connection listens");
    const killed = await withClient(databaseUrl, async (client) => {
      const { rows: found } = await client.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE query = $1", [`LISTEN "${channel}"`]);
      t.is(found.length, 1, "exactly one listener connection");
      await client.query("SELECT pg_terminate_backend($1)", [found[0]!.pid]);
      return found[0]!.pid;
    });
    // Notifications sent while it is down are lost by design; keep sending
    // until one arrives over the new connection.
    let sent = 0;
    await eventually(
      "a notification after reconnecting",
      async () => {
        await database.db.execute(sql`SELECT pg_notify(${channel}, ${String(++sent)})`);
        return received.length > 1;
      },
      30_000,
      100,
    );
    const listeners = await withClient(databaseUrl, (client) =>
      client.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE query = $1", [`LISTEN "${channel}"`]),
    );
    t.is(listeners.rows.length, 1);
    t.not(listeners.rows[0]!.pid, killed, "a new backend re-issued LISTEN");
    // Told of the gap before anything arrived over the new connection, and that it listens again.
    t.deepEqual(states, [
      { listening: false, received: 1 },
      { listening: true, received: 1 },
    ]);
  } finally {
    await database.close();
  }
});

// The outbox relay holds its transaction's connection while it awaits Kafka;
// the chaos matrix's post ↔ PostgreSQL partition dropped it right then, and
// the unhandled 'error' of the checked-out client killed the process.
test("postgres: a transaction's connection dropped between statements fails that transaction, not the process", async (t) => {
  const { databaseUrl } = await infra();
  const warnings: string[] = [];
  const database = await openDatabase({ url: databaseUrl, logger: { warn: (_context, message) => void warnings.push(message), error: () => undefined } });
  try {
    const failed = database.db.transaction(async (tx) => {
      const [own] = await rows(tx, sql`SELECT pg_backend_pid() AS pid`);
      await withClient(databaseUrl, (client) => client.query("SELECT pg_terminate_backend($1)", [own!["pid"]]));
      // Idle inside the transaction, as the relay is while it awaits its publish, until the client has seen the drop.
      await eventually("the dropped connection reported", () => warnings.includes("postgres connection failed while checked out"), 15_000);
      await tx.execute(sql`SELECT 1`);
    });
    const error = await t.throwsAsync(failed);
    t.true(isDatabaseUnavailable(error), `UNAVAILABLE to callers, not INTERNAL: ${String(error)}`);
    t.deepEqual(await rows(database.db, sql`SELECT 1 AS one`), [{ one: 1 }], "the pool hands out a working connection afterwards");
  } finally {
    await database.close();
  }
});

// pg.Pool closes a client released with an error: every refused statement
// (a unique violation a store answers as "already there") cost a new
// connection until the pool kept them (src/db/postgres.ts).
test("postgres: a statement the server refuses keeps its connection; a dropped one is replaced", async (t) => {
  const { databaseUrl } = await infra();
  const database = await openDatabase({ url: databaseUrl, poolMax: 1, logger: silentSink });
  try {
    const backend = async () => Number((await rows(database.db, sql`SELECT pg_backend_pid() AS pid`))[0]!["pid"]);
    const first = await backend();
    const refused = await t.throwsAsync(database.db.execute(sql`SELECT 1 / 0`));
    t.regex(String(refused?.cause ?? refused), /division by zero/);
    await t.throwsAsync(database.db.execute(sql`SELECT * FROM no_such_table_here`));
    t.is(await backend(), first, "the same connection answers after two refused statements");

    await withClient(databaseUrl, (client) => client.query("SELECT pg_terminate_backend($1)", [first]));
    // The idle client learns of the drop when its socket closes; until then a statement may fail with it.
    let replaced = first;
    await eventually("a new connection answers", async () => {
      replaced = await backend().catch(() => first);
      return replaced !== first;
    }, 15_000);
    t.not(replaced, first);
  } finally {
    await database.close();
  }
});

test("openDatabase picks postgres for a url and PGlite without", async (t) => {
  t.is((await pglite.shared()).kind, "pglite");
  t.is((await postgres.shared()).kind, "postgres");
});
