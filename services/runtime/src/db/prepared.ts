// Prepared statements for hot read paths. drizzle builds a query's SQL on
// every call (walking its column and condition objects), which profiles
// showed as a large share of a read handler's database-client CPU; a
// prepared query is built once, and PostgreSQL parses it once per connection.
// A statement belongs to the database handle it was prepared on, so a
// service keeps one set per handle (`perDatabase`). Values go in as
// `sql.placeholder`s; id lists as one array parameter (`idArray`), so a
// statement's text never depends on how many ids a call has.
import type { SQL } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import type { Db } from "./database.ts";
import { rowsOf } from "./rows.ts";

/** `prepare(db)` once per database handle, on first use. */
export function perDatabase<T extends object>(prepare: (db: Db) => T): (db: Db) => T {
  const byDb = new WeakMap<Db, T>();
  return (db) => {
    let statements = byDb.get(db);
    if (statements === undefined) {
      statements = prepare(db);
      byDb.set(db, statements);
    }
    return statements;
  };
}

/**
 * An id list as one array parameter, in PostgreSQL's array literal form
 * (node-postgres and PGlite both pass it as text): cast it in the statement,
 * `= any(${sql.placeholder("ids")}::uuid[])`. Only for ids already validated
 * (uuids): the literal is not escaped, and a stray comma or brace makes the
 * cast fail rather than match anything else.
 */
export function idArray(ids: readonly string[]): string {
  return `{${ids.join(",")}}`;
}

/**
 * A list of strings as one array parameter (PostgreSQL's array literal, each
 * element quoted, `"` and `\` escaped), for `::text[]`: any text goes in as
 * itself, commas and braces included.
 */
export function textArray(items: readonly string[]): string {
  return `{${items.map((item) => `"${item.replace(/["\\]/g, (c) => `\\${c}`)}"`).join(",")}}`;
}

/** A statement prepared by preparedSql: `execute` fills its placeholders and answers its rows. */
export interface PreparedSql {
  execute(values: Record<string, unknown>): Promise<Array<Record<string, unknown>>>;
}

// The services' drizzle handles use no casing option, so a plain dialect renders as theirs do.
const dialect = new PgDialect();

/**
 * A statement drizzle's builders cannot express, prepared as their
 * `.prepare(name)` would be: data-modifying CTEs feeding one SELECT (what
 * `db.execute(sql…)` runs, built and parsed on every call). Built once; with
 * node-postgres a named statement, parsed and planned once per connection.
 * Only on the database handle itself, not in a transaction: it runs on the
 * handle's own session.
 */
export function preparedSql(db: Db, name: string, statement: SQL): PreparedSql {
  const prepared = db._.session.prepareQuery(dialect.sqlToQuery(statement), undefined, name, false);
  return { execute: async (values) => rowsOf(await prepared.execute(values)) };
}
