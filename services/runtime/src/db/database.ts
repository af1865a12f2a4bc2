import type { PgDatabase, PgQueryResultHKT, PgTransaction } from "drizzle-orm/pg-core";
import type { ExtractTablesWithRelations } from "drizzle-orm";

/**
 * A drizzle handle that works the same over node-postgres (real PostgreSQL)
 * and PGlite (embedded). Services write their queries against this type only,
 * so the adapter is chosen by configuration, never by code.
 */
export type Db = PgDatabase<PgQueryResultHKT, Record<string, never>, ExtractTablesWithRelations<Record<string, never>>>;

/** A transaction handle, as passed to `db.transaction(async (tx) => …)`. */
export type Tx = PgTransaction<PgQueryResultHKT, Record<string, never>, ExtractTablesWithRelations<Record<string, never>>>;

/** Either a database handle or an open transaction. */
export type Queryable = Db | Tx;

/** Where drizzle's migration journal lives; defaults match drizzle's own. */
export interface MigrateOptions {
  /**
   * Schema of the journal table (default "drizzle"). It is created if missing,
   * so a service's first migration must say `CREATE SCHEMA IF NOT EXISTS` for
   * this schema: drizzle-kit emits a bare `CREATE SCHEMA`, edit it once.
   */
  schema?: string;
  /** Journal table name (default "__drizzle_migrations"). */
  table?: string;
}

export interface ListenOptions {
  /**
   * Told when notifications stop being reliable and when they are again:
   * `false` when the connection that listens was lost (what is notified
   * meanwhile never arrives), `true` once it listens again. A caller that
   * keeps what notifications invalidate stops trusting it at the first and
   * starts afresh at the second. (The embedded adapter never loses its
   * connection, so it never calls this.)
   */
  onListening?: (listening: boolean) => void;
}

/** The database port: one per service process. */
export interface Database {
  readonly db: Db;
  /** "postgres" for node-postgres, "pglite" for the embedded adapter. */
  readonly kind: "postgres" | "pglite";
  /**
   * Applies the drizzle-kit migrations in `folder` (idempotent, serialised across
   * processes). `options.schema` keeps drizzle's journal table in the service's
   * own schema instead of the shared `drizzle` schema.
   */
  migrate(folder: string, options?: MigrateOptions): Promise<void>;
  /**
   * LISTENs on `channel` and calls `onNotify` with each NOTIFY payload.
   * Resolves once listening; the returned function stops listening.
   */
  listen(channel: string, onNotify: (payload: string) => void, options?: ListenOptions): Promise<() => Promise<void>>;
  /** Throws when the database cannot answer (used by /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
