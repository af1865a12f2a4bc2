// AddReaction and RemoveReaction: one member's reactions to one message,
// from the allowed set and at most a few each, changed under the message's
// row lock (so a member's concurrent adds cannot pass the limit, and no
// reaction lands on a message being deleted), with the event in the same
// transaction. Adding one the caller has, or taking back one they do not
// have, writes nothing.
import type { HandlerContext } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { ReactionChangeSchema, type AddReactionRequest, type Message, type RemoveReactionRequest } from "@aviary/gen/aviary/chat/v1/chat_pb";
import type { Database, Tx } from "@aviary/runtime/db/database";
import { failedPrecondition, invalidArgument } from "@aviary/runtime/errors";
import { subjectOf } from "../domain/not-found.ts";
import { presentEntry, presentReactions } from "../domain/present.ts";
import { ALLOWED_REACTIONS, canonicalReaction, MAX_REACTIONS_PER_USER } from "../domain/reactions.ts";
import type { ChatEvents } from "../events/publish.ts";
import type { ChatUsers } from "../peers.ts";
import { deleteReaction, insertReaction, messageKey, reactionsBy, reactionTallies } from "../store/reactions.ts";
import { requireWritable } from "./blocks.ts";
import { lockVisibleMessage, requireLive, viewersOf, type LockedMessage } from "./target.ts";

export interface ReactionDeps {
  database: Database;
  users: ChatUsers;
  events: ChatEvents;
}

export async function addReaction(deps: ReactionDeps, ctx: HandlerContext, callerId: string, request: AddReactionRequest): Promise<Message> {
  const reaction = allowed(request.reaction);
  // Not across a block in a direct conversation (taking one back stays possible).
  await requireWritable(deps, ctx, callerId, request.conversationId.toLowerCase());
  return deps.database.db.transaction(async (tx) => {
    const locked = await lockVisibleMessage(tx, callerId, request.conversationId, request.seq);
    requireLive(locked.entry, "reacted to");
    const mine = await reactionsBy(tx, locked.entry, callerId);
    if (mine.includes(reaction)) return present(tx, callerId, locked);
    if (mine.length >= MAX_REACTIONS_PER_USER) {
      throw failedPrecondition(`at most ${MAX_REACTIONS_PER_USER} different reactions per message`, [
        { type: "TOO_MANY_REACTIONS", subject: subjectOf(locked.entry), description: `you have ${mine.length} reactions on this message; take one back first` },
      ]);
    }
    await insertReaction(tx, locked.entry, callerId, reaction, new Date());
    return announce(deps, tx, callerId, locked, reaction, true);
  });
}

export async function removeReaction(deps: Pick<ReactionDeps, "database" | "events">, callerId: string, request: RemoveReactionRequest): Promise<Message> {
  const reaction = allowed(request.reaction);
  return deps.database.db.transaction(async (tx) => {
    const locked = await lockVisibleMessage(tx, callerId, request.conversationId, request.seq);
    // A tombstone has no reactions left to take back: answered as it is, like any reaction the caller does not have.
    if (!(await deleteReaction(tx, locked.entry, callerId, reaction))) return present(tx, callerId, locked);
    return announce(deps, tx, callerId, locked, reaction, false);
  });
}

/** The reaction as stored; INVALID_ARGUMENT on `reaction` for anything outside the set. */
function allowed(text: string): string {
  const reaction = canonicalReaction(text);
  if (reaction === undefined) throw invalidArgument([{ field: "reaction", description: `must be one of ${ALLOWED_REACTIONS.join(" ")}`, reason: "NOT_ALLOWED" }]);
  return reaction;
}

async function present(tx: Tx, callerId: string, locked: LockedMessage): Promise<Message> {
  return presentEntry(locked.entry, (await reactionTallies(tx, callerId, [locked.entry])).get(messageKey(locked.entry)));
}

/** The event (counts as everyone sees them) and the answer (as the caller sees them). */
async function announce(deps: Pick<ReactionDeps, "events">, tx: Tx, callerId: string, locked: LockedMessage, reaction: string, added: boolean): Promise<Message> {
  const { entry } = locked;
  const tallies = (await reactionTallies(tx, callerId, [entry])).get(messageKey(entry)) ?? [];
  const change = create(ReactionChangeSchema, {
    conversationId: entry.conversationId,
    seq: BigInt(entry.seq),
    messageId: entry.id,
    userId: callerId,
    reaction,
    added,
    reactions: presentReactions(tallies.map((t) => ({ ...t, reacted: false }))),
  });
  await deps.events.reactionChanged(tx, { change, memberIds: await viewersOf(tx, locked.conversation, entry.seq) });
  return presentEntry(entry, tallies);
}
