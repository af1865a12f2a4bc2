// Which media item may be a user's avatar. The media service owns media; the
// user service asks it (as the caller) and applies these rules to the answer.
import type { FieldViolation } from "@aviary/runtime/errors";

/** What the rules need to know of a media item, as the media service reports it. */
export interface AvatarCandidate {
  ownerId: string;
  purpose: "avatar" | "other";
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The id as the media service spells it (lower-case), or undefined when it cannot be a media id at all. */
export function canonicalMediaId(id: string): string | undefined {
  const lower = id.trim().toLowerCase();
  return UUID.test(lower) ? lower : undefined;
}

const violation = (description: string, reason: string): FieldViolation => ({ field: "avatar_media_id", description, reason });

/**
 * Why `media` cannot be `userId`'s avatar, or undefined when it can.
 * `undefined` media: unknown, or not ready (never confirmed) — the media
 * service does not tell them apart, and neither may be referenced.
 */
export function avatarViolation(media: AvatarCandidate | undefined, userId: string): FieldViolation | undefined {
  if (media === undefined) return violation("no ready media item has this id; upload and confirm it first", "NOT_FOUND");
  if (media.ownerId !== userId) return violation("must be a media item you uploaded", "NOT_OWNER");
  if (media.purpose !== "avatar") return violation("must be a media item uploaded with purpose MEDIA_PURPOSE_AVATAR", "PURPOSE");
  return undefined;
}

export function malformedMediaId(): FieldViolation {
  return violation("must be a media id (a UUID) or empty", "FORMAT_UUID");
}
