import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { PostService, SearchOrder, type CommentSchema } from "@aviary/gen/aviary/post/v1/post_pb";
import type { Database } from "@aviary/runtime/db/database";
import { asCaller, requirePrincipal } from "@aviary/runtime/context";
import { invalidArgument, notFound, permissionDenied } from "@aviary/runtime/errors";
import { pageSize, type PageTokens } from "@aviary/runtime/pagination";
import { newId } from "./domain/ids.ts";
import { checkDraft, checkMedia, checkReplyTarget, draftFrom, textFacts } from "./domain/new-post.ts";
import { present, presentPost, readPosts, type HydrationSources } from "./read/posts.ts";
import type { Peers } from "./peers.ts";
import { adjustCount, findPost, listPostsByAuthor, newPostRow, lockLivePost, lockPost, tombstonePost, type PostRow } from "./store/posts.ts";
import { deleteComment, findComment, insertComment, listComments, type CommentRow } from "./store/comments.ts";
import { deleteLike, insertLike } from "./store/likes.ts";
import type { RemovalFact } from "./store/moderation.ts";
import { postReadStatements } from "./store/read-statements.ts";
import { searchPosts } from "./store/search.ts";
import { parseSearchCursor, parseSearchQuery, searchCursorPayload, searchKey, type SearchOrderName } from "./domain/search.ts";
import { commentCreated, commentDeleted, insertPostWithEvent, likeCreated, likeDeleted, postDeleted } from "./events/publish.ts";

/** Everything the handlers need; assembled by server.ts, replaced in tests. */
export interface PostDeps {
  database: Database;
  peers: Peers;
  pageTokens: { byAuthor: PageTokens; comments: PageTokens; search: PageTokens };
  now?: () => Date;
}

const POST_TYPE = "aviary.post.v1.Post";
const COMMENT_TYPE = "aviary.post.v1.Comment";
const USER_TYPE = "aviary.user.v1.Profile";
const PAGE = { default: 20, max: 100 };
const searchOrders: Record<number, SearchOrderName | undefined> = { [SearchOrder.UNSPECIFIED]: "newest", [SearchOrder.NEWEST]: "newest", [SearchOrder.BEST_MATCH]: "best" };

function presentComment(row: CommentRow, removal?: RemovalFact): MessageInitShape<typeof CommentSchema> {
  return {
    commentId: row.id,
    postId: row.postId,
    authorId: row.authorId,
    text: row.text,
    createdAt: timestampFromDate(row.createdAt),
    ...(removal === undefined ? {} : { removal: { reason: removal.reason, removedAt: timestampFromDate(removal.removedAt) } }),
  };
}

function postNotFound(postId: string): Error {
  return notFound("no such post", { type: POST_TYPE, name: postId });
}

