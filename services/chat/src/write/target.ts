// The message an edit, a delete or a reaction is about: a message (not a
// membership entry) of a conversation the caller is a current member of,
// within the history they can see, its row locked so that changes to one
// message apply one after the other. Anything else is NOT_FOUND, the same
// whatever the reason.
import type { Tx } from "@aviary/runtime/db/database";
import { failedPrecondition } from "@aviary/runtime/errors";
import { noSuchConversation, noSuchMessage, subjectOf } from "../domain/not-found.ts";
import { visibleFrom } from "../domain/visibility.ts";
import { conversationOfMember, currentMembers, type ConversationRow, type MemberRow } from "../store/conversations.ts";
import type { EntryRow } from "../store/entries.ts";
import { lockEntry } from "../store/messages.ts";

export interface LockedMessage {
  conversation: ConversationRow;
  member: MemberRow;
  entry: EntryRow;
}

export async function lockVisibleMessage(tx: Tx, callerId: string, rawConversationId: string, rawSeq: bigint): Promise<LockedMessage> {
  const conversationId = rawConversationId.toLowerCase();
  const found = await conversationOfMember(tx, conversationId, callerId);
  if (!found) throw noSuchConversation(conversationId);
  // A seq beyond any JS-safe number is beyond every entry.
  if (rawSeq > BigInt(Number.MAX_SAFE_INTEGER)) throw noSuchMessage(conversationId, rawSeq);
  const seq = Number(rawSeq);
  if (seq < visibleFrom(found.conversation, found.member)) throw noSuchMessage(conversationId, seq);
  const entry = await lockEntry(tx, conversationId, seq);
  if (!entry || entry.membership !== null) throw noSuchMessage(conversationId, seq);
  return { ...found, entry };
}

/** The current members who can see the entry at `seq` (who hear of changes to it). */
export async function viewersOf(tx: Tx, conversation: ConversationRow, seq: number): Promise<string[]> {
  const members = (await currentMembers(tx, [conversation.id])).get(conversation.id) ?? [];
  return members.filter((m) => visibleFrom(conversation, m) <= seq).map((m) => m.userId);
}

/** A tombstone takes no edit and no reaction: FAILED_PRECONDITION `MESSAGE_DELETED`. */
export function requireLive(entry: EntryRow, verb: "edited" | "reacted to"): void {
  if (entry.deletedAt === null) return;
  throw failedPrecondition(`a deleted message cannot be ${verb}`, [{ type: "MESSAGE_DELETED", subject: subjectOf(entry), description: "the message was deleted" }]);
}
