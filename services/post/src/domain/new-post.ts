// The rules a new post must satisfy beyond the proto's field rules, as plain
// functions: the handler gathers the facts (the media service's answer, the
// replied-to post), these decide. Every broken rule becomes one field
// violation, so a client sees all of them at once.
import { MediaPurpose } from "@aviary/gen/aviary/media/v1/media_pb";
import type { FieldViolation } from "@aviary/runtime/errors";
import { mediaViolations, type MediaFacts } from "@aviary/runtime/media";
import { codePointLength, MAX_TEXT_CODE_POINTS, parseHashtags, parseMentions } from "./text.ts";

export const MAX_MEDIA = 4;

/** What the request asks for, normalised: text trimmed, ids lower-cased. */
export interface PostDraft {
  text: string;
  mediaIds: string[];
  /** "" when the post is no reply. */
  replyToPostId: string;
}

export function draftFrom(request: { text: string; mediaIds: readonly string[]; replyToPostId: string }): PostDraft {
  return {
    text: request.text.trim(),
    mediaIds: request.mediaIds.map((id) => id.toLowerCase()),
    replyToPostId: request.replyToPostId.toLowerCase(),
  };
}

/** Violations visible from the request alone (checked before asking any other service). */
export function checkDraft(draft: PostDraft): FieldViolation[] {
  const violations: FieldViolation[] = [];
  if (draft.text === "" && draft.mediaIds.length === 0) {
    violations.push({ field: "text", description: "a post needs text or media", reason: "REQUIRED" });
  }
  if (codePointLength(draft.text) > MAX_TEXT_CODE_POINTS) {
    violations.push({ field: "text", description: `must be at most ${MAX_TEXT_CODE_POINTS} characters`, reason: "MAX_LEN" });
  }
  if (draft.mediaIds.length > MAX_MEDIA) {
    violations.push({ field: "media_ids", description: `at most ${MAX_MEDIA} media items`, reason: "MAX_ITEMS" });
  }
  const repeated = draft.mediaIds.filter((id, i) => draft.mediaIds.indexOf(id) !== i);
  if (repeated.length > 0) {
    violations.push({ field: "media_ids", description: `lists ${[...new Set(repeated)].join(", ")} more than once`, reason: "DUPLICATE" });
  }
  return violations;
}

/**
 * `found` is the media service's BatchGetMedia answer, which holds only
 * confirmed (ready) items: an id missing from it is unknown or not ready.
 * The rules are the shared ones (chat attachments use them too); a post's
 * violations name `media_ids` as a whole, as they always have.
 */
export function checkMedia(authorId: string, mediaIds: readonly string[], found: ReadonlyMap<string, MediaFacts>): FieldViolation[] {
  return mediaViolations(mediaIds, found, { ownerId: authorId, purpose: MediaPurpose.POST, field: () => "media_ids" });
}

/**
 * A reply must answer a post the author can see. An unknown, deleted or
 * invisible parent is INVALID_ARGUMENT on `reply_to_post_id` rather than
 * NOT_FOUND: the request names a bad value, the resource being created is
 * the reply, and one error shape (field violations) covers every
 * CreatePost rejection. All three cases answer alike, so the error does not
 * tell a blocked author that the post exists.
 */
export function checkReplyTarget(replyVisible: boolean): FieldViolation[] {
  return replyVisible ? [] : [{ field: "reply_to_post_id", description: "is not a post you can reply to", reason: "NOT_FOUND" }];
}

/** What the text says, as stored with the post. */
export function textFacts(text: string): { mentions: string[]; hashtags: string[] } {
  return { mentions: parseMentions(text), hashtags: parseHashtags(text) };
}
