// A block between the two members of a direct conversation stops what adds
// to it (messages, edits, reactions): FAILED_PRECONDITION `BLOCKED`. The
// conversation stays readable, and taking something back (deleting a
// message, removing a reaction) stays possible. Asked of the user service as
// the caller, before any transaction (peer calls never hold a lock).
import type { HandlerContext } from "@connectrpc/connect";
import { asCaller } from "@aviary/runtime/context";
import type { Queryable } from "@aviary/runtime/db/database";
import { failedPrecondition } from "@aviary/runtime/errors";
import { noSuchConversation } from "../domain/not-found.ts";
import type { ChatUsers } from "../peers.ts";
import { conversationOfMember, currentMembers } from "../store/conversations.ts";

export interface BlockDeps {
  database: { db: Queryable };
  users: ChatUsers;
}

/** NOT_FOUND when the caller is not a current member; FAILED_PRECONDITION when a block stands in a direct conversation. */
export async function requireWritable(deps: BlockDeps, ctx: HandlerContext, callerId: string, conversationId: string): Promise<void> {
  const found = await conversationOfMember(deps.database.db, conversationId, callerId);
  if (!found) throw noSuchConversation(conversationId);
  if (found.conversation.kind === "direct") await requireUnblocked(deps, ctx, callerId, conversationId);
}

/** The block half of requireWritable, for a direct conversation the caller is known to be a member of. */
export async function requireUnblocked(deps: BlockDeps, ctx: HandlerContext, callerId: string, conversationId: string): Promise<void> {
  const members = (await currentMembers(deps.database.db, [conversationId])).get(conversationId) ?? [];
  await requireReachable(deps, ctx, conversationId, callerId, members.map((m) => m.userId));
}

/** requireUnblocked with the conversation's members already known (SendMessage reads them in its first lookup). */
export async function requireReachable(deps: Pick<BlockDeps, "users">, ctx: HandlerContext, conversationId: string, callerId: string, memberIds: readonly string[]): Promise<void> {
  const others = memberIds.filter((id) => id !== callerId);
  const reachable = await deps.users.reachable(callerId, others, asCaller(ctx));
  if (others.some((id) => !reachable.has(id))) {
    throw failedPrecondition("you cannot write to this user", [{ type: "BLOCKED", subject: `conversations/${conversationId}`, description: "a block stands between the two members" }]);
  }
}
