import type { ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { MediaPurpose, MediaService, type MediaSchema } from "@aviary/gen/aviary/media/v1/media_pb";
import type { Database } from "@aviary/runtime/db/database";
import { requirePrincipal } from "@aviary/runtime/context";
import { failedPrecondition, invalidArgument, notFound } from "@aviary/runtime/errors";
import { maxBytesFor, sniffType, SNIFF_BYTES, uploadProblems, type MediaPurposeName, type SizeLimits } from "./domain/media-types.ts";
import type { BlobStorage } from "./storage/storage.ts";
import { findMedia, findReadyMedia, insertPendingMedia, isExpired, markReady, type MediaRow } from "./store/media.ts";

export interface MediaSettings {
  limits: SizeLimits;
  /** How long a presigned POST stays usable. */
  uploadUrlTtlMs: number;
  /** How long a pending item may wait for ConfirmUpload (from creation; at least the URL TTL). */
  pendingTtlMs: number;
  /** Lifetime of presigned read URLs. */
  readUrlTtlMs: number;
  /** When set, read URLs are `<base>/<key>` (a public bucket or a CDN) instead of presigned GETs. */
  publicBaseUrl?: string;
}

/** Everything the handlers need; assembled by server.ts, replaced in tests. */
export interface MediaDeps {
  database: Database;
  storage: BlobStorage;
  settings: MediaSettings;
  now?: () => Date;
}

const purposeNames: Record<number, MediaPurposeName | undefined> = { [MediaPurpose.AVATAR]: "avatar", [MediaPurpose.POST]: "post" };
const purposeValues: Record<string, MediaPurpose> = { avatar: MediaPurpose.AVATAR, post: MediaPurpose.POST };

/** The object key of a media item: under its owner's prefix, so a policy can never name another user's objects. */
export function objectKeyFor(ownerId: string, mediaId: string): string {
  return `uploads/${ownerId}/${mediaId}`;
}

/** A media row as the API shows it, with a read URL (presigned GET, or under MEDIA_PUBLIC_BASE_URL). */
export function mediaPresenter(deps: Pick<MediaDeps, "storage" | "settings" | "now">): (row: MediaRow) => Promise<MessageInitShape<typeof MediaSchema>> {
  const now = deps.now ?? (() => new Date());
  const { settings, storage } = deps;
  async function readUrl(row: MediaRow): Promise<{ url: string; expiresAt?: Date }> {
    if (settings.publicBaseUrl !== undefined) return { url: `${settings.publicBaseUrl.replace(/\/+$/, "")}/${row.objectKey}` };
    const expiresAt = new Date(now().getTime() + settings.readUrlTtlMs);
    return { url: await storage.readUrl(row.objectKey, expiresAt), expiresAt };
  }

  return async function present(row: MediaRow): Promise<MessageInitShape<typeof MediaSchema>> {
    const read = await readUrl(row);
    return {
      mediaId: row.id,
      ownerId: row.ownerId,
      purpose: purposeValues[row.purpose] ?? MediaPurpose.UNSPECIFIED,
      contentType: row.contentType ?? row.declaredContentType,
      sizeBytes: BigInt(row.sizeBytes ?? 0),
      url: read.url,
      ...(read.expiresAt ? { urlExpiresAt: timestampFromDate(read.expiresAt) } : {}),
      createdAt: timestampFromDate(row.createdAt),
    };
  };
}

export function createMediaHandlers(deps: MediaDeps): ServiceImpl<typeof MediaService> {
  const now = deps.now ?? (() => new Date());
  const { db } = deps.database;
  const { settings, storage } = deps;

  const notFoundError = (id: string) => notFound("no such media", { type: "aviary.media.v1.Media", name: id });

  const present = mediaPresenter(deps);

  return {
    async createUpload(request, context) {
      const principal = requirePrincipal(context);
      const purpose = purposeNames[request.purpose];
      const sizeBytes = Number(request.sizeBytes);
      if (purpose === undefined) throw invalidArgument([{ field: "purpose", description: "must be avatar or post", reason: "DEFINED_ENUM" }]);
      const problems = uploadProblems({ contentType: request.contentType, sizeBytes, purpose }, settings.limits);
      if (problems.length > 0) throw invalidArgument(problems);

      const at = now();
      const id = crypto.randomUUID();
      const key = objectKeyFor(principal.userId, id);
      const maxBytes = maxBytesFor(request.contentType, settings.limits);
      const urlExpiresAt = new Date(at.getTime() + settings.uploadUrlTtlMs);
      const post = await storage.presignPost({ key, contentType: request.contentType, minBytes: 1, maxBytes, expiresAt: urlExpiresAt });
      await insertPendingMedia(db, {
        id,
        ownerId: principal.userId,
        purpose,
        objectKey: key,
        declaredContentType: request.contentType,
        declaredSizeBytes: sizeBytes,
        createdAt: at,
        expiresAt: new Date(at.getTime() + Math.max(settings.pendingTtlMs, settings.uploadUrlTtlMs)),
      });
      return {
        mediaId: id,
        url: post.url,
        fields: post.fields,
        expiresAt: timestampFromDate(urlExpiresAt),
        maxSizeBytes: BigInt(maxBytes),
      };
    },

    async confirmUpload(request, context) {
      const principal = requirePrincipal(context);
      const row = await findMedia(db, request.mediaId);
      // Someone else's upload is indistinguishable from none.
      if (row === undefined || row.ownerId !== principal.userId) throw notFoundError(request.mediaId);
      if (row.status === "ready") return { media: await present(row) };
      if (isExpired(row, now())) throw failedPrecondition("the upload has expired; start a new one");

      const stored = await storage.head(row.objectKey);
      if (stored === undefined) {
        throw failedPrecondition("not uploaded: POST the file with the form from CreateUpload first", [
          { type: "UPLOAD", subject: row.objectKey, description: "no object was uploaded" },
        ]);
      }
      const maxBytes = maxBytesFor(row.declaredContentType, settings.limits);
      if (stored.sizeBytes < 1 || stored.sizeBytes > maxBytes) {
        await storage.delete(row.objectKey);
        throw failedPrecondition(`the uploaded file is ${stored.sizeBytes} bytes; ${row.declaredContentType} allows 1 to ${maxBytes}`, [
          { type: "SIZE", subject: row.objectKey, description: "size out of bounds; the object was deleted" },
        ]);
      }
      const actualType = sniffType(await storage.readStart(row.objectKey, SNIFF_BYTES));
      if (actualType !== row.declaredContentType) {
        // The form stays valid until it expires: the client may upload the right file again.
        await storage.delete(row.objectKey);
        throw failedPrecondition(`the uploaded file is not ${row.declaredContentType}${actualType ? ` (it is ${actualType})` : ""}; it was deleted`, [
          { type: "CONTENT_TYPE", subject: row.objectKey, description: `declared ${row.declaredContentType}, found ${actualType ?? "an unknown type"}` },
        ]);
      }
      const ready = await markReady(db, row.id, { contentType: actualType, sizeBytes: stored.sizeBytes });
      if (ready === undefined) {
        const again = await findMedia(db, row.id);
        if (again?.status === "ready") return { media: await present(again) };
        throw failedPrecondition("the upload has expired; start a new one");
      }
      return { media: await present(ready) };
    },

    async getMedia(request) {
      const [row] = await findReadyMedia(db, [request.mediaId]);
      if (row === undefined) throw notFoundError(request.mediaId);
      return { media: await present(row) };
    },

    async batchGetMedia(request) {
      const ids = [...new Set(request.mediaIds)];
      const rows = await findReadyMedia(db, ids);
      const media: Record<string, MessageInitShape<typeof MediaSchema>> = {};
      for (const row of rows) media[row.id] = await present(row);
      return { media };
    },
  };
}
