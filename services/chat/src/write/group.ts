// CreateGroup: the caller as owner, the others as members, and entry 1 of
// the sequence recording the creation (a membership change listing everyone
// added), in one transaction with its ChatConversationChanged event.
import type { HandlerContext } from "@connectrpc/connect";
import type { Conversation, CreateGroupRequest } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { asCaller } from "@aviary/runtime/context";
import type { Database } from "@aviary/runtime/db/database";
import { invalidArgument, type FieldViolation } from "@aviary/runtime/errors";
import { presentConversation } from "../domain/present.ts";
import { requestedVisibility, type Visibility } from "../domain/visibility.ts";
import type { ChatEvents } from "../events/publish.ts";
import type { ChatMedia, ChatUsers } from "../peers.ts";
import { currentMembers, insertGroup, insertMembers } from "../store/conversations.ts";
import { insertMembershipChange, nextSeq } from "../store/entries.ts";
import { checkedAvatar } from "./media.ts";

export interface GroupDeps {
  database: Database;
  users: ChatUsers;
  media: ChatMedia;
  events: ChatEvents;
}

export async function createGroup(deps: GroupDeps, ctx: HandlerContext, ownerId: string, request: CreateGroupRequest): Promise<Conversation> {
  const memberIds = request.memberIds.map((id) => id.toLowerCase());
  const blank = request.title.trim() === "" ? [{ field: "title", description: "must contain more than whitespace", reason: "BLANK" }] : [];
  const visibility = requestedVisibility(request.historyVisibility);
  const undeclared = visibility === "invalid" ? [visibilityViolation] : [];
  await checkNewMembers(deps, ctx, ownerId, memberIds, "member_ids", [...blank, ...undeclared]);
  const historyVisibility: Visibility = visibility === "full" ? "full" : "from_join";
  const avatarMediaId = await checkedAvatar(deps.media, ctx, ownerId, request.avatarMediaId);

  return deps.database.db.transaction(async (tx) => {
    const at = new Date();
    const row = await insertGroup(tx, { id: crypto.randomUUID(), kind: "group", title: request.title, directKey: null, avatarMediaId, historyVisibility, at });
    const seq = await nextSeq(tx, row.id, at);
    await insertMembers(tx, row.id, [
      // The owner's own entry is read by them.
      { userId: ownerId, role: "owner", joinedSeq: seq, readSeq: seq },
      ...memberIds.map((userId) => ({ userId, role: "member" as const, joinedSeq: seq })),
    ]);
    const entry = await insertMembershipChange(tx, { conversationId: row.id, seq, actorId: ownerId, membership: { added: [ownerId, ...memberIds], removed: [] }, at });
    const members = (await currentMembers(tx, [row.id])).get(row.id) ?? [];
    const current = { ...row, lastSeq: seq, lastActivityAt: at };
    await deps.events.conversationChanged(tx, { conversation: presentConversation(current, members, { unread: 0, last: entry }), seq });
    return presentConversation(current, members, { unread: 0, last: entry });
  });
}

/** An enum number the contract does not declare (JSON clients can only send declared names). */
export const visibilityViolation: FieldViolation = { field: "history_visibility", description: "must be HISTORY_VISIBILITY_FROM_JOIN or HISTORY_VISIBILITY_FULL", reason: "DEFINED_ENUM" };

/**
 * Users about to join (CreateGroup's member_ids, AddMembers' user_ids):
 * distinct, not the caller, and reachable by the caller (unknown users and
 * users on either side of a block with the caller are both absent there).
 * Throws INVALID_ARGUMENT on `field[i]`, with `earlier` violations first.
 */
export async function checkNewMembers(deps: Pick<GroupDeps, "users">, ctx: HandlerContext, callerId: string, userIds: readonly string[], field: string, earlier: FieldViolation[] = []): Promise<void> {
  const violations = [...earlier, ...listViolations(callerId, userIds, field)];
  if (violations.length > 0) throw invalidArgument(violations);
  const reachable = userIds.length === 0 ? new Set<string>() : await deps.users.reachable(callerId, userIds, asCaller(ctx));
  const unreachable = userIds.flatMap((id, index) => (reachable.has(id) ? [] : [{ field: `${field}[${index}]`, description: "is not a user you can add", reason: "UNKNOWN_USER" }]));
  if (unreachable.length > 0) throw invalidArgument(unreachable);
}

/** The caller is a member already, so listing them is a mistake; so is listing anyone twice. */
function listViolations(callerId: string, userIds: readonly string[], field: string): FieldViolation[] {
  const seen = new Set<string>();
  const violations: FieldViolation[] = [];
  for (const [index, id] of userIds.entries()) {
    if (id === callerId) violations.push({ field: `${field}[${index}]`, description: "is the caller (a member already)", reason: "SELF" });
    else if (seen.has(id)) violations.push({ field: `${field}[${index}]`, description: "is listed more than once", reason: "DUPLICATE" });
    seen.add(id);
  }
  return violations;
}
