/**
 * The rows of a raw `execute(sql…)` result. node-postgres and PGlite both
 * answer `{ rows }`, but drizzle types the result per driver, so code written
 * against the shared Db type reads it through here.
 */
export function rowsOf(result: unknown): Array<Record<string, unknown>> {
  if (typeof result === "object" && result !== null && "rows" in result && Array.isArray(result.rows)) return result.rows;
  throw new TypeError("unexpected raw query result");
}
