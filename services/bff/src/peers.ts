// The BFF's sources beyond the plain clients in handlers.ts. Each calls its
// service as the viewer (the viewer's own token, forwarded), so the callee
// applies its own rules for that user.
import type { Client } from "@connectrpc/connect";
import type { NotificationService } from "@aviary/gen/aviary/notification/v1/notification_pb";
import type { UnreadSource } from "./domain/unread.ts";

/**
 * Unread counts from NotificationService.GetUnreadCount over every listed
 * kind (what the app's badge shows; the user's in-app preferences apply).
 * Chats: zero until the chat service exists (it will keep its own unread
 * state and answer here). A failing call fails the "unread" section only.
 */
export function notificationUnread(notifications: Client<typeof NotificationService>): UnreadSource {
  return {
    async counts(_userId, call) {
      const { unreadCount } = await notifications.getUnreadCount({}, call);
      return { notifications: unreadCount, chats: 0n };
    },
  };
}
