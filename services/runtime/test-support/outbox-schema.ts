import { sql } from "drizzle-orm";
import { pgSchema } from "drizzle-orm/pg-core";
import { generateDrizzleJson, generateMigration } from "drizzle-kit/api";
import type { Database } from "../src/db/database.ts";
import { outboxTables, type OutboxTables } from "../src/outbox/tables.ts";

/**
 * Creates a schema holding the outbox tables, with the DDL drizzle-kit
 * generates from `outboxTables` — the same path a service's migrations take,
 * so a table definition drizzle-kit cannot handle fails here first.
 */
export async function createOutboxSchema(database: Database, schemaName: string): Promise<OutboxTables> {
  const schema = pgSchema(schemaName);
  const tables = outboxTables(schema);
  const statements = await generateMigration(generateDrizzleJson({}), generateDrizzleJson({ schema, ...tables }));
  for (const statement of statements) await database.db.execute(sql.raw(statement));
  return tables;
}
