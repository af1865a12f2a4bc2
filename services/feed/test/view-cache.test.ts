// The view cache's per-process copies (read/view-cache.ts): used only while
// the shared copy lives, bounded, and never a reason for a wrong page.
import test from "ava";
import { create } from "@bufbuild/protobuf";
import { PostSchema } from "@aviary/gen/aviary/post/v1/post_pb";
import { ProfileSchema } from "@aviary/gen/aviary/user/v1/user_pb";
import { MemoryCache } from "@aviary/runtime/cache/memory";
import { createLogger } from "@aviary/runtime/log";
import { createViewCache, type CachedPage } from "../src/read/view-cache.ts";

const TTL_SECONDS = 10;
const logger = createLogger("feed-test", "silent");

/** A shared cache that counts the reads reaching it. */
function countingCache(): { cache: MemoryCache; reads: () => number } {
  const cache = new MemoryCache();
  let reads = 0;
  const get = cache.get.bind(cache);
  cache.get = (key: string) => {
    reads += 1;
    return get(key);
  };
  return { cache, reads: () => reads };
}

function page(postId: string, score: number): CachedPage {
  const post = create(PostSchema, { postId, authorId: "00000000-0000-7000-8000-0000000000aa", text: `post ${postId}` });
  const author = create(ProfileSchema, { userId: "00000000-0000-7000-8000-0000000000aa", displayName: "Ada" });
  return { items: [{ entry: { postId, score }, post, author }] };
}

const ids = (cached: CachedPage | undefined) => cached?.items.map((item) => item.post.postId);

test("a page this process wrote is answered from its own copy until the TTL, then from the shared cache", async (t) => {
  let now = 1_000_000;
  const shared = countingCache();
  const views = createViewCache({ cache: shared.cache, ttlSeconds: TTL_SECONDS, prefix: "t:", logger, now: () => now });
  const key = views.key("reader", 20, undefined, [{ postId: "00000000-0000-7000-8000-000000000001", score: 1 }]);
  await views.set(key, page("00000000-0000-7000-8000-000000000001", 1));

  t.deepEqual(ids(await views.get(key)), ["00000000-0000-7000-8000-000000000001"]);
  t.is(shared.reads(), 0, "no round trip to the shared cache");

  now += TTL_SECONDS * 1000;
  await views.get(key);
  t.is(shared.reads(), 1, "past the TTL the local copy is not used");
});

test("a page another process wrote is kept only until that write's TTL runs out", async (t) => {
  let now = 2_000_000;
  const shared = countingCache();
  const writer = createViewCache({ cache: shared.cache, ttlSeconds: TTL_SECONDS, prefix: "t:", logger, now: () => now });
  const reader = createViewCache({ cache: shared.cache, ttlSeconds: TTL_SECONDS, prefix: "t:", logger, now: () => now });
  const key = writer.key("reader", 20, undefined, [{ postId: "00000000-0000-7000-8000-000000000002", score: 2 }]);
  await writer.set(key, page("00000000-0000-7000-8000-000000000002", 2));

  now += 6_000; // the other process reads it 6 s after it was written
  t.deepEqual(ids(await reader.get(key)), ["00000000-0000-7000-8000-000000000002"]);
  t.is(shared.reads(), 1);
  now += 3_000;
  await reader.get(key);
  t.is(shared.reads(), 1, "within the write's TTL: the copy");
  now += 1_000; // 10 s after the write
  await reader.get(key);
  t.is(shared.reads(), 2, "the write's TTL is over: asked again, not kept for a TTL of its own");
});

test("the copies are bounded: past the limit the oldest write goes", async (t) => {
  const shared = countingCache();
  const views = createViewCache({ cache: shared.cache, ttlSeconds: TTL_SECONDS, prefix: "t:", logger, localEntries: 2 });
  const keys = [1, 2, 3].map((n) => views.key(`reader${n}`, 20, undefined, [{ postId: `00000000-0000-7000-8000-00000000000${n}`, score: n }]));
  for (const [i, key] of keys.entries()) await views.set(key, page(`00000000-0000-7000-8000-00000000000${i + 1}`, i + 1));

  await views.get(keys[2]!);
  await views.get(keys[1]!);
  t.is(shared.reads(), 0, "the two newest are local");
  t.deepEqual(ids(await views.get(keys[0]!)), ["00000000-0000-7000-8000-000000000001"], "the oldest still comes from the shared cache");
  t.is(shared.reads(), 1);
});

