// The queries GetHomeFeed runs on every call, as prepared statements (see
// services/runtime/src/db/prepared.ts): built once per database handle,
// parsed once per connection.
import { and, eq, isNull, sql } from "drizzle-orm";
import type { Db } from "@aviary/runtime/db/database";
import { newestFirst } from "@aviary/runtime/db/order";
import { idArray, perDatabase } from "@aviary/runtime/db/prepared";
import { follows, posts } from "./schema.ts";
import type { TimelineCursor, TimelineEntry } from "./timelines.ts";

export interface ReadStatements {
  /** Read-time merge (hybrid): live posts of the reader's followees that were not fanned out, newest first, strictly before `cursor`. */
  notFannedOutFolloweePosts(readerId: string, limit: number, cursor?: TimelineCursor): Promise<TimelineEntry[]>;
  /** Which of `authorIds` the reader follows now. */
  followedAmong(readerId: string, authorIds: readonly string[]): Promise<Set<string>>;
  /** Whether the reader follows an author with a live post that was not fanned out (what the merge can find; read/merged-authors.ts). */
  followsMergedAuthor(readerId: string): Promise<boolean>;
}

/** The statements of `db`, prepared on first use. */
export const readStatements = perDatabase(prepare);

function prepare(db: Db): ReadStatements {
  const reader = sql.placeholder("reader");
  const followees = db.select({ id: follows.followeeId }).from(follows).where(eq(follows.followerId, reader));
  const merged = (name: string, cursor: boolean) =>
    db
      .select({ postId: posts.postId, createdAt: posts.createdAt })
      .from(posts)
      .where(
        and(
          eq(posts.fannedOut, false),
          isNull(posts.deletedAt),
          sql`${posts.authorId} in ${followees}`,
          cursor ? sql`(${posts.createdAt}, ${posts.postId}) < (${sql.placeholder("beforeAt")}::timestamptz, ${sql.placeholder("beforeId")}::uuid)` : undefined,
        ),
      )
      .orderBy(newestFirst(posts.createdAt), newestFirst(posts.postId))
      .limit(sql.placeholder("limit"))
      .prepare(name);
  const mergedFirst = merged("feed_merged_first", false);
  const mergedBefore = merged("feed_merged_before", true);
  const followed = db
    .select({ followeeId: follows.followeeId })
    .from(follows)
    .where(and(eq(follows.followerId, reader), sql`${follows.followeeId} = any(${sql.placeholder("authors")}::uuid[])`))
    .prepare("feed_followed_among");
  // One index probe per followee on posts_not_fanned_out_idx (the same predicate).
  const followsMerged = db
    .select({ followeeId: follows.followeeId })
    .from(follows)
    .where(
      and(
        eq(follows.followerId, reader),
        sql`exists (select 1 from ${posts} where ${posts.authorId} = ${follows.followeeId} and ${posts.fannedOut} = false and ${posts.deletedAt} is null)`,
      ),
    )
    .limit(1)
    .prepare("feed_follows_merged_author");

  return {
    async notFannedOutFolloweePosts(readerId, limit, cursor) {
      const rows = cursor
        ? await mergedBefore.execute({ reader: readerId, limit, beforeAt: new Date(cursor.score).toISOString(), beforeId: cursor.postId })
        : await mergedFirst.execute({ reader: readerId, limit });
      return rows.map((row) => ({ postId: row.postId, score: row.createdAt.getTime() }));
    },
    async followedAmong(readerId, authorIds) {
      if (authorIds.length === 0) return new Set();
      const rows = await followed.execute({ reader: readerId, authors: idArray(authorIds) });
      return new Set(rows.map((row) => row.followeeId));
    },
    async followsMergedAuthor(readerId) {
      return (await followsMerged.execute({ reader: readerId })).length > 0;
    },
  };
}
