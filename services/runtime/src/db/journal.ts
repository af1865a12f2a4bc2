import type { MigrateOptions } from "./database.ts";

/** drizzle's migrator config keys for where the journal table lives. */
export function journalLocation(options: MigrateOptions | undefined): {
  migrationsSchema: string;
  migrationsTable: string;
} {
  return {
    migrationsSchema: options?.schema ?? "drizzle",
    migrationsTable: options?.table ?? "__drizzle_migrations",
  };
}
