// Uploads a file the way the media service asks: CreateUpload over gRPC-web,
// the file POSTed straight to the presigned form (object storage, never
// through the API), then ConfirmUpload, which checks the stored bytes.
import type { Media, MediaPurpose } from "@aviary/gen/aviary/media/v1/media_pb";
import { api } from "./transport.ts";

export async function uploadMedia(file: File, purpose: MediaPurpose): Promise<Media> {
  const upload = await api.media.createUpload({ contentType: file.type, sizeBytes: BigInt(file.size), purpose });
  const form = new FormData();
  // The policy's fields first, the file last: S3 ignores fields after the file.
  for (const [name, value] of Object.entries(upload.fields)) form.append(name, value);
  form.append("file", file);
  // A multipart POST is a CORS "simple" request: no preflight. Reading its
  // status needs the storage to allow this origin (MinIO does by default, the
  // dev disk adapter answers with access-control-allow-origin).
  const response = await fetch(upload.url, { method: "POST", body: form });
  if (!response.ok) throw new Error(`the upload was refused (${response.status}): ${(await response.text()).slice(0, 200)}`);
  const { media } = await api.media.confirmUpload({ mediaId: upload.mediaId });
  if (!media) throw new Error("the media service confirmed no media");
  return media;
}

/** Reads a media item's URL (presigned, short-lived): for avatars, which profiles name only by id. */
export async function mediaUrl(mediaId: string): Promise<string | undefined> {
  if (!mediaId) return undefined;
  const { media } = await api.media.getMedia({ mediaId });
  return media?.url;
}

/** URLs for many media ids in one call (the avatars of a page of posts), by id; missing ones are absent. */
export async function mediaUrls(mediaIds: string[]): Promise<Map<string, string>> {
  const ids = [...new Set(mediaIds.filter((id) => id !== ""))];
  if (ids.length === 0) return new Map();
  const { media } = await api.media.batchGetMedia({ mediaIds: ids });
  return new Map(Object.entries(media).map(([id, item]) => [id, item.url]));
}
