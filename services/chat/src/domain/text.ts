// A message's text (SendMessage, EditMessage): up to 4000 characters (the
// proto's max_len), never only whitespace, and empty only beside media.
import type { FieldViolation } from "@aviary/runtime/errors";

export function textViolation(text: string, hasAttachments: boolean): FieldViolation | undefined {
  if (text === "" && hasAttachments) return undefined;
  if (text === "") return { field: "text", description: "is required (it may be empty only when the message has attachments)", reason: "REQUIRED" };
  if (text.trim() === "") return { field: "text", description: "must contain more than whitespace", reason: "BLANK" };
  return undefined;
}
