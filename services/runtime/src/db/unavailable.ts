// Errors that say the database cannot be reached right now (the pool timed
// out waiting for a connection, the server refused or dropped it, it is
// shutting down or full) rather than that the request or the code is wrong.
// Callers get UNAVAILABLE for these, which clients retry, not INTERNAL.

/** Node socket errors of a connection that could not be made or was lost. */
const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);

/** Whether a Node error code is one of those (also used by the event bus for every client, not only the database's). */
export function isNetworkErrorCode(code: string): boolean {
  return NETWORK_CODES.has(code);
}

/** SQLSTATEs: class 08 (connection exception), 57P01–57P03 (shutting down, cannot connect now), 53300 (too many connections). */
function unavailableSqlState(code: string): boolean {
  return code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03" || code === "53300";
}

/**
 * node-postgres' own words for a pool checkout that timed out, a connection
 * that died mid-query, and a checked-out one that died between statements
 * (the rest of that transaction, its rollback included, then fails this way).
 */
const POOL_MESSAGES = /timeout exceeded when trying to connect|Connection terminated (unexpectedly|due to connection timeout)|Client has encountered a connection error and is not queryable/;

/** Walks the cause chain (drizzle wraps driver errors) looking for one of the above. */
export function isDatabaseUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 8; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && (NETWORK_CODES.has(code) || unavailableSqlState(code))) return true;
    if (POOL_MESSAGES.test(current.message)) return true;
    current = current.cause;
  }
  return false;
}
