// The reactions a message can take: a small fixed set (a client can show
// every one without a picker), a few per member per message.

/** In display order (reaction counts are listed so). */
export const ALLOWED_REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🙏"] as const;

/** Distinct reactions one member may leave on one message. */
export const MAX_REACTIONS_PER_USER = 3;

/** Variation selector 16: keyboards send the heart with or without it. */
const VS16 = /\uFE0F/g;

const canonical = new Map<string, string>(ALLOWED_REACTIONS.map((r) => [r.replace(VS16, ""), r]));

/** The allowed reaction `text` spells (as ALLOWED_REACTIONS spells it), or undefined. */
export function canonicalReaction(text: string): string | undefined {
  return canonical.get(text.replace(VS16, ""));
}

/** Sort key of a stored reaction: its place in the allowed set. */
export function reactionRank(reaction: string): number {
  const index = (ALLOWED_REACTIONS as readonly string[]).indexOf(reaction);
  return index === -1 ? ALLOWED_REACTIONS.length : index;
}
