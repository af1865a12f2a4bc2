// What a post's text means: its length, its @mentions and its #hashtags.
// Plain functions, no I/O.

/** The longest post or comment, in Unicode code points (as the proto's max_len counts). */
export const MAX_TEXT_CODE_POINTS = 500;
export const MAX_HASHTAG_CODE_POINTS = 100;

/**
 * Length in Unicode code points, the unit the runtime's validation
 * interceptor counts max_len in: an emoji outside the BMP is one, not two
 * UTF-16 units.
 */
export function codePointLength(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

// A mention's @ must not follow a word character, another @, or the
// characters that glue an email address or URL path together: "a@b.com",
// "x@@alice", "host/@alice" are not mentions. Usernames are the user
// service's: 3–30 of [a-z0-9_], case-insensitive. A longer run is no
// mention at all (not a truncated one), hence the lookahead.
const MENTION = /(?<![\p{L}\p{M}\p{N}_@.+\-/])@([a-z0-9_]{3,30})(?![\p{L}\p{M}\p{N}_@])/giu;

// A hashtag's # must not follow a word character, "&" (an HTML entity
// "&#39;") or "/" (a URL fragment "page/#top"). The tag runs over letters,
// marks, digits and underscores in any script.
const HASHTAG = /(?<![\p{L}\p{M}\p{N}_&/#])#([\p{L}\p{M}\p{N}_]+)/gu;
const ALL_DIGITS = /^\p{N}+$/u;

/** Lower-cased usernames mentioned with @, without the @, de-duplicated in order of first use. */
export function parseMentions(text: string): string[] {
  const found = new Set<string>();
  for (const match of text.matchAll(MENTION)) found.add((match[1] ?? "").toLowerCase());
  return [...found];
}

/**
 * Lower-cased hashtags without the #, de-duplicated in order of first use.
 * A tag of digits only ("#1") is a number, not a topic; a tag over
 * MAX_HASHTAG_CODE_POINTS is not a hashtag (rather than a truncated one).
 */
export function parseHashtags(text: string): string[] {
  const found = new Set<string>();
  for (const match of text.matchAll(HASHTAG)) {
    const tag = (match[1] ?? "").normalize("NFC").toLowerCase();
    if (ALL_DIGITS.test(tag) || codePointLength(tag) > MAX_HASHTAG_CODE_POINTS) continue;
    found.add(tag);
  }
  return [...found];
}
