import type { TimelineCursor } from "../store/timelines.ts";

/**
 * What a GetHomeFeed page token carries (inside the signed envelope of the
 * runtime's page tokens): the last item's keyset position.
 */
export function cursorPayload(cursor: TimelineCursor): { s: number; p: string } {
  return { s: cursor.score, p: cursor.postId };
}

/** Checks the decoded JSON's shape; throwing makes the runtime answer INVALID_ARGUMENT on page_token. */
export function parseCursor(value: unknown): TimelineCursor {
  if (typeof value !== "object" || value === null) throw new Error("not an object");
  const { s, p } = value as Record<string, unknown>;
  if (typeof s !== "number" || !Number.isSafeInteger(s) || s <= 0) throw new Error("bad score");
  if (typeof p !== "string" || !/^[0-9a-f-]{36}$/.test(p)) throw new Error("bad post id");
  return { score: s, postId: p };
}
