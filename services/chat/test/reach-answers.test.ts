// The kept "may write" answers (src/reach-answers.ts) on the memory cache,
// with a user service stand-in that counts what it is asked. The real user
// service bumping the versions, and chat refusing right after a block, are
// tested in access.test.ts and tools/test/account-deletion.test.ts.
import test from "ava";
import { MemoryCache } from "@aviary/runtime/cache/memory";
import type { Cache } from "@aviary/runtime/cache/cache";
import { bumpReachVersions } from "@aviary/runtime/cache/reach-versions";
import { keptReachAnswers } from "../src/reach-answers.ts";
import type { CallerOptions, ChatUsers } from "../src/peers.ts";

const call: CallerOptions = { headers: {}, signal: new AbortController().signal };

/** Everyone reaches everyone except the pairs in `blocked` (either way round). */
function userService() {
  const asked: string[][] = [];
  const blocked = new Set<string>();
  const users: ChatUsers = {
    async reachable(callerId, userIds) {
      asked.push([...userIds]);
      return new Set(userIds.filter((id) => !blocked.has(`${callerId} ${id}`) && !blocked.has(`${id} ${callerId}`)));
    },
  };
  return { users, asked, blocked };
}

function kept(cache: Cache, users: ChatUsers, options: { keepMs?: number; capacity?: number; now?: () => number } = {}) {
  return keptReachAnswers(users, cache, { keepMs: options.keepMs ?? 60_000, capacity: options.capacity ?? 100, ...(options.now ? { now: options.now } : {}) });
}

test("an allowing answer is kept while neither version moves; a bump of either user asks again", async (t) => {
  const cache = new MemoryCache();
  const { users, asked, blocked } = userService();
  const reach = kept(cache, users);
  t.deepEqual([...(await reach.reachable("ana", ["ben"], call))], ["ben"]);
  t.deepEqual([...(await reach.reachable("ana", ["ben"], call))], ["ben"]);
  t.deepEqual(asked, [["ben"]], "the second answer was the kept one");

  // Ben blocks Ana: the user service bumps both before Block answers.
  blocked.add("ben ana");
  await bumpReachVersions(cache, ["ben", "ana"]);
  t.deepEqual([...(await reach.reachable("ana", ["ben"], call))], []);
  t.deepEqual([...(await reach.reachable("ana", ["ben"], call))], [], "a refusal is not kept: asked again");
  t.is(asked.length, 3);

  // The unblock needs no bump: nothing refusing was kept.
  blocked.delete("ben ana");
  t.deepEqual([...(await reach.reachable("ana", ["ben"], call))], ["ben"]);
  t.deepEqual([...(await reach.reachable("ana", ["ben"], call))], ["ben"]);
  t.is(asked.length, 4);

  // Only the caller's version moved (Ana blocked someone else): asked again too.
  await bumpReachVersions(cache, ["ana"]);
  await reach.reachable("ana", ["ben"], call);
  t.is(asked.length, 5);
});

test("answers are per caller and per user; only the ones not kept are asked, in one call", async (t) => {
  const cache = new MemoryCache();
  const { users, asked, blocked } = userService();
  const reach = kept(cache, users);
  blocked.add("ana dan");
  t.deepEqual([...(await reach.reachable("ana", ["ben", "cat", "dan"], call))].sort(), ["ben", "cat"]);
  await bumpReachVersions(cache, ["cat"]);
  t.deepEqual([...(await reach.reachable("ana", ["ben", "cat", "dan", "ben"], call))].sort(), ["ben", "cat"]);
  t.deepEqual(asked, [["ben", "cat", "dan"], ["cat", "dan"]]);
  // Ben asking about Ana is another question than Ana asking about Ben.
  await reach.reachable("ben", ["ana"], call);
  t.deepEqual(asked.at(-1), ["ana"]);
  t.deepEqual([...(await reach.reachable("ana", [], call))], []);
  t.is(asked.length, 3, "nothing to ask about asks nothing");
});

test("a bump while the call is out is not missed: the answer is kept under the versions read before it", async (t) => {
  const cache = new MemoryCache();
  const { users, asked } = userService();
  const racing: ChatUsers = {
    async reachable(callerId, userIds, options) {
      const answer = await users.reachable(callerId, userIds, options);
      // The block commits and bumps after the user service answered, before the answer is kept.
      await bumpReachVersions(cache, ["ben"]);
      return answer;
    },
  };
  const reach = kept(cache, racing);
  await reach.reachable("ana", ["ben"], call);
  await reach.reachable("ana", ["ben"], call);
  t.is(asked.length, 2);
});

test("answers expire after keepMs, and the oldest go first past the capacity", async (t) => {
  const cache = new MemoryCache();
  const { users, asked } = userService();
  let now = 0;
  const reach = kept(cache, users, { keepMs: 1_000, capacity: 2, now: () => now });
  await reach.reachable("ana", ["ben"], call);
  now = 999;
  await reach.reachable("ana", ["ben"], call);
  t.is(asked.length, 1);
  now = 1_000;
  await reach.reachable("ana", ["ben"], call);
  t.is(asked.length, 2, "expired");

  await reach.reachable("ana", ["cat"], call);
  await reach.reachable("ana", ["dan"], call);
  t.is(asked.length, 4);
  await reach.reachable("ana", ["dan"], call);
  await reach.reachable("ana", ["cat"], call);
  t.is(asked.length, 4, "the two newest are kept");
  await reach.reachable("ana", ["ben"], call);
  t.is(asked.length, 5, "the oldest went");
});

test("when the versions cannot be read, every answer is asked for and none is kept", async (t) => {
  const cache = new MemoryCache();
  const { users, asked } = userService();
  let failing = false;
  const flaky = new Proxy(cache, {
    get(target, property) {
      if (property === "getMany" && failing) return () => Promise.reject(new Error("connection refused"));
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const reach = kept(flaky, users);
  failing = true;
  t.deepEqual([...(await reach.reachable("ana", ["ben"], call))], ["ben"]);
  t.deepEqual([...(await reach.reachable("ana", ["ben"], call))], ["ben"]);
  t.is(asked.length, 2);
  failing = false;
  await reach.reachable("ana", ["ben"], call);
  await reach.reachable("ana", ["ben"], call);
  t.is(asked.length, 3, "kept again once the cache answers");
});

test("a user service that fails fails the check (nothing is kept)", async (t) => {
  const cache = new MemoryCache();
  let calls = 0;
  const reach = kept(cache, {
    async reachable() {
      calls++;
      throw new Error("unavailable");
    },
  });
  await t.throwsAsync(reach.reachable("ana", ["ben"], call), { message: "unavailable" });
  await t.throwsAsync(reach.reachable("ana", ["ben"], call), { message: "unavailable" });
  t.is(calls, 2);
});
