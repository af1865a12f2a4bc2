import { and, asc, eq, gt, ne, or } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import type { StoredTarget, TargetKindName } from "../domain/targets.ts";
import { reports } from "./schema.ts";

export type ReportRow = typeof reports.$inferSelect;
export type ReportStatusName = "open" | "actioned" | "dismissed";

export async function findReport(db: Queryable, id: string, options: { lock?: boolean } = {}): Promise<ReportRow | undefined> {
  const query = db.select().from(reports).where(eq(reports.id, id)).limit(1);
  const rows = options.lock === true ? await query.for("update") : await query;
  return rows[0];
}

export async function findOpenReport(db: Queryable, reporterId: string, target: StoredTarget): Promise<ReportRow | undefined> {
  const rows = await db
    .select()
    .from(reports)
    .where(and(eq(reports.reporterId, reporterId), eq(reports.targetKind, target.kind), eq(reports.targetId, target.id), eq(reports.status, "open")))
    .limit(1);
  return rows[0];
}

/** Inserts an open report; resolves to it, or undefined when the reporter already has one open on the target. */
export async function insertReport(db: Queryable, row: ReportRow): Promise<ReportRow | undefined> {
  const inserted = await db.insert(reports).values(row).onConflictDoNothing().returning();
  return inserted[0];
}

/** Closes every open report on the target except `except` with the same resolution; resolves to them. */
export function closeOpenReportsOn(
  db: Queryable,
  target: StoredTarget,
  except: string,
  resolution: Pick<ReportRow, "status" | "resolution" | "resolvedBy" | "resolutionNote" | "resolvedAt">,
): Promise<ReportRow[]> {
  return db
    .update(reports)
    .set(resolution)
    .where(and(eq(reports.targetKind, target.kind), eq(reports.targetId, target.id), eq(reports.status, "open"), ne(reports.id, except)))
    .returning();
}

export async function closeReport(
  db: Queryable,
  id: string,
  resolution: Pick<ReportRow, "status" | "resolution" | "resolvedBy" | "resolutionNote" | "resolvedAt">,
): Promise<ReportRow> {
  const rows = await db.update(reports).set(resolution).where(eq(reports.id, id)).returning();
  return rows[0]!;
}

/** One page of the queue, oldest first, keyset-paged on (created_at, id). */
export async function reportPage(
  db: Queryable,
  filter: { status: ReportStatusName; kind: TargetKindName | undefined },
  size: number,
  after: { atMs: number; id: string } | undefined,
): Promise<{ rows: ReportRow[]; next: { atMs: number; id: string } | undefined }> {
  const filters = and(eq(reports.status, filter.status), filter.kind === undefined ? undefined : eq(reports.targetKind, filter.kind));
  const afterCursor =
    after === undefined ? undefined : or(gt(reports.createdAt, new Date(after.atMs)), and(eq(reports.createdAt, new Date(after.atMs)), gt(reports.id, after.id)));
  const rows = await db
    .select()
    .from(reports)
    .where(afterCursor === undefined ? filters : and(filters, afterCursor))
    .orderBy(asc(reports.createdAt), asc(reports.id))
    .limit(size + 1);
  const page = rows.slice(0, size);
  const last = page.at(-1);
  return { rows: page, next: rows.length > size && last ? { atMs: last.createdAt.getTime(), id: last.id } : undefined };
}
