// "Nothing left behind": every place a deleted account's id could still be,
// looked up rather than listed by hand, so a table or column added later is
// scanned without anyone remembering to. In each database: every column of
// every table outside the system schemas whose type can hold the id as a
// value or inside text — uuid, text and varchar, json and jsonb, arrays of
// those, bytea (protobuf payloads) — compared as text, so an id inside a
// direct-conversation key, an object key or a JSON document counts too. In
// each bucket: every object whose key contains it. A test asserts the list
// is empty for the deleted user and not empty for a user who stays (so the
// scan demonstrably finds what is there).
import { ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { sql } from "drizzle-orm";
import type { Database } from "../src/db/database.ts";
import { rowsOf } from "../src/db/rows.ts";

/**
 * Where an id is allowed to stay, and why:
 * - `outbox_events` (every schema): the events that announced the changes,
 *   published and then pruned after the relay's retention (an hour); Kafka's
 *   own retention is the same kind of record.
 * - `auth.account_deletions`: the tombstone that makes a purge happen once
 *   (the user id and three times, nothing personal).
 */
export const allowedToRetain: ReadonlyArray<{ schema?: string; table: string }> = [{ table: "outbox_events" }, { schema: "auth", table: "account_deletions" }];

const searchable = new Set(["uuid", "text", "varchar", "bpchar", "json", "jsonb", "bytea", "_uuid", "_text", "_varchar"]);

interface Column {
  schema: string;
  table: string;
  column: string;
  udt: string;
}

const quoted = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** Every `schema.table.column: n rows` (and `s3://bucket/key`) that still holds `userId`. */
export async function findLeftovers(options: { databases: readonly Database[]; userId: string; buckets?: ReadonlyArray<{ s3: S3Client; bucket: string }> }): Promise<string[]> {
  // Spliced into LIKE patterns below: only a UUID, so nothing in it can be a wildcard or a quote.
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(options.userId)) throw new Error(`not a user id: ${options.userId}`);
  const needle = options.userId.toLowerCase();
  const found: string[] = [];
  for (const database of options.databases) {
    const columns = rowsOf(
      await database.db.execute(sql`
        select c.table_schema as schema, c.table_name as table, c.column_name as column, c.udt_name as udt
        from information_schema.columns c
        join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name and t.table_type = 'BASE TABLE'
        where c.table_schema not in ('pg_catalog', 'information_schema') and c.table_schema not like 'pg\\_%'
        order by 1, 2, 3`),
    ) as unknown as Column[];
    for (const column of columns) {
      if (!searchable.has(column.udt)) continue;
      if (allowedToRetain.some((a) => a.table === column.table && (a.schema === undefined || a.schema === column.schema))) continue;
      const ref = `${quoted(column.schema)}.${quoted(column.table)}`;
      const value = column.udt === "bytea" ? `encode(${quoted(column.column)}, 'escape')` : `${quoted(column.column)}::text`;
      const [row] = rowsOf(await database.db.execute(sql.raw(`select count(*)::int as n from ${ref} where lower(${value}) like '%${needle}%'`)));
      const n = Number(row?.["n"] ?? 0);
      if (n > 0) found.push(`${column.schema}.${column.table}.${column.column}: ${n} rows`);
    }
  }
  for (const { s3, bucket } of options.buckets ?? []) {
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ...(token ? { ContinuationToken: token } : {}) }));
      for (const object of page.Contents ?? []) if (object.Key?.toLowerCase().includes(needle)) found.push(`s3://${bucket}/${object.Key}`);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }
  return found;
}
