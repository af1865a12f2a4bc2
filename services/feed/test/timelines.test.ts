// One suite, both timeline adapters (in-memory and Redis): they must follow
// the same rules, or `make dev` would behave unlike production.
import test from "ava";
import { Redis } from "ioredis";
import { eventually, infra, privateServer, uniqueName } from "../../runtime/test-support/infra.ts";
import type { TimelineStore } from "../src/store/timelines.ts";
import { MemoryTimelineStore } from "../src/store/timelines-memory.ts";
import { openRedisTimelineStore } from "../src/store/timelines-redis.ts";
import { mergeNewestFirst } from "../src/domain/merge.ts";
import { parseCursor } from "../src/domain/page-token.ts";
import { fanoutThreshold } from "../src/domain/threshold.ts";
import { applyRules } from "../src/read/rules.ts";

const CAP = 5;
// A rebuild outlives any stall of a busy machine (a 200 ms one expired
// between two calls under a CPU hog); only the expiry test asks for a short one.
const REBUILD_TTL_MS = 60_000;
const adapters: Array<[string, (rebuildTtlMs?: number) => Promise<TimelineStore>]> = [
  ["memory", async (rebuildTtlMs = REBUILD_TTL_MS) => new MemoryTimelineStore({ cap: CAP, rebuildTtlMs })],
  ["redis", async (rebuildTtlMs = REBUILD_TTL_MS) => openRedisTimelineStore({ url: (await infra()).redisUrl, cap: CAP, prefix: `${uniqueName("tl")}:`, rebuildTtlMs })],
];

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
const entry = (n: number, score = 1_000 + n) => ({ postId: id(n), score });

async function ready(store: TimelineStore, userId: string): Promise<void> {
  await store.beginRebuild(userId);
  await store.finishRebuild(userId);
}

