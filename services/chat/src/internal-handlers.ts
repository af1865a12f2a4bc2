// ChatInternalService: reads for other services, authorised by service tokens
// (scopes), never by a user's token. Only procedures listed in
// internalProcedures accept service tokens (see server.ts).
import type { ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ChatInternalService } from "@aviary/gen/aviary/chat/v1/chat_internal_pb";
import { requireServiceScope } from "@aviary/runtime/context";
import type { Database } from "@aviary/runtime/db/database";
import { exportScope, keysetRows } from "@aviary/runtime/export";
import { proceduresOf } from "@aviary/runtime/service-config";
import { sentMessagesPage, type EntryRow } from "./store/export.ts";

/** The scope a service token needs for ExportUserMessages (the auth service's exporter). */
export const chatExportScope = exportScope("chat");

/** The procedures that take service tokens: all of ChatInternalService, nothing of ChatService. */
export const internalProcedures = proceduresOf(ChatInternalService);

export function createChatInternalHandlers(deps: { database: Database }): ServiceImpl<typeof ChatInternalService> {
  const { db } = deps.database;
  return {
    async *exportUserMessages(request, context) {
      requireServiceScope(context, chatExportScope);
      const userId = request.userId.toLowerCase();
      for await (const row of keysetRows<EntryRow>((after, limit) => sentMessagesPage(db, userId, after, limit))) {
        yield {
          message: {
            conversationId: row.conversationId,
            seq: BigInt(row.seq),
            messageId: row.id,
            text: row.text ?? "",
            replyToSeq: BigInt(row.replyToSeq ?? 0),
            attachmentMediaIds: (row.attachments ?? []).map((attachment) => attachment.mediaId),
            createdAt: timestampFromDate(row.createdAt),
            ...(row.editedAt ? { editedAt: timestampFromDate(row.editedAt) } : {}),
          },
        };
      }
    },
  };
}
