// Rows → aviary.chat.v1 messages (responses and events share these).
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ConversationKind, ConversationSchema, HistoryVisibility, MemberRole, MemberSchema, MessageSchema, ReactionCountSchema, type Conversation, type Member, type Message, type ReactionCount } from "@aviary/gen/aviary/chat/v1/chat_pb";
import type { ConversationRow, MemberRow } from "../store/conversations.ts";
import type { EntryRow, MembershipRecord } from "../store/entries.ts";
import type { ReactionTally } from "../store/reactions.ts";
import { reactionRank } from "./reactions.ts";
import { presentVisibility } from "./visibility.ts";

const roles: Record<string, MemberRole> = { owner: MemberRole.OWNER, admin: MemberRole.ADMIN, member: MemberRole.MEMBER };

export function kindOf(row: ConversationRow): ConversationKind {
  return row.kind === "direct" ? ConversationKind.DIRECT : ConversationKind.GROUP;
}

export function presentMember(row: MemberRow): Member {
  return create(MemberSchema, {
    userId: row.userId,
    role: roles[row.role] ?? MemberRole.UNSPECIFIED,
    joinedSeq: BigInt(row.joinedSeq),
    readSeq: BigInt(row.readSeq),
    deliveredSeq: BigInt(row.deliveredSeq),
  });
}

/** Reaction counts in the allowed set's order (`reacted` as the tallies say: false in events). */
export function presentReactions(tallies: readonly ReactionTally[]): ReactionCount[] {
  return [...tallies]
    .sort((a, b) => reactionRank(a.reaction) - reactionRank(b.reaction))
    .map((t) => create(ReactionCountSchema, { reaction: t.reaction, count: t.count, reacted: t.reacted }));
}

/** An entry as a Message; `tallies`: its reactions as the reader sees them (none for a tombstone). */
export function presentEntry(row: EntryRow, tallies: readonly ReactionTally[] = []): Message {
  const membership = row.membership === null ? undefined : (JSON.parse(row.membership) as MembershipRecord);
  return create(MessageSchema, {
    conversationId: row.conversationId,
    seq: BigInt(row.seq),
    messageId: row.id,
    senderId: row.senderId,
    clientMessageId: row.clientMessageId ?? "",
    text: row.text ?? "",
    replyToSeq: BigInt(row.replyToSeq ?? 0),
    createdAt: timestampFromDate(row.createdAt),
    ...(row.editedAt === null ? {} : { editedAt: timestampFromDate(row.editedAt) }),
    ...(row.deletedAt === null ? {} : { deletedAt: timestampFromDate(row.deletedAt) }),
    attachments: (row.attachments ?? []).map((a) => ({ mediaId: a.mediaId, contentType: a.contentType, sizeBytes: BigInt(a.sizeBytes) })),
    reactions: row.deletedAt === null ? presentReactions(tallies) : [],
    ...(membership === undefined ? {} : {
          membership: {
            actorId: row.senderId,
            addedUserIds: membership.added,
            removedUserIds: membership.removed,
            title: membership.title ?? "",
            roleChanges: (membership.roles ?? []).map((change) => ({ userId: change.userId, role: roles[change.role] ?? MemberRole.UNSPECIFIED })),
            avatarChanged: membership.avatarMediaId !== undefined,
            avatarMediaId: membership.avatarMediaId ?? "",
            historyVisibility: membership.historyVisibility === undefined ? HistoryVisibility.UNSPECIFIED : presentVisibility(membership.historyVisibility),
          },
        }),
  });
}

/** A conversation as `viewer` sees it (unread count, last message and its reactions are theirs; absent for events). */
export function presentConversation(
  row: ConversationRow,
  memberRows: readonly MemberRow[],
  viewer: { unread: number; last: EntryRow | undefined; lastReactions?: readonly ReactionTally[] } = { unread: 0, last: undefined },
): Conversation {
  return create(ConversationSchema, {
    conversationId: row.id,
    kind: kindOf(row),
    title: row.title ?? "",
    members: memberRows.map(presentMember),
    lastSeq: BigInt(row.lastSeq),
    unreadCount: BigInt(viewer.unread),
    ...(viewer.last === undefined ? {} : { lastMessage: presentEntry(viewer.last, viewer.lastReactions) }),
    createdAt: timestampFromDate(row.createdAt),
    lastActivityAt: timestampFromDate(row.lastActivityAt),
    avatarMediaId: row.avatarMediaId ?? "",
    historyVisibility: row.kind === "group" ? presentVisibility(row.historyVisibility) : HistoryVisibility.UNSPECIFIED,
  });
}
