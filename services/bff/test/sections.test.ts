import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { GetProfileResponseSchema, ProfileSchema } from "@aviary/gen/aviary/user/v1/user_pb";
import { GetHomeFeedResponseSchema } from "@aviary/gen/aviary/feed/v1/feed_pb";
import { callerError, loadSection } from "../src/domain/sections.ts";
import { presentHome } from "../src/handlers.ts";
import { serviceUnread } from "../src/peers.ts";

const never = new AbortController().signal;

test("a section that loads carries its value", async (t) => {
  const result = await loadSection("profile", 1000, never, async () => 42);
  t.deepEqual(result, { ok: true, value: 42 });
});

test("a failing section is named with the Connect code and message of its failure", async (t) => {
  const result = await loadSection("feed", 1000, never, async () => {
    throw new ConnectError("feed store is down", Code.Unavailable);
  });
  t.false(result.ok);
  if (!result.ok) t.deepEqual(result.failure, { section: "feed", code: "unavailable", message: "feed store is down" });
});

test("a section past its budget is a deadline_exceeded failure, and its load sees the abort", async (t) => {
  let aborted = false;
  const result = await loadSection("feed", 20, never, (signal) => {
    return new Promise((_resolve, reject) => {
      signal.addEventListener("abort", () => {
        aborted = true;
        reject(new ConnectError("operation was aborted", Code.Canceled));
      });
    });
  });
  t.true(aborted);
  t.false(result.ok);
  if (!result.ok) t.is(result.failure.code, "deadline_exceeded");
});

test("a cancelled call stays cancelled (it is not the section's deadline)", async (t) => {
  const parent = new AbortController();
  const pending = loadSection("feed", 10_000, parent.signal, (signal) => new Promise((_r, reject) => signal.addEventListener("abort", () => reject(new ConnectError("aborted", Code.Canceled)))));
  parent.abort();
  const result = await pending;
  t.false(result.ok);
  if (!result.ok) t.is(result.failure.code, "canceled");
});

test("plain errors (local bugs) become unknown, without their internals in the message", async (t) => {
  const result = await loadSection("unread", 1000, never, async () => {
    throw new TypeError("x is undefined");
  });
  t.false(result.ok);
  if (!result.ok) t.deepEqual(result.failure, { section: "unread", code: "unknown", message: "this section failed" });
});

test("an unauthenticated section fails the whole call; other failures do not", async (t) => {
  const unauth = await loadSection("profile", 1000, never, async () => {
    throw new ConnectError("session has ended", Code.Unauthenticated);
  });
  const down = await loadSection("feed", 1000, never, async () => {
    throw new ConnectError("down", Code.Unavailable);
  });
  t.is(callerError([down]), undefined);
  t.is(callerError([down, unauth])?.code, Code.Unauthenticated);
});

test("presentation: loaded sections fill the response, failed ones are empty and listed", async (t) => {
  const profile = await loadSection("profile", 1000, never, async () => create(GetProfileResponseSchema, { profile: create(ProfileSchema, { userId: "u1", username: "ada" }) }));
  const feed = await loadSection("feed", 1000, never, async (): Promise<ReturnType<typeof create<typeof GetHomeFeedResponseSchema>>> => {
    throw new ConnectError("down", Code.Unavailable);
  });
  const unread = await loadSection("unread", 1000, never, async () => ({ notifications: 3n, chats: 1n }));
  const home = presentHome(profile, feed, unread);
  t.is(home.profile?.username, "ada");
  t.deepEqual(home.feed, []);
  t.is(home.feedNextPageToken, "");
  t.deepEqual(home.unread, { notifications: 3n, chats: 1n });
  t.deepEqual(home.errors, [{ section: "feed", code: "unavailable", message: "down" }]);
});

test("the unread source asks both services' GetUnreadCount with the viewer's call options; chats are conversations, not messages", async (t) => {
  const seen: unknown[] = [];
  const fake = <T>(name: string, reply: T) => ({
    getUnreadCount: async (request: unknown, options: unknown) => {
      seen.push([name, request, options]);
      return reply;
    },
  });
  const notifications = fake("notification", { unreadCount: 7n }) as unknown as Parameters<typeof serviceUnread>[0];
  const chat = fake("chat", { unreadConversations: 2n, unreadMessages: 9n }) as unknown as Parameters<typeof serviceUnread>[1];
  const call = { headers: { authorization: "Bearer viewer-token" }, signal: never, timeoutMs: 250 };
  t.deepEqual(await serviceUnread(notifications, chat).counts("u1", call), { notifications: 7n, chats: 2n });
  t.deepEqual(seen, [
    ["notification", {}, call],
    ["chat", {}, call],
  ]);
});

test("a failing chat call fails the unread source (the section), whatever the notification service answered", async (t) => {
  const notifications = { getUnreadCount: async () => ({ unreadCount: 1n }) } as unknown as Parameters<typeof serviceUnread>[0];
  const chat = {
    getUnreadCount: async () => {
      throw new ConnectError("chat store unreachable", Code.Unavailable);
    },
  } as unknown as Parameters<typeof serviceUnread>[1];
  const result = await loadSection("unread", 1000, never, (signal, timeoutMs) => serviceUnread(notifications, chat).counts("u1", { headers: {}, signal, timeoutMs }));
  t.false(result.ok);
  if (!result.ok) t.deepEqual(result.failure, { section: "unread", code: "unavailable", message: "chat store unreachable" });
});
