// The queries every GetPost / BatchGetPosts runs (and GetHomeFeed's hydration
// through it), as prepared statements (see services/runtime/src/db/prepared.ts):
// built once per database handle, parsed once per connection.
import { and, eq, sql } from "drizzle-orm";
import type { Db } from "@aviary/runtime/db/database";
import { idArray, perDatabase } from "@aviary/runtime/db/prepared";
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
  const posts = db
    .select()
    .from(postItems)
    .where(sql`${postItems.id} = any(${ids}::uuid[])`)
    .prepare("post_find_posts");
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
    findPosts: (postIds) => (postIds.length === 0 ? Promise.resolve([]) : posts.execute({ ids: idArray(postIds) })),
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
