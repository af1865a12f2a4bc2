// Rows → aviary.audit.v1 messages, and the ListAuditEntries cursor.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AuditEntrySchema, type AuditEntry } from "@aviary/gen/aviary/audit/v1/audit_pb";
import type { EntryRow } from "../store/entries.ts";

export function presentEntry(row: EntryRow): AuditEntry {
  return create(AuditEntrySchema, {
    seq: BigInt(row.seq),
    occurredAt: timestampFromDate(row.occurredAt),
    kind: row.kind,
    actorId: row.actorId ?? "",
    subject: row.subject ?? "",
    details: row.details,
    sourceEventId: row.sourceEventId,
    prevHash: row.prevHash,
    hash: row.hash,
  });
}

/** The last entry's seq and the filters the token was made for (a token is refused under others). */
export interface EntryCursor {
  readonly beforeSeq: number;
  readonly filters: string;
}

export function cursorPayload(cursor: EntryCursor): object {
  return { s: cursor.beforeSeq, f: cursor.filters };
}

/** Throws on any other shape (the page token port turns that into INVALID_ARGUMENT on page_token). */
export function parseCursor(value: unknown): EntryCursor {
  if (typeof value !== "object" || value === null) throw new Error("not an object");
  const { s, f } = value as { s?: unknown; f?: unknown };
  if (typeof s !== "number" || !Number.isSafeInteger(s) || s < 1 || typeof f !== "string") throw new Error("bad cursor");
  return { beforeSeq: s, filters: f };
}
