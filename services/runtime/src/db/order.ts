import { sql, type AnyColumn, type SQL } from "drizzle-orm";

/**
 * `ORDER BY column DESC NULLS LAST`: the order drizzle-kit builds `.desc()`
 * index columns in. drizzle's `desc()` renders plain `DESC`, which PostgreSQL
 * reads as NULLS FIRST, and then cannot walk such an index for a keyset page —
 * it sorts the whole set instead (measured: 104 ms instead of 0.5 ms for a
 * page of 100 out of 100k followers).
 */
export function newestFirst(column: AnyColumn | SQL.Aliased | SQL): SQL {
  return sql`${column} desc nulls last`;
}
