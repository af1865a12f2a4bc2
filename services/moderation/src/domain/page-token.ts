// The ListReports cursor: the last row's sort key (created_at, id) and the
// filters it was made for, so a token cannot be replayed under other filters.
import { isUuid } from "@aviary/runtime/validation";

export interface ReportCursor {
  readonly atMs: number;
  readonly id: string;
  /** The filters, as "status/kind" ("open/" for every kind). */
  readonly filters: string;
}

export function cursorPayload(cursor: ReportCursor): object {
  return { t: cursor.atMs, r: cursor.id, f: cursor.filters };
}

/** Throws on any other shape (the page token port turns that into INVALID_ARGUMENT on page_token). */
export function parseCursor(value: unknown): ReportCursor {
  if (typeof value !== "object" || value === null) throw new Error("not an object");
  const { t, r, f } = value as { t?: unknown; r?: unknown; f?: unknown };
  if (typeof t !== "number" || !Number.isSafeInteger(t) || typeof r !== "string" || !isUuid(r) || typeof f !== "string") throw new Error("bad cursor");
  return { atMs: t, id: r, filters: f };
}