export function createPostHandlers(deps: PostDeps): ServiceImpl<typeof PostService> {
  const now = deps.now ?? (() => new Date());
  const { db } = deps.database;
  const { peers } = deps;
  const statements = postReadStatements(db);

  /** Hydration sources answering as the calling viewer. */
  function sourcesFor(context: HandlerContext, viewerId: string): HydrationSources {
    const call = asCaller(context);
    return {
      visibleUsers: (ids) => peers.visibleUsers(ids, call),
      readyMedia: (ids) => peers.readyMedia(ids, call),
      likedByViewer: (ids) => statements.likedAmong(viewerId, ids),
      removedPosts: (ids) => statements.removedAmong("post", ids),
    };
  }

  /** Whether `viewerId` may see `authorId`'s content (the user service decides; nobody is hidden from themselves). */
  async function canSee(context: HandlerContext, viewerId: string, authorId: string): Promise<boolean> {
    if (authorId === viewerId) return true;
    return (await peers.visibleUsers([authorId], asCaller(context))).has(authorId);
  }

  /** The live post as the viewer may see it; NOT_FOUND when unknown, tombstoned or by an author who blocked the viewer. */
  async function visiblePost(context: HandlerContext, viewerId: string, postId: string): Promise<PostRow> {
    const row = await findPost(db, postId);
    if (row === undefined || !(await isVisible(context, viewerId, row))) throw postNotFound(postId);
    return row;
  }

  /** Whether the viewer may see the post: live, by an author who did not block them, and not removed by a moderator (but for its author). */
  async function isVisible(context: HandlerContext, viewerId: string, row: PostRow): Promise<boolean> {
    if (row.deletedAt !== null || !(await canSee(context, viewerId, row.authorId))) return false;
    // A post a moderator removed is gone for everyone but its author.
    return row.authorId === viewerId || (await statements.removedAmong("post", [row.id])).size === 0;
  }

  return {
    async createPost(request, context) {
      const principal = requirePrincipal(context);
      const draft = draftFrom(request);
      const early = checkDraft(draft);
      if (early.length > 0) throw invalidArgument(early);

      const call = asCaller(context);
      // The two facts from other services, in parallel: one BatchGetMedia for
      // all media ids, and the replied-to post's visibility.
      const [media, reply] = await Promise.all([
        peers.readyMedia(draft.mediaIds, call),
        draft.replyToPostId === ""
          ? undefined
          : findPost(db, draft.replyToPostId).then(async (row) => ({
              authorId: row?.authorId ?? "",
              visible: row !== undefined && row.deletedAt === null && (await canSee(context, principal.userId, row.authorId)),
            })),
      ]);
      const violations = [...checkMedia(principal.userId, draft.mediaIds, media), ...(reply === undefined ? [] : checkReplyTarget(reply.visible))];
      if (violations.length > 0) throw invalidArgument(violations);

      const at = now();
      const row = newPostRow({
        id: newId(at.getTime()),
        authorId: principal.userId,
        text: draft.text,
        mediaIds: draft.mediaIds,
        replyToPostId: draft.replyToPostId === "" ? null : draft.replyToPostId,
        ...textFacts(draft.text),
        createdAt: at,
      });
      await insertPostWithEvent(db, row, reply?.authorId ?? "");
      return { post: presentPost(row, { media, liked: new Set() }) };
    },

    async getPost(request, context) {
      const principal = requirePrincipal(context);
      const postId = request.postId.toLowerCase();
      const post = (await readPosts(statements.findPosts, [postId], principal.userId, sourcesFor(context, principal.userId))).get(postId);
      if (post === undefined) throw postNotFound(postId);
      return { post };
    },

    async batchGetPosts(request, context) {
      const principal = requirePrincipal(context);
      const ids = request.postIds.map((id) => id.toLowerCase());
      const posts = await readPosts(statements.findPosts, ids, principal.userId, sourcesFor(context, principal.userId));
      return { posts: Object.fromEntries(posts) };
    },

    async deletePost(request, context) {
      const principal = requirePrincipal(context);
      const postId = request.postId.toLowerCase();
      const at = now();
      const foreign = await db.transaction(async (tx) => {
        const row = await lockPost(tx, postId);
        if (row === undefined) throw postNotFound(postId);
        // Someone else's post: nothing is written, and what the caller is told is decided below, outside the lock.
        if (row.authorId !== principal.userId) return row;
        // Deleting again changes nothing and publishes nothing.
        if (row.deletedAt !== null) return undefined;
        await tombstonePost(tx, postId, at);
        await postDeleted(tx, row, at);
        return undefined;
      });
      if (foreign !== undefined) {
        // A post the caller cannot see (a tombstone, its author blocked them, a moderator removed it) is not there for them.
        if (!(await isVisible(context, principal.userId, foreign))) throw postNotFound(postId);
        throw permissionDenied("only the author can delete a post");
      }
      return {};
    },

    async listPostsByAuthor(request, context) {
      const principal = requirePrincipal(context);
      const authorId = request.authorId.toLowerCase();
      // An author who blocked the caller (or who does not exist) has no posts to list.
      if (!(await canSee(context, principal.userId, authorId))) throw notFound("no such user", { type: USER_TYPE, name: authorId });
      const tokens = deps.pageTokens.byAuthor;
      const limit = pageSize(request.pageSize, PAGE);
      const after = request.pageToken === "" ? undefined : tokens.decode(request.pageToken, (v) => parseCursor(v, authorId));
      const rows = await listPostsByAuthor(db, authorId, limit + 1, after);
      const page = rows.slice(0, limit);
      // The author's visibility is settled above: hydration asks only for media and likes.
      const posts = await present(page, principal.userId, { ...sourcesFor(context, principal.userId), visibleUsers: async () => new Set([authorId]) });
      const last = page.at(-1);
      return {
        posts,
        nextPageToken: rows.length > limit && last !== undefined ? tokens.encode({ of: authorId, createdAt: last.createdAt.toISOString(), id: last.id }) : "",
      };
    },

    async searchPosts(request, context) {
      const principal = requirePrincipal(context);
      const query = parseSearchQuery(request.query);
      const order = searchOrders[request.order];
      if (order === undefined) throw invalidArgument([{ field: "order", description: "is not a search order", reason: "DEFINED_ENUM" }]);
      const key = searchKey(query, order);
      const limit = pageSize(request.pageSize, PAGE);
      const after = request.pageToken === "" ? undefined : deps.pageTokens.search.decode(request.pageToken, (v) => parseSearchCursor(v, key));
      const rows = await searchPosts(db, query, order, limit + 1, after);
      const page = rows.slice(0, limit);
      const sources = sourcesFor(context, principal.userId);
      // Blocks either way, as on a profile: search is how one finds strangers.
      const call = asCaller(context);
      const posts = await present(page, principal.userId, { ...sources, visibleUsers: (ids) => peers.visibleUsers(ids, call, { omitBlocked: true }) });
      const last = page.at(-1);
      return {
        posts,
        nextPageToken:
          rows.length > limit && last !== undefined ? deps.pageTokens.search.encode(searchCursorPayload({ rank: last.rank, createdAt: last.createdAt.toISOString(), id: last.id, of: key })) : "",
      };
    },

    async createComment(request, context) {
      const principal = requirePrincipal(context);
      const postId = request.postId.toLowerCase();
      const text = request.text.trim();
      if (text === "") throw invalidArgument([{ field: "text", description: "must not be blank", reason: "REQUIRED" }]);
      await visiblePost(context, principal.userId, postId);
      const at = now();
      const comment = await db.transaction(async (tx) => {
        // Locked and re-checked: a post deleted since the visibility check takes no comment.
        const post = await lockLivePost(tx, postId);
        if (post === undefined) throw postNotFound(postId);
        const inserted = await insertComment(tx, { id: newId(at.getTime()), postId, authorId: principal.userId, text, createdAt: at });
        await adjustCount(tx, postId, "commentCount", 1);
        await commentCreated(tx, inserted, post.authorId);
        return inserted;
      });
      return { comment: presentComment(comment) };
    },

    async listComments(request, context) {
      const principal = requirePrincipal(context);
      const postId = request.postId.toLowerCase();
      await visiblePost(context, principal.userId, postId);
      const tokens = deps.pageTokens.comments;
      const limit = pageSize(request.pageSize, PAGE);
      const after = request.pageToken === "" ? undefined : tokens.decode(request.pageToken, (v) => parseCursor(v, postId));
      const rows = await listComments(db, postId, limit + 1, after);
      const page = rows.slice(0, limit);
      // Comments by users who blocked the viewer are left out, like their posts
      // (one BatchGetProfiles for the page's authors). A page may then hold
      // fewer than page_size comments; the token still continues after the last row read.
      const others = [...new Set(page.map((c) => c.authorId).filter((id) => id !== principal.userId))];
      const [visible, removed] = await Promise.all([
        others.length === 0 ? new Set<string>() : peers.visibleUsers(others, asCaller(context)),
        statements.removedAmong("comment", page.map((c) => c.id)),
      ]);
      const last = page.at(-1);
      return {
        // A comment a moderator removed is shown to its author only, with the reason.
        comments: page
          .filter((c) => c.authorId === principal.userId || (visible.has(c.authorId) && !removed.has(c.id)))
          .map((c) => presentComment(c, removed.get(c.id))),
        nextPageToken: rows.length > limit && last !== undefined ? tokens.encode({ of: postId, createdAt: last.createdAt.toISOString(), id: last.id }) : "",
      };
    },

    async deleteComment(request, context) {
      const principal = requirePrincipal(context);
      const postId = request.postId.toLowerCase();
      const commentId = request.commentId.toLowerCase();
      const at = now();
      const noSuchComment = () => notFound("no such comment", { type: COMMENT_TYPE, name: commentId });
      const foreignPost = await db.transaction(async (tx) => {
        // The post first, as CreateComment locks it: its comment_count changes with the row.
        const post = await lockPost(tx, postId);
        const comment = await findComment(tx, postId, commentId);
        if (post === undefined || comment === undefined) throw noSuchComment();
        // Someone else's comment: nothing is written; the answer is decided below, outside the lock.
        if (comment.authorId !== principal.userId) return post;
        if (!(await deleteComment(tx, commentId))) return undefined;
        await adjustCount(tx, postId, "commentCount", -1);
        await commentDeleted(tx, comment, post.authorId, at);
        return undefined;
      });
      if (foreignPost !== undefined) {
        // Under a post the caller cannot see, a comment is not there for them either.
        if (!(await isVisible(context, principal.userId, foreignPost))) throw noSuchComment();
        throw permissionDenied("only the author can delete a comment");
      }
      return {};
    },

    async likePost(request, context) {
      const principal = requirePrincipal(context);
      const postId = request.postId.toLowerCase();
      await visiblePost(context, principal.userId, postId);
      const at = now();
      const likeCount = await db.transaction(async (tx) => {
        const post = await lockLivePost(tx, postId);
        if (post === undefined) throw postNotFound(postId);
        // Only the first like counts and is an event.
        if (!(await insertLike(tx, postId, principal.userId, at))) return post.likeCount;
        const count = await adjustCount(tx, postId, "likeCount", 1);
        await likeCreated(tx, post, principal.userId, at);
        return count;
      });
      return { likeCount: BigInt(likeCount) };
    },

    async unlikePost(request, context) {
      const principal = requirePrincipal(context);
      const postId = request.postId.toLowerCase();
      // The same NOT_FOUND rules as liking: the count of a post one cannot see is not told.
      await visiblePost(context, principal.userId, postId);
      const at = now();
      const likeCount = await db.transaction(async (tx) => {
        const post = await lockLivePost(tx, postId);
        if (post === undefined) throw postNotFound(postId);
        // Only a like that existed is taken back, and only that is an event.
        if (!(await deleteLike(tx, postId, principal.userId))) return post.likeCount;
        const count = await adjustCount(tx, postId, "likeCount", -1);
        await likeDeleted(tx, post, principal.userId, at);
        return count;
      });
      return { likeCount: BigInt(likeCount) };
    },
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A cursor only continues the list (author's posts, post's comments) it was minted for. */
function parseCursor(value: unknown, of: string): { createdAt: string; id: string } {
  if (typeof value === "object" && value !== null) {
    const { of: owner, createdAt, id } = value as Record<string, unknown>;
    if (owner === of && typeof createdAt === "string" && !Number.isNaN(Date.parse(createdAt)) && typeof id === "string" && UUID.test(id)) return { createdAt, id };
  }
  throw new Error("malformed cursor");
}
