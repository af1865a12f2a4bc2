import { notFound } from "@aviary/runtime/errors";

/**
 * A conversation the caller is not a current member of gets the same answer
 * as an id that never existed: its existence is not revealed.
 */
export function noSuchConversation(id: string): Error {
  return notFound("no such conversation", { type: "aviary.chat.v1.Conversation", name: id });
}

/**
 * No message at `seq` that the caller can see: beyond the sequence, a
 * membership entry, or before their visible history. One answer for all.
 */
export function noSuchMessage(conversationId: string, seq: number | bigint): Error {
  return notFound("no such message", { type: "aviary.chat.v1.Message", name: subjectOf({ conversationId, seq }) });
}

/** A message's resource name (NOT_FOUND details, precondition subjects). */
export function subjectOf(message: { conversationId: string; seq: number | bigint }): string {
  return `conversations/${message.conversationId}/messages/${message.seq}`;
}
