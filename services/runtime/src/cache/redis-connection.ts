// Connection settings and helpers every Redis client of the runtime uses
// (the cache, its subscriber, the realtime streams).
import { Redis, type RedisOptions } from "ioredis";
import type { LogSink } from "../bus/log-sink.ts";

/** How long a connection and a command may take, and how many reconnects a queued command waits through. */
export interface ConnectionBudget {
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  maxRetriesPerRequest?: number;
}

/**
 * Redis must never make a request hang: the connection is opened on first use,
 * reconnects forever in the background with capped backoff, but each command
 * fails after one reconnect attempt or 2 s. Cache callers treat a failure as
 * a miss (the cache only holds what can be lost and rebuilt); the realtime
 * streams, for which Redis is the store, give it a larger budget.
 */
export function connectionOptions(options: ConnectionBudget = {}): RedisOptions {
  return {
    lazyConnect: true,
    // Commands issued in one event-loop turn go out in one write (and one
    // pipeline): concurrent requests each asking Redis something (the
    // revocation check, a timeline page) share a syscall instead of paying
    // one each, which under load was a tenth of a cached read's CPU.
    // Replies and errors stay per command.
    enableAutoPipelining: true,
    connectTimeout: options.connectTimeoutMs ?? 2_000,
    commandTimeout: options.commandTimeoutMs ?? 2_000,
    maxRetriesPerRequest: options.maxRetriesPerRequest ?? 1,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  };
}

/** QUIT lets pending replies arrive; a connection never opened (lazy) just drops. */
export async function closeConnection(connection: Redis): Promise<void> {
  if (connection.status === "wait" || connection.status === "end") {
    connection.disconnect();
    return;
  }
  await connection.quit().catch(() => connection.disconnect());
}

/**
 * ioredis emits an error for every failed reconnect attempt; while Redis is
 * down that is one every 2 s per connection. Log the first, then the recovery.
 */
export function reportOutages(connection: Redis, name: string, log: LogSink): void {
  let down = false;
  connection.on("error", (error: Error) => {
    if (down) return;
    down = true;
    log.warn({ err: error }, `${name} connection failed; retrying in the background`);
  });
  connection.on("ready", () => {
    if (!down) return;
    down = false;
    log.warn({}, `${name} connection restored`);
  });
}

/**
 * Ids as one comma-joined script argument, for scripts that act on many
 * users and build each user's key names themselves (the realtime signal, the
 * feed's fan-out): one argument costs a fraction of one per key to encode.
 * An id with a comma (never a UUID) would be split, so it is refused.
 */
export function packIds(ids: readonly string[]): string {
  for (const id of ids) if (id === "" || id.includes(",")) throw new Error(`id ${JSON.stringify(id)} cannot be packed into a script argument`);
  return ids.join(",");
}
