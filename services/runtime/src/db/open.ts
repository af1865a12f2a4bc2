import type { Database } from "./database.ts";
import type { LogSink } from "../bus/log-sink.ts";

export interface OpenDatabaseOptions {
  /** A postgres:// URL selects real PostgreSQL; without it, embedded PGlite. */
  url?: string;
  /** PGlite only: persist here instead of in memory. */
  dataDir?: string;
  /** Postgres only: pool size. */
  poolMax?: number;
  searchPath?: string;
  logger?: LogSink;
}

/**
 * The adapter is chosen by configuration. Each is imported lazily so a
 * production process never loads the PGlite WASM, nor `make dev` the pool.
 */
export async function openDatabase(options: OpenDatabaseOptions = {}): Promise<Database> {
  if (options.url) {
    const { openPostgres } = await import("./postgres.ts");
    return openPostgres({
      url: options.url,
      ...(options.poolMax !== undefined ? { poolMax: options.poolMax } : {}),
      ...(options.searchPath !== undefined ? { searchPath: options.searchPath } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
  }
  const { openPglite } = await import("./pglite.ts");
  return openPglite({
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    ...(options.searchPath !== undefined ? { searchPath: options.searchPath } : {}),
  });
}
