// PostInternalService: reads for other services, authorised by service tokens
// (scopes), never by a user's token. Only procedures listed in
// internalProcedures accept service tokens (see server.ts).
import type { ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { PostInternalService } from "@aviary/gen/aviary/post/v1/post_internal_pb";
import { requireServiceScope } from "@aviary/runtime/context";
import type { Database } from "@aviary/runtime/db/database";
import { exportScope, keysetRows } from "@aviary/runtime/export";
import { proceduresOf } from "@aviary/runtime/service-config";
import { authoredCommentsPage, authoredPostsPage, likesPage, type CommentRow, type LikeRow, type PostRow } from "./store/export.ts";

/** The scope a service token needs for ExportUserPosts (the auth service's exporter). */
export const postExportScope = exportScope("post");

/** The procedures that take service tokens: all of PostInternalService, nothing of PostService. */
export const internalProcedures = proceduresOf(PostInternalService);

export function createPostInternalHandlers(deps: { database: Database }): ServiceImpl<typeof PostInternalService> {
  const { db } = deps.database;
  return {
    async *exportUserPosts(request, context) {
      requireServiceScope(context, postExportScope);
      const userId = request.userId.toLowerCase();
      for await (const row of keysetRows<PostRow>((after, limit) => authoredPostsPage(db, userId, after, limit))) {
        const post = { postId: row.id, text: row.text, mediaIds: row.mediaIds, replyToPostId: row.replyToPostId ?? "", createdAt: timestampFromDate(row.createdAt) };
        yield { item: { case: "post", value: post } };
      }
      for await (const row of keysetRows<CommentRow>((after, limit) => authoredCommentsPage(db, userId, after, limit))) {
        yield { item: { case: "comment", value: { commentId: row.id, postId: row.postId, text: row.text, createdAt: timestampFromDate(row.createdAt) } } };
      }
      for await (const row of keysetRows<LikeRow>((after, limit) => likesPage(db, userId, after, limit))) {
        yield { item: { case: "like", value: { postId: row.postId, likedAt: timestampFromDate(row.createdAt) } } };
      }
    },
  };
}
