// The RPCs of aviary.chat.v1.ChatService: each takes the caller from the
// verified token and hands the work to one module (write/, read/, events/).
import type { ServiceImpl } from "@connectrpc/connect";
import type { ChatService } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { requirePrincipal, type HasContextValues } from "@aviary/runtime/context";
import type { Database } from "@aviary/runtime/db/database";
import type { LogSink } from "@aviary/runtime/bus/log-sink";
import { pageSize, type PageTokens } from "@aviary/runtime/pagination";
import type { UserStreamPublisher } from "@aviary/runtime/realtime/user-streams";
import { cursorPayload, parseCursor } from "./domain/page-token.ts";
import type { TypingCoalescer } from "./domain/typing.ts";
import type { ChatEvents } from "./events/publish.ts";
import { signalTyping } from "./events/typing.ts";
import type { ChatMedia, ChatUsers } from "./peers.ts";
import { getConversation, listConversations } from "./read/conversations.ts";
import { listMessages } from "./read/history.ts";
import { getUnreadCount } from "./read/unread.ts";
import { createGroup } from "./write/group.ts";
import type { SendLimiter } from "./write/limit.ts";
import { deleteMessage, editMessage } from "./write/edit.ts";
import { addMembers, leaveConversation, removeMember, setMemberRole, updateConversation } from "./write/members.ts";
import { addReaction, removeReaction } from "./write/reactions.ts";
import { markRead } from "./write/receipts.ts";
import type { FastDelivery } from "./events/fast-path.ts";
import { sendMessage } from "./write/send.ts";
import type { SendSnapshots } from "./write/send-snapshots.ts";

export interface ChatDeps {
  database: Database;
  users: ChatUsers;
  media: ChatMedia;
  events: ChatEvents;
  limiter: SendLimiter;
  snapshots: SendSnapshots;
  streams: UserStreamPublisher;
  typing: TypingCoalescer;
  typingExpiresInSeconds: number;
  /** CHAT_EDIT_WINDOW in milliseconds. */
  editWindowMs: number;
  pageTokens: PageTokens;
  logger?: LogSink;
  /** The post-commit fast path of sends (CHAT_FAST_DELIVERY). */
  fast?: FastDelivery;
}

/** Ids are compared as lower-case strings everywhere (Postgres prints UUIDs lower-case). */
function callerId(ctx: HasContextValues): string {
  return requirePrincipal(ctx).userId.toLowerCase();
}

export function createChatHandlers(deps: ChatDeps): ServiceImpl<typeof ChatService> {
  const db = deps.database.db;
  return {
    async sendMessage(request, ctx) {
      const { message, created } = await sendMessage(deps, ctx, callerId(ctx), request);
      return { message, created };
    },

    async createGroup(request, ctx) {
      return { conversation: await createGroup(deps, ctx, callerId(ctx), request) };
    },

    async addMembers(request, ctx) {
      return { conversation: await addMembers(deps, ctx, callerId(ctx), request.conversationId, request.userIds) };
    },

    async removeMember(request, ctx) {
      return { conversation: await removeMember(deps, callerId(ctx), request.conversationId, request.userId) };
    },

    async leaveConversation(request, ctx) {
      await leaveConversation(deps, callerId(ctx), request.conversationId);
      return {};
    },

    async updateConversation(request, ctx) {
      return { conversation: await updateConversation(deps, ctx, callerId(ctx), request) };
    },

    async setMemberRole(request, ctx) {
      return { conversation: await setMemberRole(deps, callerId(ctx), request.conversationId, request.userId, request.role) };
    },

    async getConversation(request, ctx) {
      return { conversation: await getConversation(db, callerId(ctx), request.conversationId.toLowerCase()) };
    },

    async listConversations(request, ctx) {
      const size = pageSize(request.pageSize, { default: 20, max: 50 });
      const after = request.pageToken === "" ? undefined : deps.pageTokens.decode(request.pageToken, parseCursor);
      const page = await listConversations(db, callerId(ctx), size, after);
      return { conversations: page.conversations, nextPageToken: page.next === undefined ? "" : deps.pageTokens.encode(cursorPayload(page.next)) };
    },

    listMessages: (request, ctx) => listMessages(db, callerId(ctx), request),

    markRead: (request, ctx) => markRead(deps, callerId(ctx), request),

    async editMessage(request, ctx) {
      return { message: await editMessage(deps, ctx, callerId(ctx), request) };
    },

    async deleteMessage(request, ctx) {
      return { message: await deleteMessage(deps, callerId(ctx), request) };
    },

    async addReaction(request, ctx) {
      return { message: await addReaction(deps, ctx, callerId(ctx), request) };
    },

    async removeReaction(request, ctx) {
      return { message: await removeReaction(deps, callerId(ctx), request) };
    },

    getUnreadCount: (_request, ctx) => getUnreadCount(db, callerId(ctx)),

    async setTyping(request, ctx) {
      await signalTyping(
        { db, streams: deps.streams, coalescer: deps.typing, expiresInSeconds: deps.typingExpiresInSeconds, ...(deps.logger ? { logger: deps.logger } : {}) },
        callerId(ctx),
        request.conversationId.toLowerCase(),
      );
      return { expiresInSeconds: deps.typingExpiresInSeconds };
    },
  };
}
