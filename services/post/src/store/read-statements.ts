// The queries every GetPost / BatchGetPosts runs (and GetHomeFeed's hydration
// through it), as prepared statements (see services/runtime/src/db/prepared.ts):
// built once per database handle, parsed once per connection.
import { and, eq, sql } from "drizzle-orm";
import type { Db } from "@aviary/runtime/db/database";
import { idArray, perDatabase, preparedSql } from "@aviary/runtime/db/prepared";
import { likes, moderatedContent, moderatedUsers, postItems } from "./schema.ts";
import type { PostRow } from "./posts.ts";
import type { ContentKind, RemovalFact } from "./moderation.ts";

export interface PostReadStatements {
  /** The posts among `ids` that exist, tombstones included, in no particular order. */
  findPosts(ids: readonly string[]): Promise<PostRow[]>;
  /** The posts among `postIds` that `userId` likes. */
  likedAmong(userId: string, postIds: readonly string[]): Promise<Set<string>>;
  /** The items among `ids` of `kind` a moderator removed, with the reason. */
  removedAmong(kind: ContentKind, ids: readonly string[]): Promise<Map<string, RemovalFact>>;
  /** The suspended users among `userIds` (every read's author check, beside the user service's block answer). */
  suspendedAmong(userIds: readonly string[]): Promise<Set<string>>;
}

export const postReadStatements = perDatabase((db: Db): PostReadStatements => {
  const ids = sql.placeholder("ids");
  // Rows as the driver gives them, mapped here (postRowOf): drizzle's own
  // mapping of a select() walks each column's path with an iterator and
  // decodes through each column object, about 30 KB per BatchGetPosts of 20.
  // Times come as epoch ms and counts as text, the same from node-postgres
  // and PGlite.
  const p = postItems;
  const posts = preparedSql(
    db,
    "post_find_posts",
    sql`select ${p.id} as id, ${p.authorId} as author_id, ${p.text} as text, ${p.mediaIds} as media_ids, ${p.replyToPostId} as reply_to_post_id,
          ${p.mentions} as mentions, ${p.hashtags} as hashtags, ${p.likeCount}::text as like_count, ${p.commentCount}::text as comment_count,
          floor(extract(epoch from ${p.createdAt}) * 1000)::bigint::text as created_ms,
          floor(extract(epoch from ${p.deletedAt}) * 1000)::bigint::text as deleted_ms
        from ${p} where ${p.id} = any(${ids}::uuid[])`,
  );
  const liked = db
    .select({ postId: likes.postId })
    .from(likes)
    .where(and(sql`${likes.postId} = any(${ids}::uuid[])`, eq(likes.userId, sql.placeholder("user"))))
    .prepare("post_liked_among");
  const removed = db
    .select({ targetId: moderatedContent.targetId, reason: moderatedContent.reason, changedAt: moderatedContent.changedAt })
    .from(moderatedContent)
    .where(and(eq(moderatedContent.targetKind, sql.placeholder("kind")), sql`${moderatedContent.targetId} = any(${ids}::uuid[])`, eq(moderatedContent.removed, true)))
    .prepare("post_removed_among");
  const suspended = db
    .select({ userId: moderatedUsers.userId })
    .from(moderatedUsers)
    .where(and(sql`${moderatedUsers.userId} = any(${ids}::uuid[])`, eq(moderatedUsers.suspended, true)))
    .prepare("post_suspended_among");
  return {
    async findPosts(postIds) {
      if (postIds.length === 0) return [];
      return (await posts.execute({ ids: idArray(postIds) })).map(postRowOf);
    },
    async likedAmong(userId, postIds) {
      if (postIds.length === 0) return new Set();
      return new Set((await liked.execute({ ids: idArray(postIds), user: userId })).map((row) => row.postId));
    },
    async removedAmong(kind, targetIds) {
      if (targetIds.length === 0) return new Map();
      const rows = await removed.execute({ kind, ids: idArray(targetIds) });
      return new Map(rows.map((row) => [row.targetId, { reason: row.reason, removedAt: row.changedAt }]));
    },
    async suspendedAmong(userIds) {
      if (userIds.length === 0) return new Set();
      return new Set((await suspended.execute({ ids: idArray(userIds) })).map((row) => row.userId));
    },
  };
});

/** A row of post_find_posts as the PostRow drizzle's select() would have made. */
function postRowOf(row: Record<string, unknown>): PostRow {
  const deletedMs = row["deleted_ms"];
  const replyTo = row["reply_to_post_id"];
  return {
    id: String(row["id"]),
    authorId: String(row["author_id"]),
    text: String(row["text"]),
    mediaIds: texts(row["media_ids"]),
    replyToPostId: replyTo === null ? null : String(replyTo),
    mentions: texts(row["mentions"]),
    hashtags: texts(row["hashtags"]),
    likeCount: Number(row["like_count"]),
    commentCount: Number(row["comment_count"]),
    createdAt: new Date(Number(row["created_ms"])),
    deletedAt: deletedMs === null ? null : new Date(Number(deletedMs)),
  };
}

function texts(value: unknown): string[] {
  if (!Array.isArray(value)) throw new TypeError("post_find_posts: a text[] column did not come back as an array");
  return value as string[];
}
