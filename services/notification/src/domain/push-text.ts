// What a push says. Built from the group's counts at the time of the
// notification, so the banner that replaces the previous one (same collapse
// key) tells the whole story: "Ana and 4 others liked your post".
import type { KindName } from "./kinds.ts";

const VERB: Record<KindName, string> = {
  follow: "followed you",
  like: "liked your post",
  comment: "commented on your post",
  reply: "replied to your post",
  mention: "mentioned you",
  message: "sent you a message",
};

export function pushBody(kind: KindName, actorName: string, actorCount: number): string {
  const others = actorCount - 1;
  const who = others <= 0 ? actorName : `${actorName} and ${others} ${others === 1 ? "other" : "others"}`;
  return `${who} ${VERB[kind]}`;
}

/** The most characters of a message a push shows. */
export const MESSAGE_PREVIEW_CHARS = 100;

/** The start of a message for its push: at most MESSAGE_PREVIEW_CHARS characters (code points, whitespace runs folded), "…" when cut. */
export function messagePreview(text: string): string {
  const chars = Array.from(text.replace(/\s+/g, " ").trim());
  return chars.length <= MESSAGE_PREVIEW_CHARS ? chars.join("") : `${chars.slice(0, MESSAGE_PREVIEW_CHARS).join("").trimEnd()}…`;
}

/**
 * What a message without text shows instead (it has media): "📷 Photo",
 * "📷 3 photos", "🎥 Video", "📎 2 attachments" (images and videos mixed).
 * Empty when there is nothing to show either.
 */
export function attachmentsPreview(contentTypes: readonly string[]): string {
  const n = contentTypes.length;
  if (n === 0) return "";
  if (contentTypes.every((t) => t.startsWith("image/"))) return n === 1 ? "📷 Photo" : `📷 ${n} photos`;
  if (contentTypes.every((t) => t.startsWith("video/"))) return n === 1 ? "🎥 Video" : `🎥 ${n} videos`;
  return n === 1 ? "📎 Attachment" : `📎 ${n} attachments`;
}

/** A chat message's push: "Ana: hi", or in a group "Ana in Weekend: hi". */
export function messagePushBody(actorName: string, preview: string, conversationTitle: string): string {
  const title = conversationTitle.trim();
  return title === "" ? `${actorName}: ${preview}` : `${actorName} in ${title}: ${preview}`;
}

/** The name to show: the display name, else @username, else a neutral word. */
export function actorName(user: { displayName: string; username: string } | undefined): string {
  if (user === undefined) return "Someone";
  if (user.displayName.trim() !== "") return user.displayName.trim();
  return user.username === "" ? "Someone" : `@${user.username}`;
}
