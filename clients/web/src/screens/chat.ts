// Direct and group chat: the conversation list, a conversation with live
// messages, read receipts and typing, and starting a group.
import { ConversationKind, ListMessagesRequest_Direction, type Conversation, type Message } from "@aviary/gen/aviary/chat/v1/chat_pb";
import type { Profile } from "@aviary/gen/aviary/user/v1/user_pb";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { h, field, errorLine, onSubmit, describeError, relativeTime } from "../dom.ts";
import { onLive, onResync } from "../realtime.ts";
import { badges, navigate, type Screen } from "../shell.ts";
import { api, session } from "../transport.ts";
import { displayName } from "./profile.ts";

async function profilesOf(userIds: string[]): Promise<Map<string, Profile>> {
  if (userIds.length === 0) return new Map();
  const { profiles } = await api.user.batchGetProfiles({ userIds: [...new Set(userIds)] });
  return new Map(profiles.map((p) => [p.userId, p]));
}

function conversationTitle(conversation: Conversation, profiles: Map<string, Profile>, me: string): string {
  if (conversation.kind === ConversationKind.GROUP) return conversation.title || "Group";
  const other = conversation.members.find((m) => m.userId !== me);
  return displayName(other ? profiles.get(other.userId) : undefined);
}

export const chatListScreen: Screen = (root) => {
  const me = session.current()!.userId;
  const list = h("ul", { class: "conversations" });
  const error = errorLine();
  const load = async () => {
    const { conversations } = await api.chat.listConversations({ pageSize: 50 });
    const profiles = await profilesOf(conversations.flatMap((c) => c.members.map((m) => m.userId)));
    list.replaceChildren(
      ...conversations.map((c) => {
        const unread = Number(c.unreadCount);
        return h("li", { class: "card" },
          h("a", { href: `#/chat/c/${c.conversationId}` }, conversationTitle(c, profiles, me)),
          unread > 0 ? h("span", { class: "badge" }, String(unread), h("span", { class: "visually-hidden" }, " unread")) : null,
          c.lastMessage ? h("p", { class: "muted" }, c.lastMessage.text) : null,
        );
      }),
    );
    if (conversations.length === 0) list.append(h("li", { class: "muted" }, "No conversations yet. Find someone under People and write to them."));
  };
  const show = () => void load().catch((failure: unknown) => error.show(describeError(failure)));

  const title = h("input", { type: "text", name: "title", required: true, maxlength: 100 });
  const members = h("input", { type: "text", name: "members", required: true, autocomplete: "off" });
  const groupError = errorLine();
  const group = h("form", { class: "card", "aria-label": "New group" }, h("h2", {}, "New group"), field("Title", title), field("Members (usernames, comma-separated)", members), groupError.element, h("button", { type: "submit" }, "Create group"));
  onSubmit(group, groupError, async () => {
    const names = members.value.split(",").map((n) => n.trim().replace(/^@/, "")).filter((n) => n !== "");
    const ids = await Promise.all(names.map(async (username) => (await api.user.getProfileByUsername({ username })).profile?.userId ?? ""));
    const { conversation } = await api.chat.createGroup({ title: title.value, memberIds: ids });
    if (conversation) navigate(`chat/c/${conversation.conversationId}`);
  });

  const stops = [onLive("chatMessage", show), onLive("chatConversation", show), onLive("chatReceipt", show), onResync(show)];
  show();
  root.append(h("h1", {}, "Chat"), error.element, list, group);
  return () => stops.forEach((stop) => stop());
};

/** Opens the direct conversation with a user when there is one; otherwise the first message starts it. */
export const directScreen: Screen = (root, [userId = ""]) => {
  const me = session.current()!.userId;
  api.chat.listConversations({ pageSize: 100 }).then(({ conversations }) => {
    const existing = conversations.find((c) => c.kind === ConversationKind.DIRECT && c.members.some((m) => m.userId === userId) && userId !== me);
    if (existing) location.replace(`#/chat/c/${existing.conversationId}`);
  }, () => undefined);
  return thread(root, { directUserId: userId });
};