test("a different first round is a different key: no copy answers for a changed timeline", async (t) => {
  const shared = countingCache();
  const views = createViewCache({ cache: shared.cache, ttlSeconds: TTL_SECONDS, prefix: "t:", logger });
  const before = views.key("reader", 20, undefined, [{ postId: "00000000-0000-7000-8000-000000000001", score: 1 }]);
  await views.set(before, page("00000000-0000-7000-8000-000000000001", 1));
  const after = views.key("reader", 20, undefined, [
    { postId: "00000000-0000-7000-8000-000000000009", score: 9 },
    { postId: "00000000-0000-7000-8000-000000000001", score: 1 },
  ]);
  t.is(await views.get(after), undefined);
});

test("concurrent misses on one key share one hydration; a waiter whose leader failed hydrates itself", async (t) => {
  const views = createViewCache({ cache: new MemoryCache(), ttlSeconds: TTL_SECONDS, prefix: "t:", logger });
  const postId = "00000000-0000-7000-8000-000000000010";
  const key = views.key("reader", 20, undefined, [{ postId, score: 10 }]);
  let hydrations = 0;
  let finish: ((page: CachedPage) => void) | undefined;
  const slow = () => {
    hydrations += 1;
    return new Promise<CachedPage>((resolve) => (finish = resolve));
  };
  const calls = Array.from({ length: 5 }, () => views.getOrHydrate(key, slow));
  while (finish === undefined) await new Promise((resolve) => setImmediate(resolve));
  finish(page(postId, 10));
  const pages = await Promise.all(calls);
  t.is(hydrations, 1, "five concurrent misses, one hydration");
  t.true(pages.every((p) => p === pages[0]), "all got the leader's page");
  t.is(await views.getOrHydrate(key, slow), pages[0]!, "then the stored copy");
  t.is(hydrations, 1);

  const other = views.key("reader", 20, undefined, [{ postId, score: 11 }]);
  let fail: ((error: Error) => void) | undefined;
  const failing = () => new Promise<CachedPage>((_, reject) => (fail = reject));
  const leader = views.getOrHydrate(other, failing);
  while (fail === undefined) await new Promise((resolve) => setImmediate(resolve));
  let ownHydrations = 0;
  const waiter = views.getOrHydrate(other, async () => {
    ownHydrations += 1;
    return page(postId, 11);
  });
  fail(new Error("the leader's deadline"));
  await t.throwsAsync(leader, { message: "the leader's deadline" });
  t.deepEqual(ids(await waiter), [postId], "the waiter hydrated itself");
  t.is(ownHydrations, 1);
});

test("a copy answers a later read with the same first round, entry by entry; a new round replaces it", async (t) => {
  const shared = countingCache();
  const views = createViewCache({ cache: shared.cache, ttlSeconds: TTL_SECONDS, prefix: "t:", logger });
  const first = "00000000-0000-7000-8000-000000000001";
  const newer = "00000000-0000-7000-8000-000000000002";
  await views.set(views.key("reader", 20, undefined, [{ postId: first, score: 1 }]), page(first, 1));

  // What the next read's skeleton gives: equal entries in a new array.
  t.deepEqual(ids(await views.get(views.key("reader", 20, undefined, [{ postId: first, score: 1 }]))), [first]);
  t.deepEqual(ids(views.local(views.key("reader", 20, undefined, [{ postId: first, score: 1 }]))), [first], "and without waiting");
  t.is(views.local(views.key("reader", 20, undefined, [{ postId: first, score: 2 }])), undefined, "a changed round: no copy, and the shared cache is not asked");
  t.is(shared.reads(), 0, "answered by the copy");
  t.is(await views.get(views.key("reader", 20, undefined, [{ postId: first, score: 2 }])), undefined, "same post, another score: not that page");
  t.is(await views.get(views.key("reader", 21, undefined, [{ postId: first, score: 1 }])), undefined, "another size: not that page");
  t.is(await views.get(views.key("other", 20, undefined, [{ postId: first, score: 1 }])), undefined, "another reader: not that page");
  t.is(shared.reads(), 3);

  await views.set(views.key("reader", 20, undefined, [{ postId: newer, score: 2 }, { postId: first, score: 1 }]), page(newer, 2));
  t.deepEqual(ids(await views.get(views.key("reader", 20, undefined, [{ postId: first, score: 1 }]))), [first], "the older page is still in the shared cache");
  t.is(shared.reads(), 4, "its copy was replaced by the newer round's");
});
