// Group changes after creation: AddMembers, RemoveMember, LeaveConversation,
// UpdateConversation (rename) and SetMemberRole. Each is one membership
// entry of the conversation's sequence, written under the conversation row
// lock with its ChatConversationChanged event (the conversation as it is
// now, plus who is no longer in it) in the same transaction. The rules are
// checked under that lock, so they see every concurrent change; a refused
// request writes nothing.
import type { HandlerContext } from "@connectrpc/connect";
import { MemberRole, type Conversation } from "@aviary/gen/aviary/chat/v1/chat_pb";
import type { Tx } from "@aviary/runtime/db/database";
import { failedPrecondition, invalidArgument, notFound, permissionDenied, type FieldViolation } from "@aviary/runtime/errors";
import { noSuchConversation } from "../domain/not-found.ts";
import { presentConversation } from "../domain/present.ts";
import { getConversation } from "../read/conversations.ts";
import { currentMembers, joinMembers, lockConversationOfMember, markLeft, setRoles, setTitle, type MemberRow, type Role } from "../store/conversations.ts";
import { insertMembershipChange, nextSeq, type MembershipRecord } from "../store/entries.ts";
import { checkNewMembers, type GroupDeps } from "./group.ts";

/** Members of a group, its owner included. */
export const GROUP_MAX_MEMBERS = 256;

type Locked = NonNullable<Awaited<ReturnType<typeof lockConversationOfMember>>>;

/** What one entry changes; undefined from a rule: nothing to change (nothing is written). */
interface Change {
  added?: string[];
  removed?: string[];
  title?: string;
  roles?: Array<{ userId: string; role: Role }>;
}

const blankTitle: FieldViolation = { field: "title", description: "must contain more than whitespace", reason: "BLANK" };

export async function addMembers(deps: GroupDeps, ctx: HandlerContext, callerId: string, conversationId: string, rawUserIds: readonly string[]): Promise<Conversation> {
  const userIds = rawUserIds.map((id) => id.toLowerCase());
  await checkNewMembers(deps, ctx, callerId, userIds, "user_ids");
  return (await change(deps, callerId, conversationId, (locked) => {
    requireManager(locked);
    const present = new Set(locked.members.map((m) => m.userId));
    const already = userIds.flatMap((id, index) => (present.has(id) ? [{ field: `user_ids[${index}]`, description: "is a member already", reason: "ALREADY_MEMBER" }] : []));
    if (already.length > 0) throw invalidArgument(already);
    if (locked.members.length + userIds.length > GROUP_MAX_MEMBERS) {
      throw invalidArgument([{ field: "user_ids", description: `a group has at most ${GROUP_MAX_MEMBERS} members (this one has ${locked.members.length})`, reason: "GROUP_FULL" }]);
    }
    return { added: userIds };
  }))!;
}

export async function removeMember(deps: GroupDeps, callerId: string, conversationId: string, rawUserId: string): Promise<Conversation> {
  const userId = rawUserId.toLowerCase();
  if (userId === callerId) throw invalidArgument([{ field: "user_id", description: "is the caller (use LeaveConversation)", reason: "SELF" }]);
  return (await change(deps, callerId, conversationId, (locked) => {
    requireManager(locked);
    const target = memberOf(locked, conversationId, userId);
    // The owner removes anyone; an admin removes plain members only.
    if (locked.member.role !== "owner" && target.role !== "member") throw permissionDenied("only the owner can remove the owner or an admin");
    return { removed: [userId] };
  }))!;
}

export async function leaveConversation(deps: GroupDeps, callerId: string, conversationId: string): Promise<void> {
  await change(deps, callerId, conversationId, (locked) => {
    if (locked.member.role !== "owner") return { removed: [callerId] };
    const heir = heirOf(locked.members.filter((m) => m.userId !== callerId));
    return { removed: [callerId], ...(heir ? { roles: [{ userId: heir.userId, role: "owner" as const }] } : {}) };
  });
}

export async function renameConversation(deps: GroupDeps, callerId: string, conversationId: string, title: string): Promise<Conversation> {
  if (title.trim() === "") throw invalidArgument([blankTitle]);
  return (await change(deps, callerId, conversationId, (locked) => {
    requireManager(locked);
    return locked.conversation.title === title ? undefined : { title };
  }))!;
}

