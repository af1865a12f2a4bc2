// Step 2 of GetHomeFeed: the posts and their authors, one batch call each,
// made as the caller (their token, deadline and cancellation), so the post
// and user services apply their own visibility rules for this reader.
import type { Client, HandlerContext } from "@connectrpc/connect";
import type { PostService, Post } from "@aviary/gen/aviary/post/v1/post_pb";
import type { Profile, UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import { asCaller } from "@aviary/runtime/context";
import { fromDependency as dependency } from "@aviary/runtime/errors";
import type { Database } from "@aviary/runtime/db/database";
import { readStatements } from "../store/read-statements.ts";
import type { TimelineEntry } from "../store/timelines.ts";

export interface HydrateDeps {
  database: Database;
  posts: Client<typeof PostService>;
  users: Client<typeof UserService>;
}

export interface Hydrated {
  /** By post id; absent = deleted, unknown, or invisible to the reader. */
  posts: Map<string, Post>;
  /** By user id; absent = unknown, or the author blocked the reader. */
  profiles: Map<string, Profile>;
  /** Which of the authors the reader follows now (from the projection). */
  followed: Set<string>;
}

export async function hydrate(deps: HydrateDeps, ctx: HandlerContext, readerId: string, entries: readonly TimelineEntry[]): Promise<Hydrated> {
  if (entries.length === 0) return { posts: new Map(), profiles: new Map(), followed: new Set() };
  const found = await dependency("post", () => deps.posts.batchGetPosts({ postIds: entries.map((e) => e.postId) }, asCaller(ctx)));
  const posts = new Map(Object.values(found.posts).map((post) => [post.postId.toLowerCase(), post]));
  const authorIds = [...new Set([...posts.values()].map((post) => post.authorId.toLowerCase()))];
  if (authorIds.length === 0) return { posts, profiles: new Map(), followed: new Set() };
  const [authors, followed] = await Promise.all([
    dependency("user", () => deps.users.batchGetProfiles({ userIds: authorIds }, asCaller(ctx))),
    readStatements(deps.database.db).followedAmong(readerId, authorIds),
  ]);
  return { posts, profiles: new Map(authors.profiles.map((profile) => [profile.userId.toLowerCase(), profile])), followed };
}
