// Reading posts for a viewer, in the four steps every read of other services'
// data follows (design brief, "Reads"): skeleton (rows from our own store) →
// hydration (one batch call per source, never one per post) → rules
// (tombstones, blocks) → presentation (the Post message). Each step is a
// plain function; `readPosts` chains them.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Media } from "@aviary/gen/aviary/media/v1/media_pb";
import type { PostSchema } from "@aviary/gen/aviary/post/v1/post_pb";
import type { PostRow } from "../store/posts.ts";
import type { RemovalFact } from "../store/moderation.ts";

export type PostMessage = MessageInitShape<typeof PostSchema>;

/** How step 1 reads rows by id (the prepared statement of store/read-statements.ts). */
export type FindPosts = (ids: readonly string[]) => Promise<PostRow[]>;

/** Step 1: the rows of the requested ids that exist, tombstones included. */
export function skeleton(find: FindPosts, postIds: readonly string[]): Promise<PostRow[]> {
  return find([...new Set(postIds)]);
}

/** Where hydration gets its facts: each answers for a whole set of ids at once. */
export interface HydrationSources {
  /** The authors (among the given ids) whose posts the viewer may see. */
  visibleUsers(userIds: readonly string[]): Promise<Set<string>>;
  readyMedia(mediaIds: readonly string[]): Promise<Map<string, Media>>;
  /** The posts (among the given ids) the viewer likes. */
  likedByViewer(postIds: readonly string[]): Promise<Set<string>>;
  /** The posts (among the given ids) a moderator removed, with the reason. */
  removedPosts(postIds: readonly string[]): Promise<Map<string, RemovalFact>>;
}

export interface Hydration {
  visibleAuthors: ReadonlySet<string>;
  media: ReadonlyMap<string, Media>;
  liked: ReadonlySet<string>;
  removed: ReadonlyMap<string, RemovalFact>;
}

/**
 * Step 2: everything the rules and the presentation need, in parallel, one
 * call per source for all rows. Tombstones need nothing. The viewer's own
 * posts need no visibility answer (nobody is hidden from themselves).
 * A source that fails fails the read: no partial answers.
 */
export async function hydrate(rows: readonly PostRow[], viewerId: string, sources: HydrationSources): Promise<Hydration> {
  const live = rows.filter((r) => r.deletedAt === null);
  const authors = [...new Set(live.map((r) => r.authorId).filter((id) => id !== viewerId))];
  const mediaIds = [...new Set(live.flatMap((r) => r.mediaIds))];
  const [visibleAuthors, media, liked, removed] = await Promise.all([
    authors.length === 0 ? new Set<string>() : sources.visibleUsers(authors),
    mediaIds.length === 0 ? new Map<string, Media>() : sources.readyMedia(mediaIds),
    live.length === 0 ? new Set<string>() : sources.likedByViewer(live.map((r) => r.id)),
    live.length === 0 ? new Map<string, RemovalFact>() : sources.removedPosts(live.map((r) => r.id)),
  ]);
  return { visibleAuthors, media, liked, removed };
}

/**
 * Step 3: what the viewer may see — not tombstoned, and either their own or
 * by an author who did not block them (nor is suspended) and not removed by
 * a moderator. Authors still see their removed posts, with the reason.
 */
export function applyRules(rows: readonly PostRow[], hydration: Pick<Hydration, "visibleAuthors" | "removed">, viewerId: string): PostRow[] {
  return rows.filter((r) => r.deletedAt === null && (r.authorId === viewerId || (hydration.visibleAuthors.has(r.authorId) && !hydration.removed.has(r.id))));
}

/**
 * Step 4: the Post message. Media keep the author's order; an item the media
 * service no longer has (removed since) is left out rather than failing the post.
 */
export function presentPost(row: PostRow, hydration: Pick<Hydration, "media" | "liked"> & Partial<Pick<Hydration, "removed">>): PostMessage {
  const removal = hydration.removed?.get(row.id);
  return {
    postId: row.id,
    authorId: row.authorId,
    text: row.text,
    media: row.mediaIds.flatMap((id) => {
      const item = hydration.media.get(id);
      return item === undefined ? [] : [item];
    }),
    replyToPostId: row.replyToPostId ?? "",
    mentions: row.mentions,
    hashtags: row.hashtags,
    likeCount: BigInt(row.likeCount),
    commentCount: BigInt(row.commentCount),
    likedByViewer: hydration.liked.has(row.id),
    createdAt: timestampFromDate(row.createdAt),
    ...(removal === undefined ? {} : { removal: { reason: removal.reason, removedAt: timestampFromDate(removal.removedAt) } }),
  };
}

/** Rows (already in the wanted order) → the visible ones as messages, same order. */
export async function present(rows: readonly PostRow[], viewerId: string, sources: HydrationSources): Promise<PostMessage[]> {
  const hydration = await hydrate(rows, viewerId, sources);
  return applyRules(rows, hydration, viewerId).map((row) => presentPost(row, hydration));
}

/** The whole pipeline for a set of ids: the visible posts, by id. */
export async function readPosts(find: FindPosts, postIds: readonly string[], viewerId: string, sources: HydrationSources): Promise<Map<string, PostMessage>> {
  const rows = await skeleton(find, postIds);
  const posts = await present(rows, viewerId, sources);
  return new Map(posts.map((p) => [p.postId ?? "", p]));
}