for (const [name, open] of adapters) {
  test(`${name}: writes never create a timeline; an existing one is capped, newest kept`, async (t) => {
    const store = await open();
    t.teardown(() => store.close());
    await store.addToExisting(["u1", "u2"], [entry(1)]);
    t.is(await store.page("u1", 10), null, "missing stays missing");
    t.false(await store.exists("u1"));
    await ready(store, "u1");
    t.deepEqual(await store.page("u1", 10), [], "an empty timeline exists");
    await store.addToExisting(["u1", "u2"], [1, 2, 3, 4, 5, 6, 7].map((n) => entry(n)));
    t.deepEqual((await store.page("u1", 10))?.map((e) => e.postId), [7, 6, 5, 4, 3].map(id), "capped at 5, oldest dropped");
    t.is(await store.page("u2", 10), null);
    await store.remove(["u1", "u2"], [id(6), id(9)]);
    t.deepEqual((await store.members("u1"))?.sort(), [3, 4, 5, 7].map(id));
    t.is(await store.members("u2"), null);
  });

  test(`${name}: a fan-out to more users than one script call writes every existing timeline and rebuild, and creates none`, async (t) => {
    const store = await open();
    t.teardown(() => store.close());
    // 1,201 users: three calls of the Redis adapter (500 each), users that exist at both ends and in the middle.
    const users = Array.from({ length: 1_201 }, (_, n) => id(10_000 + n));
    const existing = [users[0]!, users[499]!, users[500]!, users[1_200]!];
    for (const userId of existing) await ready(store, userId);
    const rebuilding = users[777]!;
    t.is(await store.beginRebuild(rebuilding), "started");
    await store.addToExistingEach([{ userIds: users, entries: [entry(1), entry(2)] }]);
    for (const userId of existing) t.deepEqual((await store.page(userId, 10))?.map((e) => e.postId), [id(2), id(1)], userId);
    t.is(await store.page(users[1]!, 10), null, "a missing timeline stays missing");
    t.is(await store.page(users[1_199]!, 10), null);
    t.true(await store.finishRebuild(rebuilding));
    t.deepEqual((await store.page(rebuilding, 10))?.map((e) => e.postId), [id(2), id(1)], "the rebuild in progress got the fan-out");
  });

  test(`${name}: a page exactly as long as the timeline, one shorter and one longer all see it exists`, async (t) => {
    const store = await open();
    t.teardown(() => store.close());
    await ready(store, "u");
    await store.addToExisting(["u"], [entry(1), entry(2), entry(3)]);
    t.deepEqual((await store.page("u", 3))?.map((e) => e.postId), [3, 2, 1].map(id), "as many posts as asked: the marker is past the page");
    t.deepEqual((await store.page("u", 2))?.map((e) => e.postId), [3, 2].map(id));
    t.deepEqual((await store.page("u", 4))?.map((e) => e.postId), [3, 2, 1].map(id), "the marker is never a post");
    t.deepEqual(await store.page("u", 2, entry(1)), [], "past the oldest post: an existing, empty page");
    t.is(await store.page("missing", 3), null);
    t.is(await store.page("missing", 3, entry(2)), null);
  });

  test(`${name}: drop deletes a timeline and its rebuild, and only that user's`, async (t) => {
    const store = await open();
    t.teardown(() => store.close());
    await ready(store, "gone");
    await ready(store, "stays");
    await store.addToExisting(["gone", "stays"], [entry(1)]);
    t.is(await store.beginRebuild("gone-rebuilding"), "started");
    await store.drop("gone");
    await store.drop("gone-rebuilding");
    t.false(await store.exists("gone"));
    t.false(await store.fillRebuild("gone-rebuilding", [entry(2)]), "the rebuild went too");
    t.deepEqual(await store.members("stays"), [id(1)]);
    await store.drop("gone");
    t.is(await store.page("gone", 10), null, "dropping again changes nothing");
  });

  test(`${name}: keyset pages break score ties by post id, descending`, async (t) => {
    const store = await open();
    t.teardown(() => store.close());
    await ready(store, "u");
    await store.addToExisting(["u"], [entry(1, 10), entry(2, 20), entry(3, 20), entry(4, 20), entry(5, 30)]);
    const first = (await store.page("u", 2))!;
    t.deepEqual(first.map((e) => e.postId), [id(5), id(4)]);
    const second = (await store.page("u", 2, first[1]))!;
    t.deepEqual(second.map((e) => e.postId), [id(3), id(2)]);
    t.deepEqual((await store.page("u", 2, second[1]))!.map((e) => e.postId), [id(1)]);
  });

  test(`${name}: one rebuild at a time; writes during it land in it; an abandoned one expires`, async (t) => {
    const store = await open();
    t.teardown(() => store.close());
    t.is(await store.beginRebuild("u"), "started");
    t.is(await store.beginRebuild("u"), "busy");
    await store.addToExisting(["u"], [entry(9)]); // fan-out while the rebuild reads Postgres
    t.is(await store.page("u", 10), null, "not visible before it is finished");
    t.true(await store.fillRebuild("u", [entry(1), entry(2)]));
    t.true(await store.finishRebuild("u"));
    t.deepEqual((await store.page("u", 10))?.map((e) => e.postId), [9, 2, 1].map(id));
    t.is(await store.beginRebuild("u"), "exists");

    // An abandoned rebuild, on a store whose rebuilds last 200 ms. A probe
    // rebuild begun after it lapses no earlier, so once the probe can be begun
    // again, "v" has expired too: polled, never a fixed sleep.
    const short = await open(200);
    t.teardown(() => short.close());
    t.is(await short.beginRebuild("v"), "started");
    t.is(await short.beginRebuild("probe"), "started");
    await eventually("the probe rebuild to expire", async () => (await short.beginRebuild("probe")) === "started", 20_000, 50);
    t.false(await short.finishRebuild("v"), "expired");
    t.is(await short.beginRebuild("v"), "started");
  });
}

test("redis: a user id that cannot be packed into the fan-out's argument is refused, and nothing is written", async (t) => {
  const store = openRedisTimelineStore({ url: (await infra()).redisUrl, cap: CAP, prefix: `${uniqueName("tl")}:` });
  t.teardown(() => store.close());
  await ready(store, "u1");
  await t.throwsAsync(store.addToExisting(["u1", "a,b"], [entry(1)]), { message: /cannot be packed/ });
  t.deepEqual(await store.page("u1", 10), []);
});

test("redis: an unchanged first page is handed out again, frozen; a changed one, a cursor page and a timeline past the memo's bound are read anew", async (t) => {
  const store = openRedisTimelineStore({ url: (await infra()).redisUrl, cap: CAP, prefix: `${uniqueName("tl")}:`, pageMemoEntries: 2 });
  t.teardown(() => store.close());
  for (const user of ["a", "b", "c"]) await ready(store, user);
  await store.addToExisting(["a", "b", "c"], [entry(1), entry(2)]);
  const first = await store.page("a", 10);
  t.deepEqual(first?.map((e) => e.postId), [id(2), id(1)]);
  t.is(await store.page("a", 10), first, "the same reply: the kept entries");
  t.true(Object.isFrozen(first), "handed out again, so nobody may change them");
  // Another limit that returns the same entries (the marker comes back with both) is the same reply.
  t.is(await store.page("a", 3), first);
  const cut = await store.page("a", 1);
  t.deepEqual(cut?.map((e) => e.postId), [id(2)], "a shorter page is another reply");
  await store.addToExisting(["a"], [entry(3)]);
  const changed = await store.page("a", 10);
  t.deepEqual(changed?.map((e) => e.postId), [id(3), id(2), id(1)], "a write changes the reply, so it is parsed anew");
  t.not(changed, first);
  t.deepEqual((await store.page("a", 10, entry(3)))?.map((e) => e.postId), [id(2), id(1)], "a cursor page reads as before");
  // The bound (2): reading b and c pushes a out.
  const b = await store.page("b", 10);
  await store.page("c", 10);
  const again = await store.page("a", 10);
  t.deepEqual(again, changed);
  t.not(again, changed, "a, the oldest kept, was let go past the bound");
  t.is(await store.page("c", 10), await store.page("c", 10));
  t.deepEqual(b?.map((e) => e.postId), [id(2), id(1)]);
  await store.drop("b");
  t.is(await store.page("b", 10), null, "a dropped timeline is missing, whatever was kept");
});