export const conversationScreen: Screen = (root, [conversationId = ""]) => thread(root, { conversationId });

const TYPING_REPEAT_FRACTION = 0.5;

function thread(root: HTMLElement, target: { conversationId?: string; directUserId?: string }): () => void {
  const me = session.current()!.userId;
  let conversationId = target.conversationId ?? "";
  const heading = h("h1", {}, "Conversation");
  // role=log: new messages are announced, older ones are not re-read.
  const log = h("ol", { class: "messages", role: "log", "aria-label": "Messages" });
  const typing = h("p", { class: "typing", role: "status" });
  const text = h("input", { type: "text", name: "message", autocomplete: "off", required: true, maxlength: 4000 });
  const error = errorLine();
  const composer = h("form", { class: "composer" }, field("Message", text), h("button", { type: "submit" }, "Send"));
  let profiles = new Map<string, Profile>();
  /** The highest sequence each other member has read. */
  const readBy = new Map<string, bigint>();
  const shown = new Set<bigint>();
  const typingTimers = new Map<string, ReturnType<typeof setTimeout>>();
  const typingUsers = new Set<string>();

  const drawTyping = () => {
    const names = [...typingUsers].map((id) => displayName(profiles.get(id)));
    typing.textContent = names.length === 0 ? "" : `${names.join(", ")} ${names.length === 1 ? "is" : "are"} typing…`;
  };
  const stopTyping = (userId: string) => {
    clearTimeout(typingTimers.get(userId));
    typingUsers.delete(userId);
    drawTyping();
  };

  const receiptText = (seq: bigint): string => {
    const readers = [...readBy.values()].filter((read) => read >= seq).length;
    if (readers === 0) return "Sent";
    return readBy.size === 1 ? "Read" : `Read by ${readers}`;
  };
  const drawReceipts = () => {
    for (const receipt of log.querySelectorAll<HTMLElement>(".receipt")) receipt.textContent = receiptText(BigInt(receipt.dataset["seq"]!));
  };

  /** A membership change (the group's creation included) is a line of the history, not a message. */
  const membershipText = (change: NonNullable<Message["membership"]>): string => {
    const who = (id: string) => (id === me ? "you" : displayName(profiles.get(id)));
    const actor = change.actorId === me ? "You" : displayName(profiles.get(change.actorId));
    const parts: string[] = [];
    // The group's creation adds its creator with the first members.
    const created = change.addedUserIds.includes(change.actorId);
    const added = change.addedUserIds.filter((id) => id !== change.actorId);
    if (created) parts.push(added.length > 0 ? `created the group with ${added.map(who).join(", ")}` : "created the group");
    else if (added.length > 0) parts.push(`added ${added.map(who).join(", ")}`);
    if (change.removedUserIds.length > 0) parts.push(`removed ${change.removedUserIds.map(who).join(", ")}`);
    if (change.title !== "") parts.push(`named the group “${change.title}”`);
    if (change.avatarChanged) parts.push("changed the group picture");
    if (change.roleChanges.length > 0) parts.push("changed roles");
    return `${actor} ${parts.length > 0 ? parts.join(", ") : "changed the group"}`;
  };

  const messageView = (message: Message) => {
    if (message.membership) {
      return h("li", { class: "membership", "data-seq": String(message.seq) }, h("p", { class: "muted" }, membershipText(message.membership)));
    }
    const mine = message.senderId === me;
    const at = message.createdAt ? timestampDate(message.createdAt) : undefined;
    return h("li", { class: mine ? "message mine" : "message", "data-seq": String(message.seq) },
      h("span", { class: "sender" }, mine ? "You" : displayName(profiles.get(message.senderId))),
      h("p", {}, message.deletedAt ? "(deleted)" : message.text),
      h("time", { datetime: at?.toISOString() ?? "" }, relativeTime(at)),
      mine ? h("span", { class: "receipt", "data-seq": String(message.seq) }, receiptText(message.seq)) : null,
    );
  };
  const add = (message: Message) => {
    if (shown.has(message.seq)) return;
    shown.add(message.seq);
    log.append(messageView(message));
    log.lastElementChild?.scrollIntoView({ block: "end" });
  };
  /** Tells the others this device has read up to `seq`, while the conversation is on screen. */
  const markRead = (seq: bigint) => {
    if (!conversationId || document.visibilityState !== "visible") return;
    void api.chat.markRead({ conversationId, readSeq: seq, deliveredSeq: seq }).then(() => badges.refreshChat(), () => undefined);
  };

  const load = async () => {
    if (!conversationId) {
      profiles = await profilesOf([target.directUserId ?? ""]);
      heading.textContent = displayName(profiles.get(target.directUserId ?? ""));
      return;
    }
    const { conversation } = await api.chat.getConversation({ conversationId });
    if (!conversation) return;
    profiles = await profilesOf(conversation.members.map((m) => m.userId));
    heading.textContent = conversationTitle(conversation, profiles, me);
    document.title = `${heading.textContent} · Aviary`;
    readBy.clear();
    for (const member of conversation.members) if (member.userId !== me) readBy.set(member.userId, member.readSeq);
    const { messages } = await api.chat.listMessages({ conversationId, direction: ListMessagesRequest_Direction.BEFORE, pageSize: 50 });
    log.replaceChildren();
    shown.clear();
    for (const message of [...messages].reverse()) add(message);
    const newest = messages[0]?.seq;
    if (newest !== undefined) markRead(newest);
  };
  const show = () => void load().catch((failure: unknown) => error.show(describeError(failure)));

  let typingSentAt = 0;
  let typingEveryMs = 0;
  text.addEventListener("input", () => {
    if (!conversationId || text.value === "" || Date.now() - typingSentAt < typingEveryMs) return;
    typingSentAt = Date.now();
    api.chat.setTyping({ conversationId }).then(({ expiresInSeconds }) => (typingEveryMs = expiresInSeconds * 1000 * TYPING_REPEAT_FRACTION), () => undefined);
  });

  onSubmit(composer, error, async () => {
    const { message } = await api.chat.sendMessage({
      target: conversationId ? { case: "conversationId", value: conversationId } : { case: "directUserId", value: target.directUserId ?? "" },
      // Made once per message: a retried send returns the original instead of a duplicate.
      clientMessageId: crypto.randomUUID(),
      text: text.value,
    });
    text.value = "";
    typingSentAt = 0;
    if (!message) return;
    if (!conversationId) {
      // The first direct message created the conversation: continue on its own screen.
      location.replace(`#/chat/c/${message.conversationId}`);
      return;
    }
    add(message);
  });

  const stops = [
    onLive("chatMessage", (message) => {
      if (message.conversationId !== conversationId) return;
      stopTyping(message.senderId);
      add(message);
      if (message.senderId !== me) markRead(message.seq);
    }),
    onLive("chatReceipt", (receipt) => {
      if (receipt.conversationId !== conversationId || receipt.userId === me) return;
      if (receipt.readSeq > (readBy.get(receipt.userId) ?? 0n)) readBy.set(receipt.userId, receipt.readSeq);
      drawReceipts();
    }),
    onLive("chatTyping", (signal) => {
      if (signal.conversationId !== conversationId || signal.userId === me) return;
      clearTimeout(typingTimers.get(signal.userId));
      typingUsers.add(signal.userId);
      typingTimers.set(signal.userId, setTimeout(() => stopTyping(signal.userId), Math.max(1, signal.expiresInSeconds) * 1000));
      drawTyping();
    }),
    onResync(show),
  ];
  show();
  root.append(heading, h("p", {}, h("a", { href: "#/chat" }, "All conversations")), error.element, log, typing, composer);
  return () => {
    stops.forEach((stop) => stop());
    for (const timer of typingTimers.values()) clearTimeout(timer);
  };
}
