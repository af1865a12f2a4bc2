// GetHome against the real auth, user, notification and chat services (real
// PostgreSQL, Redis, Kafka; the notification harness brings auth, user, media
// and post; chat runs behind the same auth and user). The feed is a stand-in FeedService on its own port whose
// behaviour each test sets, because these tests are about what the BFF does
// when a dependency answers, fails, hangs or is gone; the real feed behind the
// BFF is covered by the feed service's own tests and the edge REST table.
import test, { type ExecutionContext } from "ava";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, createClient, type Client, type ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { BffService } from "@aviary/gen/aviary/bff/v1/bff_pb";
import { FeedService } from "@aviary/gen/aviary/feed/v1/feed_pb";
import { infra } from "../../runtime/test-support/infra.ts";
import { rejection, type TestUser } from "../../user/test/harness.ts";
import { startTestNotification, type TestNotification } from "../../notification/test/harness.ts";
import { startTestChat, type TestChat } from "../../chat/test/harness.ts";
import { bffConfigFromEnv, startBffService, type RunningBffService } from "../src/index.ts";

type FeedImpl = ServiceImpl<typeof FeedService>;

interface FeedStandIn {
  url: string;
  /** What GetHomeFeed does next; also records the authorization it was called with. */
  behave(impl: FeedImpl["getHomeFeed"]): void;
  lastAuthorization: string | undefined;
  close(): Promise<void>;
}

async function startFeedStandIn(): Promise<FeedStandIn> {
  let current: FeedImpl["getHomeFeed"] = () => ({ items: [], nextPageToken: "" });
  const standIn: FeedStandIn = {
    url: "",
    lastAuthorization: undefined,
    behave: (impl) => {
      current = impl;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server = http2.createServer(
    connectNodeAdapter({
      routes: (router) =>
        router.service(FeedService, {
          getHomeFeed: (req, ctx) => {
            standIn.lastAuthorization = ctx.requestHeader.get("authorization") ?? undefined;
            return current(req, ctx);
          },
        }),
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  standIn.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return standIn;
}

let notification: TestNotification;
let chat: TestChat;
let users: TestUser;
let feed: FeedStandIn;
let bff: RunningBffService;
let client: ReturnType<typeof createClient<typeof BffService>>;

test.before(async () => {
  const urls = await infra();
  notification = await startTestNotification();
  users = notification.post.user;
  chat = await startTestChat({}, { user: users });
  feed = await startFeedStandIn();
  bff = await startBffService(
    bffConfigFromEnv({
      ...dependencies(),
      REDIS_URL: urls.redisUrl,
      // Generous: a section answered late on a busy machine must not read as a failure. The slow
      // feed below takes far longer than this.
      BFF_SECTION_TIMEOUT: "5s",
      LOG_LEVEL: "silent",
    }),
  );
  client = createClient(BffService, createGrpcTransport({ baseUrl: bff.url }));
});

/** The BFF's environment for this file's services. */
const dependencies = (): Record<string, string> => ({
  BFF_PORT: "0",
  BFF_INTERNAL_PORT: "0",
  AUTH_JWKS_URL: `${users.auth.service.url}/.well-known/jwks.json`,
  USER_URL: users.service.peerUrl,
  FEED_URL: feed.url,
  NOTIFICATION_URL: notification.service.peerUrl,
  CHAT_URL: chat.service.peerUrl,
});

/** Nothing listens here: a closed port on loopback. */
const CLOSED = "http://127.0.0.1:9";

/** A client of a second BFF whose `gone` dependencies point at a closed port (stopped with the test). */
async function homeWithout(t: ExecutionContext, gone: Record<string, string>): Promise<Client<typeof BffService>> {
  const unreachable = await startBffService(bffConfigFromEnv({ ...dependencies(), ...gone, LOG_LEVEL: "silent" }));
  t.teardown(() => unreachable.close());
  return createClient(BffService, createGrpcTransport({ baseUrl: unreachable.url }));
}

test.after.always(async () => {
  await bff?.close();
  await feed?.close();
  await chat?.close();
  await notification?.close();
});

test.serial("every section loads: the caller's profile, the first feed page (called as the caller), zero unread for a new user", async (t) => {
  const me = await users.signUp({ label: "home" });
  feed.behave((req) => {
    t.is(req.pageSize, 20, "the first page has the configured size");
    return { items: [{ post: { postId: "p1", authorId: me.userId, text: "hello" }, author: { userId: me.userId } }], nextPageToken: "next" };
  });
  const home = await client.getHome({}, me.call);
  t.is(home.profile?.userId, me.userId);
  t.deepEqual(home.feed.map((item) => item.post?.postId), ["p1"]);
  t.is(home.feedNextPageToken, "next");
  t.is(home.unread?.notifications, 0n);
  t.is(home.unread?.chats, 0n);
  t.deepEqual(home.errors, []);
  t.is(feed.lastAuthorization, `Bearer ${me.token}`, "the feed is read as the caller, with the caller's own token");
});

test.serial("a failing feed leaves the feed empty and names it; the profile still arrives", async (t) => {
  const me = await users.signUp({ label: "feedfails" });
  feed.behave(() => {
    throw new ConnectError("timeline store unreachable", Code.Unavailable);
  });
  const home = await client.getHome({}, me.call);
  t.is(home.profile?.userId, me.userId);
  t.deepEqual(home.feed, []);
  t.is(home.feedNextPageToken, "");
  t.deepEqual(
    home.errors.map((e) => ({ section: e.section, code: e.code, message: e.message })),
    [{ section: "feed", code: "unavailable", message: "timeline store unreachable" }],
  );
});

test.serial("a feed slower than its budget is reported as deadline_exceeded, and the rest is answered", async (t) => {
  const me = await users.signUp({ label: "feedslow" });
  feed.behave((_req, ctx) => new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ items: [], nextPageToken: "" }), 120_000);
    ctx.signal.addEventListener("abort", () => clearTimeout(timer));
  }));
  const home = await client.getHome({}, me.call);
  t.is(home.profile?.userId, me.userId);
  t.deepEqual(home.errors.map((e) => [e.section, e.code]), [["feed", "deadline_exceeded"]]);
});