test("redis: a Redis that lost its scripts (SCRIPT FLUSH, as after a restart) still takes fan-outs, and serves pages, concurrent ones too", async (t) => {
  t.timeout(60_000);
  // A Redis of its own: flushing the shared one's scripts would hit parallel suites mid-transaction.
  const server = await privateServer("redis", "timelines-scripts");
  const store = openRedisTimelineStore({ url: server.url, cap: CAP, prefix: `${uniqueName("tl")}:` });
  const admin = new Redis(server.url);
  t.teardown(async () => {
    admin.disconnect();
    await store.close();
    await server.down();
  });
  await ready(store, "u");
  await store.addToExisting(["u"], [entry(1)]);
  t.deepEqual((await store.page("u", 10))?.map((e) => e.postId), [id(1)]);
  await admin.script("FLUSH");
  await store.addToExisting(["u"], [entry(2)]);
  const pages = await Promise.all([store.page("u", 10), store.page("u", 3), store.page("u", 1)]);
  t.deepEqual(
    pages.map((page) => page?.map((e) => e.postId)),
    [[id(2), id(1)], [id(2), id(1)], [id(2)]],
  );
});

test("merge keeps the newest distinct entries", (t) => {
  t.deepEqual(mergeNewestFirst([[entry(3), entry(1)], [entry(3), entry(2)]], 2), [entry(3), entry(2)]);
});

test("merge of one list: an ordered list is cut to the limit, one out of order or with repeats is still merged", (t) => {
  const ordered = [entry(4), entry(3), entry(2, 1_003), entry(1)];
  t.deepEqual(mergeNewestFirst([ordered, []], 3), [entry(4), entry(3), entry(2, 1_003)]);
  t.deepEqual(mergeNewestFirst([[], ordered], 9), ordered);
  t.is(mergeNewestFirst([[], ordered], 9), ordered, "as it is when it fits (not copied: the store's kept page is found by identity)");
  t.not(mergeNewestFirst([ordered, []], 3), ordered);
  t.deepEqual(mergeNewestFirst([[entry(1), entry(3), entry(2)], []], 3), [entry(3), entry(2), entry(1)]);
  t.deepEqual(mergeNewestFirst([[entry(3), entry(3), entry(1)], []], 3), [entry(3), entry(1)]);
  t.deepEqual(mergeNewestFirst([[], []], 3), []);
});

test("page-token cursors are checked for shape", (t) => {
  t.deepEqual(parseCursor({ s: 5, p: id(1) }), { score: 5, postId: id(1) });
  for (const bad of [null, {}, { s: "5", p: id(1) }, { s: 5, p: "x" }, { s: -1, p: id(1) }]) t.throws(() => parseCursor(bad));
});

test("FEED_FANOUT_THRESHOLD: a count, or off (also 0)", (t) => {
  const v = fanoutThreshold("FEED_FANOUT_THRESHOLD", { default: 10_000 });
  t.is(v.parse(undefined), 10_000);
  t.is(v.parse("2"), 2);
  t.is(v.parse("off"), null);
  t.is(v.parse("0"), null);
  t.throws(() => v.parse("-1"));
});

test("rules drop missing posts, hidden authors, and authors the reader no longer follows", (t) => {
  const post = (n: number, authorId: string) => ({ postId: id(n), authorId }) as never;
  const profile = (userId: string) => ({ userId }) as never;
  const entries = [1, 2, 3, 4, 5].map((n) => entry(n));
  const visible = applyRules("me", entries, {
    posts: new Map([
      [id(1), post(1, "me")],
      [id(2), post(2, "friend")],
      [id(3), post(3, "blocker")],
      [id(4), post(4, "unfollowed")],
    ]),
    profiles: new Map([
      ["me", profile("me")],
      ["friend", profile("friend")],
      ["unfollowed", profile("unfollowed")],
    ]),
    followed: new Set(["friend", "blocker"]),
  });
  t.deepEqual(visible.map((v) => v.entry.postId), [id(1), id(2)]);
});
