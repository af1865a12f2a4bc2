// Rows → aviary.chat.v1 messages (responses and events share these).
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ConversationKind, ConversationSchema, MemberRole, MemberSchema, MessageSchema, type Conversation, type Member, type Message } from "@aviary/gen/aviary/chat/v1/chat_pb";
import type { ConversationRow, MemberRow } from "../store/conversations.ts";
import type { EntryRow, MembershipRecord } from "../store/entries.ts";

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

export function presentEntry(row: EntryRow): Message {
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
    ...(membership === undefined ? {} : {
          membership: {
            actorId: row.senderId,
            addedUserIds: membership.added,
            removedUserIds: membership.removed,
            title: membership.title ?? "",
            roleChanges: (membership.roles ?? []).map((change) => ({ userId: change.userId, role: roles[change.role] ?? MemberRole.UNSPECIFIED })),
          },
        }),
  });
}

/** A conversation as `viewer` sees it (unread count and last message are theirs; absent for events). */
export function presentConversation(row: ConversationRow, memberRows: readonly MemberRow[], viewer: { unread: number; last: EntryRow | undefined } = { unread: 0, last: undefined }): Conversation {
  return create(ConversationSchema, {
    conversationId: row.id,
    kind: kindOf(row),
    title: row.title ?? "",
    members: memberRows.map(presentMember),
    lastSeq: BigInt(row.lastSeq),
    unreadCount: BigInt(viewer.unread),
    ...(viewer.last === undefined ? {} : { lastMessage: presentEntry(viewer.last) }),
    createdAt: timestampFromDate(row.createdAt),
    lastActivityAt: timestampFromDate(row.lastActivityAt),
  });
}
