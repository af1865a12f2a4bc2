// The ListConversations cursor: the last row's sort key (last_activity_at, id).
// Times are written from JS Dates, so millisecond precision is exact.
import { isUuid } from "@aviary/runtime/validation";

export interface ConversationCursor {
  readonly atMs: number;
  readonly id: string;
}

export function cursorPayload(cursor: ConversationCursor): object {
  return { t: cursor.atMs, c: cursor.id };
}

/** Throws on any other shape (the page token port turns that into INVALID_ARGUMENT on page_token). */
export function parseCursor(value: unknown): ConversationCursor {
  if (typeof value !== "object" || value === null) throw new Error("not an object");
  const { t, c } = value as { t?: unknown; c?: unknown };
  if (typeof t !== "number" || !Number.isSafeInteger(t) || typeof c !== "string" || !isUuid(c)) throw new Error("bad cursor");
  return { atMs: t, id: c };
}
