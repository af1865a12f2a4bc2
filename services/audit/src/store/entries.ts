// Appending to the chain and reading it. Appends are serialised by one
// transaction-scoped advisory lock: the writer reads the last entry and links
// the new ones to it while no other writer can, so the chain stays linear
// with any number of consumer instances or partitions handled at once.
import { and, asc, desc, eq, gt, gte, inArray, lt, sql, type SQL } from "drizzle-orm";
import type { Database, Queryable } from "@aviary/runtime/db/database";
import { chain, type ChainedEntry, type EntryFields } from "../domain/chain.ts";
import { entries } from "./schema.ts";

export type EntryRow = typeof entries.$inferSelect;

const INSERT_SLICE = 1_000;

/** The chain's lock: appends (and erasures) hold it until their transaction ends. */
export async function lockChain(tx: Queryable): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended('audit.entries', 0))`);
}

export function chainedOf(row: EntryRow): ChainedEntry {
  return {
    ...row,
    actorId: row.actorId ?? undefined,
    actorSalt: row.actorSalt ?? undefined,
    actorDigest: row.actorDigest ?? undefined,
    subject: row.subject ?? undefined,
    subjectSalt: row.subjectSalt ?? undefined,
    subjectDigest: row.subjectDigest ?? undefined,
    detailsSalts: row.detailsSalts ?? undefined,
    detailsDigests: row.detailsDigests ?? undefined,
    erasedAt: row.erasedAt ?? undefined,
  };
}

/** The row an entry is stored as (undefined fields as nulls). */
export function rowOf(entry: ChainedEntry): EntryRow {
  return {
    ...entry,
    actorId: entry.actorId ?? null,
    actorSalt: entry.actorSalt ?? null,
    actorDigest: entry.actorDigest ?? null,
    subject: entry.subject ?? null,
    subjectSalt: entry.subjectSalt ?? null,
    subjectDigest: entry.subjectDigest ?? null,
    details: { ...entry.details },
    detailsSalts: entry.detailsSalts === undefined ? null : { ...entry.detailsSalts },
    detailsDigests: entry.detailsDigests === undefined ? null : { ...entry.detailsDigests },
    erasedAt: entry.erasedAt ?? null,
  };
}

/**
 * Appends `items` in order, skipping any whose source event is already
 * recorded (a redelivery or replay appends nothing). Returns how many were
 * appended.
 */
export async function appendEntries(database: Database, items: readonly EntryFields[]): Promise<number> {
  if (items.length === 0) return 0;
  return database.db.transaction(async (tx) => {
    await lockChain(tx);
    const ids = [...new Set(items.map((item) => item.sourceEventId))];
    const seen = new Set<string>();
    for (let i = 0; i < ids.length; i += INSERT_SLICE) {
      const slice = ids.slice(i, i + INSERT_SLICE);
      for (const row of await tx.select({ id: entries.sourceEventId }).from(entries).where(inArray(entries.sourceEventId, slice))) seen.add(row.id);
    }
    const [last] = await tx.select({ seq: entries.seq, hash: entries.hash }).from(entries).orderBy(desc(entries.seq)).limit(1);
    let previous = last;
    const rows: ChainedEntry[] = [];
    for (const item of items) {
      if (seen.has(item.sourceEventId)) continue;
      seen.add(item.sourceEventId);
      const entry = chain(previous, item);
      rows.push(entry);
      previous = entry;
    }
    // In slices: one INSERT may carry at most 65,535 parameters (17 a row).
    for (let i = 0; i < rows.length; i += INSERT_SLICE) {
      await tx.insert(entries).values(rows.slice(i, i + INSERT_SLICE).map(rowOf));
    }
    return rows.length;
  });
}

export interface EntryFilters {
  readonly actorId?: string | undefined;
  readonly subject?: string | undefined;
  readonly kind?: string | undefined;
  readonly since?: Date | undefined;
  readonly until?: Date | undefined;
}

/** Newest first (by seq); `beforeSeq` is the cursor. */
export async function entryPage(db: Queryable, filters: EntryFilters, size: number, beforeSeq: number | undefined): Promise<{ rows: EntryRow[]; next: number | undefined }> {
  const where: SQL[] = [];
  if (filters.actorId !== undefined) where.push(eq(entries.actorId, filters.actorId));
  if (filters.subject !== undefined) where.push(eq(entries.subject, filters.subject));
  if (filters.kind !== undefined) where.push(eq(entries.kind, filters.kind));
  if (filters.since !== undefined) where.push(gte(entries.occurredAt, filters.since));
  if (filters.until !== undefined) where.push(lt(entries.occurredAt, filters.until));
  if (beforeSeq !== undefined) where.push(lt(entries.seq, beforeSeq));
  const rows = await db
    .select()
    .from(entries)
    .where(and(...where))
    .orderBy(desc(entries.seq))
    .limit(size + 1);
  const page = rows.slice(0, size);
  return { rows: page, next: rows.length > size ? page.at(-1)?.seq : undefined };
}

/** Entries after `afterSeq`, in chain order. */
export async function entriesAfter(db: Queryable, afterSeq: number, limit: number): Promise<ChainedEntry[]> {
  const rows = await db.select().from(entries).where(gt(entries.seq, afterSeq)).orderBy(asc(entries.seq)).limit(limit);
  return rows.map(chainedOf);
}

export async function entryAt(db: Queryable, seq: number): Promise<{ seq: number; hash: string } | undefined> {
  return (await db.select({ seq: entries.seq, hash: entries.hash }).from(entries).where(eq(entries.seq, seq)).limit(1))[0];
}
