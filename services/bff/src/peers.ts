// The BFF's sources beyond the plain clients in handlers.ts. Each calls its
// service as the viewer (the viewer's own token, forwarded), so the callee
// applies its own rules for that user.
import type { Client } from "@connectrpc/connect";
import type { ChatService } from "@aviary/gen/aviary/chat/v1/chat_pb";
import type { NotificationService } from "@aviary/gen/aviary/notification/v1/notification_pb";
import type { UnreadSource } from "./domain/unread.ts";

/**
 * Unread counts from the services that own them, asked at once:
 * - notifications: NotificationService.GetUnreadCount over every listed
 *   kind (what the app's badge shows; the user's in-app preferences apply);
 * - chats: ChatService.GetUnreadCount's `unread_conversations`, the number of
 *   conversations with something unread (a chat tab's badge counts chats,
 *   not messages: fifty messages in one busy group are one thing to open).
 * Either call failing fails the "unread" section only, never the home screen.
 */
export function serviceUnread(notifications: Client<typeof NotificationService>, chat: Client<typeof ChatService>): UnreadSource {
  return {
    async counts(_userId, call) {
      const [notified, chats] = await Promise.all([notifications.getUnreadCount({}, call), chat.getUnreadCount({}, call)]);
      return { notifications: notified.unreadCount, chats: chats.unreadConversations };
    },
  };
}
