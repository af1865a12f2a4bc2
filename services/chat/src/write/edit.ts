// EditMessage and DeleteMessage: the sender's own message changes in place
// (same seq, no new entry), under the message's row lock, with its event in
// the same transaction. A change that changes nothing writes nothing.
import type { HandlerContext } from "@connectrpc/connect";
import type { DeleteMessageRequest, EditMessageRequest, Message } from "@aviary/gen/aviary/chat/v1/chat_pb";
import type { Database } from "@aviary/runtime/db/database";
import { failedPrecondition, invalidArgument, permissionDenied } from "@aviary/runtime/errors";
import { subjectOf } from "../domain/not-found.ts";
import { presentEntry } from "../domain/present.ts";
import { textViolation } from "../domain/text.ts";
import type { ChatEvents } from "../events/publish.ts";
import type { ChatUsers } from "../peers.ts";
import { setText, tombstone } from "../store/messages.ts";
import { messageKey, reactionTallies } from "../store/reactions.ts";
import { requireWritable } from "./blocks.ts";
import { lockVisibleMessage, requireLive, viewersOf } from "./target.ts";

export interface EditDeps {
  database: Database;
  users: ChatUsers;
  events: ChatEvents;
  /** CHAT_EDIT_WINDOW: how long after sending a message can be edited. */
  editWindowMs: number;
}

export async function editMessage(deps: EditDeps, ctx: HandlerContext, callerId: string, request: EditMessageRequest): Promise<Message> {
  // Whitespace is refused before anything is read; "" depends on the message's attachments.
  const early = request.text === "" ? undefined : textViolation(request.text, false);
  if (early) throw invalidArgument([early]);
  // New words are new content: not across a block (deleting stays possible).
  await requireWritable(deps, ctx, callerId, request.conversationId.toLowerCase());
  return deps.database.db.transaction(async (tx) => {
    const locked = await lockVisibleMessage(tx, callerId, request.conversationId, request.seq);
    const { entry } = locked;
    if (entry.senderId !== callerId) throw permissionDenied("only the sender can edit a message");
    requireLive(entry, "edited");
    const empty = textViolation(request.text, (entry.attachments ?? []).length > 0);
    if (empty) throw invalidArgument([empty]);
    const tallies = (await reactionTallies(tx, callerId, [entry])).get(messageKey(entry)) ?? [];
    // Before the window: a retry of an edit that was answered must not fail once the window has passed.
    if (entry.text === request.text) return presentEntry(entry, tallies);
    const at = new Date();
    if (at.getTime() - entry.createdAt.getTime() > deps.editWindowMs) {
      throw failedPrecondition("the message can no longer be edited", [
        { type: "EDIT_WINDOW_PASSED", subject: subjectOf(entry), description: `messages can be edited for ${deps.editWindowMs} ms after sending` },
      ]);
    }
    const row = await setText(tx, entry.conversationId, entry.seq, request.text, at);
    // The event is the same for every member: no one's `reacted`.
    await deps.events.messageEdited(tx, { message: presentEntry(row, tallies.map((t) => ({ ...t, reacted: false }))), memberIds: await viewersOf(tx, locked.conversation, row.seq) });
    return presentEntry(row, tallies);
  });
}

export async function deleteMessage(deps: Pick<EditDeps, "database" | "events">, callerId: string, request: DeleteMessageRequest): Promise<Message> {
  return deps.database.db.transaction(async (tx) => {
    const locked = await lockVisibleMessage(tx, callerId, request.conversationId, request.seq);
    if (locked.entry.senderId !== callerId) throw permissionDenied("only the sender can delete a message");
    // Deleting twice: the tombstone, nothing written, no second event.
    if (locked.entry.deletedAt !== null) return presentEntry(locked.entry);
    const row = await tombstone(tx, locked.entry.conversationId, locked.entry.seq, new Date());
    const message = presentEntry(row);
    await deps.events.messageDeleted(tx, { message, memberIds: await viewersOf(tx, locked.conversation, row.seq) });
    return message;
  });
}
