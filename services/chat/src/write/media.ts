// Media a chat write refers to (a message's attachments, a group's avatar):
// confirmed uploads of the caller's, made for the use, asked of the media
// service as the caller before the transaction (peer calls stay outside it),
// with the rules every service shares (@aviary/runtime/media).
import type { HandlerContext } from "@connectrpc/connect";
import { MediaPurpose } from "@aviary/gen/aviary/media/v1/media_pb";
import { asCaller } from "@aviary/runtime/context";
import { invalidArgument, type FieldViolation } from "@aviary/runtime/errors";
import { mediaViolations } from "@aviary/runtime/media";
import { isUuid } from "@aviary/runtime/validation";
import type { ChatMedia } from "../peers.ts";
import type { AttachmentRecord } from "../store/schema.ts";

/**
 * The attachments as stored with the message, in the sender's order.
 * Throws INVALID_ARGUMENT on `attachment_media_ids[i]` for a repeated,
 * unknown, unconfirmed or foreign id, or one not made for content.
 */
export async function checkedAttachments(media: ChatMedia, ctx: HandlerContext, senderId: string, rawIds: readonly string[]): Promise<AttachmentRecord[]> {
  const ids = rawIds.map((id) => id.toLowerCase());
  if (ids.length === 0) return [];
  const field = (index: number) => `attachment_media_ids[${index}]`;
  const repeated: FieldViolation[] = ids.flatMap((id, index) => (ids.indexOf(id) !== index ? [{ field: field(index), description: "is listed more than once", reason: "DUPLICATE" }] : []));
  if (repeated.length > 0) throw invalidArgument(repeated);
  const found = await media.ready(ids, asCaller(ctx));
  const violations = mediaViolations(ids, found, { ownerId: senderId, purpose: MediaPurpose.POST, field });
  if (violations.length > 0) throw invalidArgument(violations);
  return ids.map((id) => {
    const item = found.get(id)!;
    return { mediaId: id, contentType: item.contentType, sizeBytes: Number(item.sizeBytes) };
  });
}

/**
 * A group avatar to store: "" is none (null); anything else must be a
 * media id of a confirmed avatar upload of the caller's (INVALID_ARGUMENT
 * on `avatar_media_id` otherwise).
 */
export async function checkedAvatar(media: ChatMedia, ctx: HandlerContext, callerId: string, rawId: string): Promise<string | null> {
  if (rawId === "") return null;
  const id = rawId.toLowerCase();
  const field = () => "avatar_media_id";
  if (!isUuid(id)) throw invalidArgument([{ field: "avatar_media_id", description: "must be a media id (a UUID), or empty to remove the avatar", reason: "FORMAT_UUID" }]);
  const violations = mediaViolations([id], await media.ready([id], asCaller(ctx)), { ownerId: callerId, purpose: MediaPurpose.AVATAR, field });
  if (violations.length > 0) throw invalidArgument(violations);
  return id;
}
