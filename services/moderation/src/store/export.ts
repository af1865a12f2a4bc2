// The reports one user filed, page by page, for ExportUserReports. Keyset
// order is the report id (unique). Reports about the user are not theirs and
// are never read here.
import { and, asc, eq, gt } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import type { ReportRow } from "./reports.ts";
import { reports } from "./schema.ts";

export function filedReportsPage(db: Queryable, reporterId: string, after: ReportRow | undefined, limit: number): Promise<ReportRow[]> {
  return db
    .select()
    .from(reports)
    .where(and(eq(reports.reporterId, reporterId), after ? gt(reports.id, after.id) : undefined))
    .orderBy(asc(reports.id))
    .limit(limit);
}
