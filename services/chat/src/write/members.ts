// Group changes after creation: AddMembers, RemoveMember, LeaveConversation,
// UpdateConversation (title, avatar, history visibility) and SetMemberRole.
// Each is one membership entry of the conversation's sequence, written under
// the conversation row lock with its ChatConversationChanged event (the
// conversation as it is now, plus who is no longer in it) in the same
// transaction. The rules are checked under that lock, so they see every
// concurrent change; a refused request writes nothing.
import type { HandlerContext } from "@connectrpc/connect";
import { MemberRole, type Conversation, type UpdateConversationRequest } from "@aviary/gen/aviary/chat/v1/chat_pb";
import type { Tx } from "@aviary/runtime/db/database";
import { failedPrecondition, invalidArgument, notFound, permissionDenied, type FieldViolation } from "@aviary/runtime/errors";
import { noSuchConversation } from "../domain/not-found.ts";
import { presentConversation } from "../domain/present.ts";
import { requestedVisibility, type Visibility } from "../domain/visibility.ts";
import { getConversation } from "../read/conversations.ts";
import { currentMembers, joinMembers, lockConversationOfMember, markLeft, setGroupSettings, setRoles, type MemberRow, type Role } from "../store/conversations.ts";
import { insertMembershipChange, nextSeq, type MembershipRecord } from "../store/entries.ts";
import { checkNewMembers, visibilityViolation, type GroupDeps } from "./group.ts";
import { checkedAvatar } from "./media.ts";

/** Members of a group, its owner included. */
export const GROUP_MAX_MEMBERS = 256;

type Locked = NonNullable<Awaited<ReturnType<typeof lockConversationOfMember>>>;

/** What one entry changes; undefined from a rule: nothing to change (nothing is written). */
interface Change {
  added?: string[];
  removed?: string[];
  title?: string;
  roles?: Array<{ userId: string; role: Role }>;
  /** A new avatar; null removes it. */
  avatarMediaId?: string | null;
  historyVisibility?: Visibility;
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

/**
 * UpdateConversation: the title ("" keeps it), the avatar (unset keeps it,
 * "" removes it) and the history visibility (UNSPECIFIED keeps it). Only
 * what differs from the group as it is goes into the entry; nothing
 * differing writes nothing.
 */
export async function updateConversation(deps: GroupDeps, ctx: HandlerContext, callerId: string, request: UpdateConversationRequest): Promise<Conversation> {
  const visibility = requestedVisibility(request.historyVisibility);
  const violations: FieldViolation[] = [];
  if (request.title === "" && request.avatarMediaId === undefined && visibility === undefined) {
    violations.push({ field: "title", description: "set at least one of title, avatar_media_id, history_visibility", reason: "REQUIRED" });
  }
  if (request.title !== "" && request.title.trim() === "") violations.push(blankTitle);
  if (visibility === "invalid") violations.push(visibilityViolation);
  if (violations.length > 0) throw invalidArgument(violations);
  // The media service is asked before the lock is taken (a peer call never holds it).
  const avatar = request.avatarMediaId === undefined ? undefined : await checkedAvatar(deps.media, ctx, callerId, request.avatarMediaId);
  return (await change(deps, callerId, request.conversationId, (locked) => {
    requireManager(locked);
    const current = locked.conversation;
    const decided: Change = {
      ...(request.title !== "" && request.title !== current.title ? { title: request.title } : {}),
      ...(avatar !== undefined && avatar !== current.avatarMediaId ? { avatarMediaId: avatar } : {}),
      ...(visibility !== undefined && visibility !== "invalid" && visibility !== current.historyVisibility ? { historyVisibility: visibility } : {}),
    };
    return Object.keys(decided).length === 0 ? undefined : decided;
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
  const settings = {
    ...(decided.title === undefined ? {} : { title: decided.title }),
    ...(decided.avatarMediaId === undefined ? {} : { avatarMediaId: decided.avatarMediaId }),
    ...(decided.historyVisibility === undefined ? {} : { historyVisibility: decided.historyVisibility }),
  };
  await setGroupSettings(tx, conversationId, settings);
  const membership: MembershipRecord = {
    added: decided.added ?? [],
    removed,
    ...(decided.title === undefined ? {} : { title: decided.title }),
    ...(decided.roles === undefined ? {} : { roles: decided.roles }),
    ...(decided.avatarMediaId === undefined ? {} : { avatarMediaId: decided.avatarMediaId ?? "" }),
    ...(decided.historyVisibility === undefined ? {} : { historyVisibility: decided.historyVisibility }),
  };
  await insertMembershipChange(tx, { conversationId, seq, actorId, membership, at });
  const members = (await currentMembers(tx, [conversationId])).get(conversationId) ?? [];
  const current = { ...locked.conversation, ...settings, lastSeq: seq, lastActivityAt: at };
  await deps.events.conversationChanged(tx, { conversation: presentConversation(current, members), seq, removedMemberIds: removed });
}
