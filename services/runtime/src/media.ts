// Media items other services point at (post media, chat attachments, group
// avatars). The media service owns them; a service that stores a reference
// asks it, as the caller, which ids are confirmed uploads, and refuses the
// rest with the same field violations everywhere.
import type { Client } from "@connectrpc/connect";
import { MediaPurpose, type Media, type MediaService } from "@aviary/gen/aviary/media/v1/media_pb";
import type { asCaller } from "./context.ts";
import type { FieldViolation } from "./errors.ts";

/** BatchGetMediaRequest.media_ids max_items: larger sets go in slices of this size (one call per 100 ids, never one per item). */
const BATCH_LIMIT = 100;

/** Call options carrying the caller's token, cancellation and remaining deadline. */
type CallerOptions = ReturnType<typeof asCaller>;

/**
 * The confirmed (ready) items among `mediaIds`, by lower-case id; unknown
 * and pending ids are absent (BatchGetMedia does not tell them apart).
 * A failed call is thrown as it came: what it means to the caller's caller
 * (UNAVAILABLE, INTERNAL) is each service's decision.
 */
export async function readyMedia(media: Pick<Client<typeof MediaService>, "batchGetMedia">, mediaIds: readonly string[], call: CallerOptions): Promise<Map<string, Media>> {
  const ids = [...new Set(mediaIds)];
  const slices: string[][] = [];
  for (let start = 0; start < ids.length; start += BATCH_LIMIT) slices.push(ids.slice(start, start + BATCH_LIMIT));
  const answers = await Promise.all(slices.map((slice) => media.batchGetMedia({ mediaIds: slice }, call)));
  return new Map(answers.flatMap((answer) => Object.entries(answer.media)).map(([id, item]) => [id.toLowerCase(), item]));
}

/** The part of a media item the rules look at. */
export interface MediaFacts {
  ownerId: string;
  purpose: MediaPurpose;
}

export interface MediaRule {
  /** Who must have uploaded every item (the caller). */
  ownerId: string;
  /** What the items must have been uploaded for. */
  purpose: MediaPurpose;
  /** The field a violation names for the item at `index` ("media_ids", "attachment_media_ids[2]"). */
  field: (index: number) => string;
}

const purposeNames: Partial<Record<MediaPurpose, string>> = { [MediaPurpose.AVATAR]: "an avatar", [MediaPurpose.POST]: "content (posts, messages)" };

/**
 * One violation per referenced item that may not be used: not a confirmed
 * upload (unknown or pending), someone else's, or made for another purpose.
 * `found` is readyMedia's answer for the same ids. An id listed twice is
 * judged once, at its first place.
 */
export function mediaViolations(mediaIds: readonly string[], found: ReadonlyMap<string, MediaFacts>, rule: MediaRule): FieldViolation[] {
  const violations: FieldViolation[] = [];
  for (const [index, id] of mediaIds.entries()) {
    if (mediaIds.indexOf(id) !== index) continue;
    const media = found.get(id);
    const field = rule.field(index);
    if (media === undefined) {
      violations.push({ field, description: `${id} is not a confirmed upload`, reason: "MEDIA_NOT_READY" });
    } else if (media.ownerId.toLowerCase() !== rule.ownerId.toLowerCase()) {
      violations.push({ field, description: `${id} is not one of your uploads`, reason: "MEDIA_NOT_OWNED" });
    } else if (media.purpose !== rule.purpose) {
      violations.push({ field, description: `${id} was not uploaded for ${purposeNames[rule.purpose] ?? "this use"}`, reason: "MEDIA_WRONG_PURPOSE" });
    }
  }
  return violations;
}