export async function setMemberRole(deps: GroupDeps, callerId: string, conversationId: string, rawUserId: string, role: MemberRole): Promise<Conversation> {
  const userId = rawUserId.toLowerCase();
  if (userId === callerId) throw invalidArgument([{ field: "user_id", description: "is the caller (hand ownership to another member instead)", reason: "SELF" }]);
  const next = roleNames.get(role);
  if (next === undefined) throw invalidArgument([{ field: "role", description: "must be MEMBER, ADMIN or OWNER", reason: "DEFINED_ENUM" }]);
  return (await change(deps, callerId, conversationId, (locked) => {
    if (locked.member.role !== "owner") throw permissionDenied("only the owner can change roles");
    const target = memberOf(locked, conversationId, userId);
    if (target.role === next) return undefined;
    // Ownership moves: the former owner stays on as an admin.
    return { roles: next === "owner" ? [{ userId, role: "owner" }, { userId: callerId, role: "admin" }] : [{ userId, role: next }] };
  }))!;
}

const roleNames = new Map<MemberRole, Role>([
  [MemberRole.MEMBER, "member"],
  [MemberRole.ADMIN, "admin"],
  [MemberRole.OWNER, "owner"],
]);

/**
 * The new owner when the owner leaves: the longest-standing admin, else the
 * longest-standing member (lowest joined_seq; members who joined in the same
 * entry by user id). `remaining` comes ordered so from currentMembers.
 */
export function heirOf(remaining: readonly MemberRow[]): MemberRow | undefined {
  return remaining.find((m) => m.role === "admin") ?? remaining[0];
}

function requireManager(locked: Locked): void {
  if (locked.member.role !== "owner" && locked.member.role !== "admin") throw permissionDenied("only the owner or an admin can change the group");
}

function memberOf(locked: Locked, conversationId: string, userId: string): MemberRow {
  const target = locked.members.find((m) => m.userId === userId);
  if (!target) throw notFound("no such member", { type: "aviary.chat.v1.Member", name: `conversations/${conversationId}/members/${userId}` });
  return target;
}

/**
 * Locks the conversation, checks the caller is a current member of a group,
 * lets `rule` decide the change (or refuse it), and writes it: the next
 * sequence number, the members' rows, the entry and the event. Answers the
 * conversation as the caller sees it afterwards (undefined once they left).
 */
async function change(deps: GroupDeps, callerId: string, rawConversationId: string, rule: (locked: Locked) => Change | undefined): Promise<Conversation | undefined> {
  const conversationId = rawConversationId.toLowerCase();
  return deps.database.db.transaction(async (tx) => {
    const locked = await lockConversationOfMember(tx, conversationId, callerId);
    if (!locked) throw noSuchConversation(conversationId);
    if (locked.conversation.kind !== "group") {
      throw failedPrecondition("a direct conversation's members and title cannot change", [
        { type: "NOT_A_GROUP", subject: `conversations/${conversationId}`, description: "only groups change members, roles and titles" },
      ]);
    }
    const decided = rule(locked);
    if (decided !== undefined) await write(deps, tx, locked, callerId, decided);
    const stillMember = !(decided?.removed ?? []).includes(callerId);
    return stillMember ? getConversation(tx, callerId, conversationId) : undefined;
  });
}

async function write(deps: GroupDeps, tx: Tx, locked: Locked, actorId: string, decided: Change): Promise<void> {
  const conversationId = locked.conversation.id;
  const at = new Date();
  const seq = await nextSeq(tx, conversationId, at);
  const removed = decided.removed ?? [];
  await joinMembers(tx, conversationId, decided.added ?? [], seq);
  await markLeft(tx, conversationId, removed, at);
  await setRoles(tx, conversationId, decided.roles ?? []);
  if (decided.title !== undefined) await setTitle(tx, conversationId, decided.title);
  const membership: MembershipRecord = {
    added: decided.added ?? [],
    removed,
    ...(decided.title === undefined ? {} : { title: decided.title }),
    ...(decided.roles === undefined ? {} : { roles: decided.roles }),
  };
  await insertMembershipChange(tx, { conversationId, seq, actorId, membership, at });
  const members = (await currentMembers(tx, [conversationId])).get(conversationId) ?? [];
  const current = { ...locked.conversation, lastSeq: seq, lastActivityAt: at, title: decided.title ?? locked.conversation.title };
  await deps.events.conversationChanged(tx, { conversation: presentConversation(current, members), seq, removedMemberIds: removed });
}
