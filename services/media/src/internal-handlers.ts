// MediaInternalService: reads for other services, authorised by service
// tokens (scopes), never by a user's token. Only procedures listed in
// internalProcedures accept service tokens (see server.ts).
import type { ServiceImpl } from "@connectrpc/connect";
import { MediaInternalService } from "@aviary/gen/aviary/media/v1/media_internal_pb";
import { requireServiceScope } from "@aviary/runtime/context";
import type { Database } from "@aviary/runtime/db/database";
import { exportScope, keysetRows } from "@aviary/runtime/export";
import { proceduresOf } from "@aviary/runtime/service-config";
import { mediaPresenter, type MediaDeps } from "./handlers.ts";
import { readyMediaOfOwnerPage, type MediaRow } from "./store/media.ts";

/** The scope a service token needs for ExportUserMedia (the auth service's exporter). */
export const mediaExportScope = exportScope("media");

/** The procedures that take service tokens: all of MediaInternalService, nothing of MediaService. */
export const internalProcedures = proceduresOf(MediaInternalService);

export function createMediaInternalHandlers(deps: MediaDeps & { database: Database }): ServiceImpl<typeof MediaInternalService> {
  const { db } = deps.database;
  const present = mediaPresenter(deps);
  return {
    async *exportUserMedia(request, context) {
      requireServiceScope(context, mediaExportScope);
      const ownerId = request.userId.toLowerCase();
      for await (const row of keysetRows<MediaRow>((after, limit) => readyMediaOfOwnerPage(db, ownerId, after, limit))) {
        yield { media: await present(row) };
      }
    },
  };
}
