// What every screen may reach in the shell: navigation and the unread badges.
import { h } from "./dom.ts";
import { api } from "./transport.ts";

/** A screen draws itself into `root` and returns what to undo when the user leaves it. */
export type Screen = (root: HTMLElement, params: string[], query: URLSearchParams) => (() => void) | void;

/** Goes to a screen (`navigate("chat/c/" + id)`). */
export function navigate(path: string): void {
  location.hash = `#/${path}`;
}

export const notificationsBadge = h("span", { class: "badge", id: "notifications-badge", "aria-live": "polite", "aria-atomic": "true" });
export const chatBadge = h("span", { class: "badge", id: "chat-badge", "aria-live": "polite", "aria-atomic": "true" });

function showCount(badge: HTMLElement, count: bigint | number, noun: string): void {
  badge.replaceChildren();
  if (Number(count) === 0) return;
  badge.append(String(count), h("span", { class: "visually-hidden" }, ` ${noun}`));
}

export const badges = {
  notifications: (count: bigint) => showCount(notificationsBadge, count, "unread"),
  async refreshChat(): Promise<void> {
    const { unreadConversations } = await api.chat.getUnreadCount({});
    showCount(chatBadge, unreadConversations, "unread conversations");
  },
  async refreshNotifications(): Promise<void> {
    const { unreadCount } = await api.notification.getUnreadCount({});
    badges.notifications(unreadCount);
  },
};
