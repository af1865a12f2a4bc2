import { PGlite } from "@electric-sql/pglite";
import { drizzle } from "drizzle-orm/pglite";
import { migrate as drizzleMigrate } from "drizzle-orm/pglite/migrator";
import type { Database, Db, MigrateOptions } from "./database.ts";
import { journalLocation } from "./journal.ts";

export interface PgliteOptions {
  /** A directory to persist into; in memory when omitted. */
  dataDir?: string;
  searchPath?: string;
}

/**
 * Embedded PostgreSQL (WASM) for `make dev` and unit tests. It is a single
 * connection: a transaction blocks every other query of the process until it
 * ends, which is fine for one developer and the reason it is not for prod.
 */
export async function openPglite(options: PgliteOptions = {}): Promise<Database> {
  const client = await PGlite.create(options.dataDir ? { dataDir: options.dataDir } : {});
  if (options.searchPath) {
    // One connection, so a session-level setting covers every later query.
    await client.query("SELECT set_config('search_path', $1, false)", [options.searchPath]);
  }
  const db: Db = drizzle({ client });
  // Only this process can open the data dir, so an in-process queue is all
  // the serialisation migrations need.
  let migrations: Promise<void> = Promise.resolve();

  return {
    db,
    kind: "pglite",

    migrate(folder: string, migrateOptions?: MigrateOptions) {
      const run = migrations.then(() =>
        drizzleMigrate(drizzle({ client }), { migrationsFolder: folder, ...journalLocation(migrateOptions) }),
      );
      migrations = run.catch(() => undefined);
      return run;
    },

    async listen(channel, onNotify) {
      // PGlite splices the channel into `LISTEN <channel>` verbatim, so quote
      // it: channel names stay case-sensitive, exactly as on real Postgres.
      const quoted = quoteIdentifier(channel);
      // A closure of our own, so two listens of one function stay distinct.
      const callback = (payload: string) => onNotify(payload);
      await client.listen(quoted, callback);
      // Not the function listen() returns: PGlite 0.5 passes the unquoted
      // name on to UNLISTEN, which folds its case and misses the channel.
      return () => client.unlisten(quoted, callback);
    },

    async ping() {
      await client.query("SELECT 1");
    },

    async close() {
      await client.close();
    },
  };
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
