// Post search in PostgreSQL: full text with the language-neutral `simple`
// configuration (no stemming, no stop words, so it works alike for every
// language) over an expression GIN index on the live posts' text, and the
// hashtag array's GIN index. The skeleton step of the search read: rows
// only; deleted and removed posts and suspended authors are left out here,
// so pages stay full; blocks are the read pipeline's (they depend on the
// viewer and live in the user service).
import { and, getTableColumns, inArray, isNull, sql, type SQL } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import { newestFirst } from "@aviary/runtime/db/order";
import type { SearchCursor, SearchOrderName, SearchQuery } from "../domain/search.ts";
import { moderatedContent, moderatedUsers, postItems } from "./schema.ts";
import type { PostRow } from "./posts.ts";

/** The same expression as the index posts_text_search_idx, so the planner uses it. */
const document = sql`to_tsvector('simple', ${postItems.text})`;

/**
 * Best match ranks the newest this many matches, not all of them: ranking
 * every match of a common word (600,000 of 1,000,000 posts in the benchmark)
 * outlived the call's deadline, and on a social network the best of the
 * recent matches is what a reader wants anyway.
 */
export const BEST_MATCH_WINDOW = 2_000;

export async function searchPosts(
  db: Queryable,
  query: SearchQuery,
  order: SearchOrderName,
  limit: number,
  after?: SearchCursor,
): Promise<Array<PostRow & { rank: number }>> {
  const tsquery = sql`websearch_to_tsquery('simple', ${query.words})`;
  const rank: SQL<number> = query.words === "" || order === "newest" ? sql<number>`0::real` : sql<number>`ts_rank(${document}, ${tsquery})`;
  const conditions: Array<SQL | undefined> = [
    isNull(postItems.deletedAt),
    query.words === "" ? undefined : sql`${document} @@ ${tsquery}`,
    query.hashtags.length === 0 ? undefined : sql`${postItems.hashtags} @> array[${sql.join(query.hashtags.map((tag) => sql`${tag}`), sql`, `)}]::text[]`,
    sql`not exists (select 1 from ${moderatedUsers} where ${moderatedUsers.userId} = ${postItems.authorId} and ${moderatedUsers.suspended})`,
    sql`not exists (select 1 from ${moderatedContent} where ${moderatedContent.targetKind} = 'post' and ${moderatedContent.targetId} = ${postItems.id} and ${moderatedContent.removed})`,
  ];
  if (order === "best" && query.words !== "") {
    // The window, from the same conditions: the newest matches (index order), then ranked below.
    const window = db
      .select({ id: postItems.id })
      .from(postItems)
      .where(and(...conditions))
      .orderBy(newestFirst(postItems.createdAt), newestFirst(postItems.id))
      .limit(BEST_MATCH_WINDOW);
    conditions.push(inArray(postItems.id, window));
  }
  if (after !== undefined) {
    const at = sql`${new Date(after.createdAt).toISOString()}::timestamptz`;
    conditions.push(
      order === "best"
        ? sql`(${rank}, ${postItems.createdAt}, ${postItems.id}) < (${after.rank}::real, ${at}, ${after.id}::uuid)`
        : sql`(${postItems.createdAt}, ${postItems.id}) < (${at}, ${after.id}::uuid)`,
    );
  }
  const ordering = order === "best" ? [sql`${rank} desc`, newestFirst(postItems.createdAt), newestFirst(postItems.id)] : [newestFirst(postItems.createdAt), newestFirst(postItems.id)];
  return db
    .select({ ...getTableColumns(postItems), rank })
    .from(postItems)
    .where(and(...conditions))
    .orderBy(...ordering)
    .limit(limit);
}
