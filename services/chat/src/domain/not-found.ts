import { notFound } from "@aviary/runtime/errors";

/**
 * A conversation the caller is not a current member of gets the same answer
 * as an id that never existed: its existence is not revealed.
 */
export function noSuchConversation(id: string): Error {
  return notFound("no such conversation", { type: "aviary.chat.v1.Conversation", name: id });
}
