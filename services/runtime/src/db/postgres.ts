import pg from "pg";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate as drizzleMigrate } from "drizzle-orm/node-postgres/migrator";
import type { Database, Db, MigrateOptions } from "./database.ts";
import { createPgListener } from "./pg-listener.ts";
import { consoleSink, type LogSink } from "../bus/log-sink.ts";
import { journalLocation } from "./journal.ts";
import { useFastTextArrays } from "./text-array.ts";

export interface PostgresOptions {
  url: string;
  /** Pool size (default 10). */
  poolMax?: number;
  /** `search_path` for every connection, e.g. the service's schema. */
  searchPath?: string;
  logger?: LogSink;
}

/** Namespace for our advisory locks (ASCII "avia"); the second key is per journal. */
const MIGRATION_LOCK_NAMESPACE = 0x61766961;

/** Real PostgreSQL through a node-postgres pool. */
export function openPostgres(options: PostgresOptions): Database {
  const log = options.logger ?? consoleSink;
  useFastTextArrays();
  const config: pg.ClientConfig = {
    connectionString: options.url,
    // A dead server must fail requests (and /readyz) quickly, not hang them.
    connectionTimeoutMillis: 5_000,
    ...(options.searchPath ? { options: `-c search_path=${escapeOption(options.searchPath)}` } : {}),
  };
  const pool = new pg.Pool({ ...config, max: options.poolMax ?? 10 });
  // Idle pooled clients report server restarts here; without a listener the
  // process would crash. The pool replaces them on the next checkout.
  pool.on("error", (error) => log.warn({ err: error }, "idle postgres connection failed"));
  // The pool listens only while a client is idle. A checked-out client whose
  // socket drops between statements (the outbox relay's transaction while it
  // awaits Kafka, any transaction awaiting other work) emits 'error' with no
  // listener, which crashed the process (found by `make chaos`: post ↔
  // PostgreSQL partition). With this listener the transaction's next
  // statement fails instead, and the pool discards the broken client on release.
  pool.on("connect", (client) => client.on("error", (error) => log.warn({ err: error }, "postgres connection failed while checked out")));
  keepConnectionsOnStatementErrors(pool);
  const listener = createPgListener(config, log);
  const db: Db = drizzle({ client: pool });

  return {
    db,
    kind: "postgres",

    async migrate(folder: string, migrateOptions?: MigrateOptions) {
      const journal = journalLocation(migrateOptions);
      // Session-level advisory locks belong to one connection, so the whole
      // migration runs on a single checked-out client. Holding the lock across
      // drizzle's `CREATE SCHEMA/TABLE IF NOT EXISTS` matters too: those race
      // on the catalog when two processes start at once.
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        const lockKey = [MIGRATION_LOCK_NAMESPACE, `${journal.migrationsSchema}.${journal.migrationsTable}`];
        await client.query("SELECT pg_advisory_lock($1, hashtext($2))", lockKey);
        try {
          await drizzleMigrate(drizzle({ client }), { migrationsFolder: folder, ...journal });
        } finally {
          await client.query("SELECT pg_advisory_unlock($1, hashtext($2))", lockKey);
        }
      } catch (error) {
        // Destroy rather than reuse the connection: it may still hold the lock
        // or sit in an aborted transaction. Closing it releases both.
        broken = error instanceof Error ? error : new Error(String(error));
        throw error;
      } finally {
        client.release(broken);
      }
    },

    listen: (channel, onNotify, options) => listener.listen(channel, onNotify, options),

    async ping() {
      await pool.query("SELECT 1");
    },

    async close() {
      await listener.close();
      await pool.end();
    },
  };
}

/**
 * pg.Pool's own `query` (what drizzle runs every statement outside a
 * transaction through) releases its client with the statement's error, and
 * the pool closes a client released with an error. So every statement the
 * server refused (a unique violation a store answers as "already there",
 * such as a retried chat send meeting its idempotency key) cost a
 * new connection: TCP connect, startup and SCRAM authentication in the
 * service, a backend fork in PostgreSQL (a profile of the chat bench on a
 * saturated machine, groups of 10 at 300 messages/s, had 2.8 % of the chat
 * process's CPU in connect alone). A statement error the server reported
 * leaves an autocommitted connection ready for the next one, so only errors
 * of the connection itself (no SQLSTATE: a dropped socket, a timeout) or a
 * FATAL one discard it; the pool still drops a client whose socket has ended.
 */
function keepConnectionsOnStatementErrors(pool: pg.Pool): void {
  const query = async (text: string | pg.QueryConfig, values?: unknown[]): Promise<pg.QueryResult> => {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      return await client.query(text, values);
    } catch (error) {
      broken = error instanceof pg.DatabaseError && error.severity !== "FATAL" && error.severity !== "PANIC" ? undefined : (error as Error);
      throw error;
    } finally {
      client.release(broken);
    }
  };
  // Drizzle and ping call the promise form only (text or config, values).
  pool.query = query as typeof pool.query;
}

/** libpq's `options` splits on whitespace; a backslash keeps it literal. */
function escapeOption(value: string): string {
  return value.replace(/[\\\s]/g, (c) => `\\${c}`);
}
