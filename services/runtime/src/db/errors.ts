/**
 * The SQLSTATE and constraint of a database error from node-postgres or
 * PGlite, possibly wrapped by drizzle (as its `cause`); undefined for any
 * other error. For callers that act on an expected conflict (a unique
 * violation) instead of failing.
 */
export function databaseErrorOf(error: unknown): { code: string; constraint: string | undefined } | undefined {
  for (let e: unknown = error; typeof e === "object" && e !== null; e = (e as { cause?: unknown }).cause) {
    const { code, constraint } = e as { code?: unknown; constraint?: unknown };
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return { code, constraint: typeof constraint === "string" ? constraint : undefined };
  }
  return undefined;
}
