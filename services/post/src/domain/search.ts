// What a search query means: its #hashtags (all must match, as the post
// service stores them: lower-cased, without the #) and the rest, the words,
// which PostgreSQL's websearch_to_tsquery reads ("quoted phrases", or, -word).
import { invalidArgument } from "@aviary/runtime/errors";
import { isUuid } from "@aviary/runtime/validation";
import { parseHashtags } from "./text.ts";

export interface SearchQuery {
  /** The words, for websearch_to_tsquery('simple', …); "" for hashtags only. */
  readonly words: string;
  readonly hashtags: readonly string[];
}

export const MAX_QUERY_HASHTAGS = 10;

/** Splits on whitespace: a token starting with # is a hashtag (or a field error), anything else a word. */
export function parseSearchQuery(query: string): SearchQuery {
  const words: string[] = [];
  const hashtags: string[] = [];
  for (const token of query.trim().split(/\s+/u).filter((t) => t !== "")) {
    if (!token.startsWith("#")) {
      words.push(token);
      continue;
    }
    const [tag] = parseHashtags(token);
    if (tag === undefined || `#${tag}` !== token.toLowerCase()) {
      throw invalidArgument([{ field: "query", description: `${token} is not a hashtag`, reason: "HASHTAG" }]);
    }
    if (!hashtags.includes(tag)) hashtags.push(tag);
  }
  if (words.length === 0 && hashtags.length === 0) throw invalidArgument([{ field: "query", description: "must have a word or a hashtag", reason: "REQUIRED" }]);
  if (hashtags.length > MAX_QUERY_HASHTAGS) throw invalidArgument([{ field: "query", description: `at most ${MAX_QUERY_HASHTAGS} hashtags`, reason: "MAX_ITEMS" }]);
  return { words: words.join(" "), hashtags };
}

export type SearchOrderName = "newest" | "best";

/** Where the last page ended: its last row's sort key, and the query and order it was made for. */
export interface SearchCursor {
  readonly rank: number;
  readonly createdAt: string;
  readonly id: string;
  /** The normalised query and order ("best\u0000words\u0000tag,tag"). */
  readonly of: string;
}

export function searchKey(query: SearchQuery, order: SearchOrderName): string {
  return [order, query.words, query.hashtags.join(",")].join("\u0000");
}

export function parseSearchCursor(value: unknown, of: string): SearchCursor {
  if (typeof value !== "object" || value === null) throw new Error("not an object");
  const { r, t, i, q } = value as { r?: unknown; t?: unknown; i?: unknown; q?: unknown };
  if (typeof r !== "number" || !Number.isFinite(r) || typeof t !== "string" || Number.isNaN(Date.parse(t)) || typeof i !== "string" || !isUuid(i) || q !== of) throw new Error("bad cursor");
  return { rank: r, createdAt: t, id: i, of };
}

export function searchCursorPayload(cursor: SearchCursor): object {
  return { r: cursor.rank, t: cursor.createdAt, i: cursor.id, q: cursor.of };
}
