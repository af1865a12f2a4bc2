// The list's cursor: the seq of the last group shown (groups are ordered by
// their newest notification's seq, unique per user), bound to the kinds the
// page was listed with, so a token cannot be replayed under another filter.
export interface ListCursor {
  /** Groups strictly older than this seq come next. */
  beforeSeq: number;
  /** The requested kinds, sorted and joined ("" = all). */
  kinds: string;
}

export function cursorPayload(cursor: ListCursor): object {
  return { s: cursor.beforeSeq, k: cursor.kinds };
}

export function parseCursor(value: unknown): ListCursor {
  if (typeof value !== "object" || value === null) throw new Error("cursor is not an object");
  const { s, k } = value as { s?: unknown; k?: unknown };
  if (typeof s !== "number" || !Number.isSafeInteger(s) || s < 1 || typeof k !== "string") throw new Error("cursor has the wrong shape");
  return { beforeSeq: s, kinds: k };
}
