// GetHome against the real auth, user and notification services (real
// PostgreSQL, Redis, Kafka; the notification harness brings auth, user, media
// and post). The feed is a stand-in FeedService on its own port whose
// behaviour each test sets, because these tests are about what the BFF does
// when a dependency answers, fails, hangs or is gone; the real feed behind the
// BFF is covered by the feed service's own tests and the edge REST table.
import test from "ava";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, createClient, type ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { BffService } from "@aviary/gen/aviary/bff/v1/bff_pb";
import { FeedService } from "@aviary/gen/aviary/feed/v1/feed_pb";
import { infra } from "../../runtime/test-support/infra.ts";
import { rejection, type TestUser } from "../../user/test/harness.ts";
import { startTestNotification, type TestNotification } from "../../notification/test/harness.ts";
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
let users: TestUser;
let feed: FeedStandIn;
let bff: RunningBffService;
let client: ReturnType<typeof createClient<typeof BffService>>;

test.before(async () => {
  const urls = await infra();
  notification = await startTestNotification();
  users = notification.post.user;
  feed = await startFeedStandIn();
  bff = await startBffService(
    bffConfigFromEnv({
      BFF_PORT: "0",
      AUTH_JWKS_URL: `${users.auth.service.url}/.well-known/jwks.json`,
      USER_URL: users.service.url,
      FEED_URL: feed.url,
      NOTIFICATION_URL: notification.service.url,
      REDIS_URL: urls.redisUrl,
      // Generous: a section answered late on a busy machine must not read as a failure. The slow
      // feed below takes far longer than this.
      BFF_SECTION_TIMEOUT: "5s",
      LOG_LEVEL: "silent",
    }),
  );
  client = createClient(BffService, createGrpcTransport({ baseUrl: bff.url }));
});

test.after.always(async () => {
  await bff?.close();
  await feed?.close();
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
  const unreachable = await startBffService(
    bffConfigFromEnv({
      BFF_PORT: "0",
      AUTH_JWKS_URL: `${users.auth.service.url}/.well-known/jwks.json`,
      // Nothing listens here: a closed port on loopback.
      USER_URL: "http://127.0.0.1:9",
      FEED_URL: feed.url,
      NOTIFICATION_URL: notification.service.url,
      LOG_LEVEL: "silent",
    }),
  );
  t.teardown(() => unreachable.close());
  const home = await createClient(BffService, createGrpcTransport({ baseUrl: unreachable.url })).getHome({}, me.call);
  t.is(home.profile, undefined);
  t.deepEqual(home.feed.map((item) => item.post?.postId), ["p2"]);
  t.deepEqual(home.errors.map((e) => [e.section, e.code]), [["profile", "unavailable"]]);
});

test.serial("the unread count is the notification service's, read as the caller: a like on the caller's post shows 1, chats 0", async (t) => {
  const author = await users.signUp({ label: "liked" });
  const liker = await users.signUp({ label: "liker" });
  feed.behave(() => ({ items: [], nextPageToken: "" }));
  const { post } = await notification.post.client.createPost({ text: "like me" }, author.call);
  await notification.post.client.likePost({ postId: post!.postId }, liker.call);
  // The like reaches the notification service through Kafka.
  await notification.until("the like notification", async () => (await notification.client.getUnreadCount({}, author.call)).unreadCount === 1n);

  const home = await client.getHome({}, author.call);
  t.is(home.profile?.userId, author.userId);
  t.is(home.unread?.notifications, 1n);
  t.is(home.unread?.chats, 0n, "no chat service yet");
  t.deepEqual(home.errors, []);
  // Someone else's count is their own: the BFF asked as the caller.
  t.is((await client.getHome({}, liker.call)).unread?.notifications, 0n);

  // Marking it seen is what the next home screen shows.
  await notification.client.markSeen({ upTo: { case: "time", value: timestampNow() } }, author.call);
  t.is((await client.getHome({}, author.call)).unread?.notifications, 0n);
});

test.serial("with the notification service gone, the unread section is empty and named; profile and feed still arrive", async (t) => {
  const me = await users.signUp({ label: "notifdown" });
  feed.behave(() => ({ items: [{ post: { postId: "p3" } }], nextPageToken: "" }));
  const unreachable = await startBffService(
    bffConfigFromEnv({
      BFF_PORT: "0",
      AUTH_JWKS_URL: `${users.auth.service.url}/.well-known/jwks.json`,
      USER_URL: users.service.url,
      FEED_URL: feed.url,
      // Nothing listens here: a closed port on loopback.
      NOTIFICATION_URL: "http://127.0.0.1:9",
      LOG_LEVEL: "silent",
    }),
  );
  t.teardown(() => unreachable.close());
  const home = await createClient(BffService, createGrpcTransport({ baseUrl: unreachable.url })).getHome({}, me.call);
  t.is(home.profile?.userId, me.userId);
  t.deepEqual(home.feed.map((item) => item.post?.postId), ["p3"]);
  t.is(home.unread, undefined);
  t.deepEqual(home.errors.map((e) => [e.section, e.code]), [["unread", "unavailable"]]);
});