test.serial("an expired or revoked session fails the whole call, as any single call would", async (t) => {
  const me = await users.signUp({ label: "revoked" });
  feed.behave(() => {
    throw new ConnectError("session has ended; sign in again", Code.Unauthenticated);
  });
  const err = await rejection(client.getHome({}, me.call));
  t.is(err.code, Code.Unauthenticated);
});

test.serial("without a token there is no home", async (t) => {
  const err = await rejection(client.getHome({}));
  t.is(err.code, Code.Unauthenticated);
});

test.serial("with the user service gone, the profile section fails and the feed still arrives", async (t) => {
  const me = await users.signUp({ label: "userdown" });
  feed.behave(() => ({ items: [{ post: { postId: "p2" } }], nextPageToken: "" }));
  const home = await (await homeWithout(t, { USER_URL: CLOSED })).getHome({}, me.call);
  t.is(home.profile, undefined);
  t.deepEqual(home.feed.map((item) => item.post?.postId), ["p2"]);
  t.deepEqual(home.errors.map((e) => [e.section, e.code]), [["profile", "unavailable"]]);
});

test.serial("the unread counts are the notification and chat services', read as the caller: a like shows 1 notification, unread messages in two conversations 2 chats", async (t) => {
  const author = await users.signUp({ label: "liked" });
  const liker = await users.signUp({ label: "liker" });
  const friend = await users.signUp({ label: "friend" });
  feed.behave(() => ({ items: [], nextPageToken: "" }));
  const { post } = await notification.post.client.createPost({ text: "like me" }, author.call);
  await notification.post.client.likePost({ postId: post!.postId }, liker.call);
  // Three unread messages in two conversations: a direct one from the liker (two messages), a group of the friend's.
  const say = (from: typeof author, target: { case: "directUserId" | "conversationId"; value: string }, text: string) =>
    chat.client.sendMessage({ target, clientMessageId: crypto.randomUUID(), text }, from.call);
  const { message } = await say(liker, { case: "directUserId", value: author.userId }, "saw your post");
  await say(liker, { case: "conversationId", value: message!.conversationId }, "nice");
  const { conversation } = await chat.client.createGroup({ title: "Friends", memberIds: [author.userId, liker.userId] }, friend.call);
  await say(friend, { case: "conversationId", value: conversation!.conversationId }, "welcome");
  t.like(await chat.client.getUnreadCount({}, author.call), { unreadConversations: 2n, unreadMessages: 3n });
  // The like reaches the notification service through Kafka.
  await notification.until("the like notification", async () => (await notification.client.getUnreadCount({}, author.call)).unreadCount === 1n);

  const home = await client.getHome({}, author.call);
  t.is(home.profile?.userId, author.userId);
  t.is(home.unread?.notifications, 1n);
  t.is(home.unread?.chats, 2n, "conversations with something unread, not messages");
  t.deepEqual(home.errors, []);
  // Someone else's counts are their own: the BFF asked as the caller.
  t.like((await client.getHome({}, liker.call)).unread, { notifications: 0n, chats: 1n });

  // Marking them seen and read is what the next home screen shows.
  await notification.client.markSeen({ upTo: { case: "time", value: timestampNow() } }, author.call);
  await chat.client.markRead({ conversationId: message!.conversationId, readSeq: 2n }, author.call);
  t.like((await client.getHome({}, author.call)).unread, { notifications: 0n, chats: 1n });
});

for (const [service, variable] of [
  ["notification", "NOTIFICATION_URL"],
  ["chat", "CHAT_URL"],
] as const) {
  test.serial(`with the ${service} service gone, the unread section is empty and named; profile and feed still arrive`, async (t) => {
    const me = await users.signUp({ label: `${service}down` });
    feed.behave(() => ({ items: [{ post: { postId: `p-${service}` } }], nextPageToken: "" }));
    const home = await (await homeWithout(t, { [variable]: CLOSED })).getHome({}, me.call);
    t.is(home.profile?.userId, me.userId);
    t.deepEqual(home.feed.map((item) => item.post?.postId), [`p-${service}`]);
    t.is(home.unread, undefined);
    t.deepEqual(home.errors.map((e) => [e.section, e.code]), [["unread", "unavailable"]]);
  });
}
