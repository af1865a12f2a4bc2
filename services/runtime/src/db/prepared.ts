// Prepared statements for hot read paths. drizzle builds a query's SQL on
// every call (walking its column and condition objects), which profiles
// showed as a large share of a read handler's database-client CPU; a
// prepared query is built once, and PostgreSQL parses it once per connection.
// A statement belongs to the database handle it was prepared on, so a
// service keeps one set per handle (`perDatabase`). Values go in as
// `sql.placeholder`s; id lists as one array parameter (`idArray`), so a
// statement's text never depends on how many ids a call has.
import type { Db } from "./database.ts";

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
