// The follow graph and blocks against real PostgreSQL, Redis and Kafka.
import test from "ava";
import { Code } from "@connectrpc/connect";
import { BadRequestSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { reachVersionKey } from "@aviary/runtime/cache/reach-versions";
import { rejection, startTestUser, type Account, type TestUser } from "./harness.ts";

let users: TestUser;
test.before(async () => {
  users = await startTestUser();
});
test.after.always(async () => {
  await users?.close();
});

async function counts(account: Account, viewer: Account = account): Promise<[bigint, bigint]> {
  const { profile } = await users.client.getProfile({ userId: account.userId }, viewer.call);
  return [profile?.followerCount ?? -1n, profile?.followingCount ?? -1n];
}

test("follow and unfollow are idempotent and keep counts exact", async (t) => {
  const [a, b] = await Promise.all([users.signUp({ label: "f-a" }), users.signUp({ label: "f-b" })]);
  await users.client.follow({ userId: b.userId }, a.call);
  await users.client.follow({ userId: b.userId }, a.call);
  // Concurrent repeats still make one edge.
  await Promise.all(Array.from({ length: 5 }, () => users.client.follow({ userId: b.userId }, a.call)));
  t.deepEqual(await counts(a), [0n, 1n]);
  t.deepEqual(await counts(b), [1n, 0n]);
  const edges = await users.query("select 1 from users.follows where follower_id = $1 and followee_id = $2", [a.userId, b.userId]);
  t.is(edges.length, 1);

  await users.client.unfollow({ userId: b.userId }, a.call);
  await users.client.unfollow({ userId: b.userId }, a.call);
  t.deepEqual(await counts(a), [0n, 0n]);
  t.deepEqual(await counts(b), [0n, 0n]);

  await users.client.follow({ userId: b.userId }, a.call);
  await users.client.follow({ userId: a.userId }, b.call);
  t.deepEqual(await counts(a), [1n, 1n]);
  t.deepEqual(await counts(b), [1n, 1n]);
});

test("self-follow is INVALID_ARGUMENT; following an unknown user is NOT_FOUND", async (t) => {
  const a = await users.signUp({ label: "self" });
  const self = await rejection(users.client.follow({ userId: a.userId }, a.call));
  t.is(self.code, Code.InvalidArgument);
  t.is(self.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field, "user_id");
  t.is((await rejection(users.client.follow({ userId: crypto.randomUUID() }, a.call))).code, Code.NotFound);
  t.deepEqual(await counts(a), [0n, 0n]);
});

test("Block gives both users a fresh reach version before it answers, again when repeated; Unblock gives none", async (t) => {
  const [blocker, blocked, other] = await Promise.all([users.signUp({ label: "reach-a" }), users.signUp({ label: "reach-b" }), users.signUp({ label: "reach-c" })]);
  const versions = () => users.service.cache.getMany([blocker, blocked, other].map((account) => reachVersionKey(account.userId)));
  t.deepEqual(await versions(), [null, null, null], "never bumped");
  await users.client.block({ userId: blocked.userId }, blocker.call);
  const first = await versions();
  t.true(first[0] !== null && first[1] !== null && first[0] !== first[1], "both bumped, each its own value");
  t.is(first[2], null, "nobody else's");
  // A repeat (e.g. a retry after a failed bump) bumps again.
  await users.client.block({ userId: blocked.userId }, blocker.call);
  const second = await versions();
  t.true(second[0] !== first[0] && second[1] !== first[1]);
  await users.client.unblock({ userId: blocked.userId }, blocker.call);
  t.deepEqual(await versions(), second, "an unblock gives reach back: nothing kept elsewhere needs to change");
  // Refused blocks bump nothing.
  await rejection(users.client.block({ userId: blocker.userId }, blocker.call));
  await rejection(users.client.block({ userId: crypto.randomUUID() }, other.call));
  t.deepEqual(await versions(), second);
});

test("a block removes follows both ways; the blocked user can neither follow nor see the blocker", async (t) => {
  const [blocker, blocked] = await Promise.all([users.signUp({ label: "blocker" }), users.signUp({ label: "blocked" })]);
  await users.client.follow({ userId: blocked.userId }, blocker.call);
  await users.client.follow({ userId: blocker.userId }, blocked.call);
  t.deepEqual(await counts(blocker), [1n, 1n]);

  await users.client.block({ userId: blocked.userId }, blocker.call);
  await users.client.block({ userId: blocked.userId }, blocker.call); // idempotent
  t.deepEqual(await counts(blocker), [0n, 0n]);
  const edges = await users.query("select 1 from users.follows where follower_id = any($1::uuid[])", [[blocker.userId, blocked.userId]]);
  t.is(edges.length, 0);

  // The blocked user: the blocker looks like nobody.
  t.is((await rejection(users.client.follow({ userId: blocker.userId }, blocked.call))).code, Code.NotFound);
  t.is((await rejection(users.client.getProfile({ userId: blocker.userId }, blocked.call))).code, Code.NotFound);
  t.is((await rejection(users.client.listFollowers({ userId: blocker.userId }, blocked.call))).code, Code.NotFound);
  const batch = await users.client.batchGetProfiles({ userIds: [blocker.userId] }, blocked.call);
  t.is(batch.profiles.length, 0);
  const name = `blk_${Date.now().toString(36)}`;
  await users.client.updateProfile({ username: name }, blocker.call);
  t.is((await rejection(users.client.getProfileByUsername({ username: name }, blocked.call))).code, Code.NotFound);

  // The blocker still finds whom they blocked by id (to unblock), not in lists.
  t.is((await users.client.getProfile({ userId: blocked.userId }, blocker.call)).profile?.userId, blocked.userId);
  t.deepEqual((await users.client.batchGetProfiles({ userIds: [blocked.userId] }, blocker.call)).profiles.map((p) => p.userId), [blocked.userId]);
  // With omit_blocked (presence), the block hides both ways; other ids are unaffected.
  t.deepEqual((await users.client.batchGetProfiles({ userIds: [blocked.userId, blocker.userId], omitBlocked: true }, blocker.call)).profiles.map((p) => p.userId), [blocker.userId]);
  t.deepEqual((await users.client.batchGetProfiles({ userIds: [blocker.userId], omitBlocked: true }, blocked.call)).profiles, []);
  // The blocker knows whom they blocked: following them needs an unblock first.
  t.is((await rejection(users.client.follow({ userId: blocked.userId }, blocker.call))).code, Code.FailedPrecondition);
  await users.client.unblock({ userId: blocked.userId }, blocker.call);
  await users.client.follow({ userId: blocked.userId }, blocker.call);
  await users.client.follow({ userId: blocker.userId }, blocked.call);
  t.deepEqual(await counts(blocker), [1n, 1n]);
  t.is((await users.client.getProfile({ userId: blocker.userId }, blocked.call)).profile?.userId, blocker.userId);
});

test("followers are keyset-paged newest first; a tampered page token is INVALID_ARGUMENT", async (t) => {
  const star = await users.signUp({ label: "star" });
  const fans: Account[] = [];
  for (let i = 0; i < 5; i++) fans.push(await users.signUp({ label: `fan${i}` }));
  for (const fan of fans) await users.client.follow({ userId: star.userId }, fan.call);

  const seen: string[] = [];
  let pageToken = "";
  let pages = 0;
  do {
    const page = await users.client.listFollowers({ userId: star.userId, pageSize: 2, pageToken }, star.call);
    seen.push(...page.followers.map((f) => f.profile?.userId ?? ""));
    pageToken = page.nextPageToken;
    pages += 1;
  } while (pageToken !== "" && pages < 10);
  t.deepEqual(seen, fans.map((f) => f.userId).reverse(), "newest first, each once");
  t.is(pages, 3);

  const following = await users.client.listFollowing({ userId: fans[0]?.userId ?? "" }, star.call);
  t.deepEqual(following.following.map((f) => f.profile?.userId), [star.userId]);

  const first = await users.client.listFollowers({ userId: star.userId, pageSize: 2 }, star.call);
  const [body, mac] = first.nextPageToken.split(".") as [string, string];
  const forged = Buffer.from(JSON.stringify({ createdAt: new Date(0).toISOString(), id: crypto.randomUUID() })).toString("base64url");
  for (const token of [`${forged}.${mac}`, `${body}.${mac.slice(0, -2)}AA`, "garbage"]) {
    const error = await rejection(users.client.listFollowers({ userId: star.userId, pageToken: token }, star.call));
    t.is(error.code, Code.InvalidArgument);
    t.is(error.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field, "page_token");
  }
  // A followers token does not work for following.
  const crossed = await rejection(users.client.listFollowing({ userId: star.userId, pageToken: first.nextPageToken }, star.call));
  t.is(crossed.code, Code.InvalidArgument);
});

test("CheckFollows answers each pair in order, up to 100", async (t) => {
  const [a, b, c] = await Promise.all([users.signUp({ label: "c-a" }), users.signUp({ label: "c-b" }), users.signUp({ label: "c-c" })]);
  await users.client.follow({ userId: b.userId }, a.call);
  await users.client.follow({ userId: a.userId }, c.call);
  const pairs = [
    { followerId: a.userId, followeeId: b.userId },
    { followerId: b.userId, followeeId: a.userId },
    { followerId: c.userId, followeeId: a.userId },
    { followerId: a.userId, followeeId: c.userId },
  ];
  const { results } = await users.client.checkFollows({ pairs }, b.call);
  t.deepEqual(
    results.map((r) => [r.followerId, r.followeeId, r.follows]),
    pairs.map((p, i) => [p.followerId, p.followeeId, i === 0 || i === 2]),
  );
  const tooMany = await rejection(
    users.client.checkFollows({ pairs: Array.from({ length: 101 }, () => ({ followerId: a.userId, followeeId: b.userId })) }, a.call),
  );
  t.is(tooMany.code, Code.InvalidArgument);
});

test("CheckFollows with 100 pairs: duplicates, reversed edges, unknown users and upper-case ids, each answered in order", async (t) => {
  const hub = await users.signUp({ label: "c100-hub" });
  const others: Account[] = [];
  for (let i = 0; i < 6; i++) others.push(await users.signUp({ label: `c100-${i}` }));
  // Edges: each even-numbered user follows the hub; the hub follows others[1].
  const edges = new Set<string>();
  for (const [i, other] of others.entries()) {
    if (i % 2 === 0) {
      await users.client.follow({ userId: hub.userId }, other.call);
      edges.add(`${other.userId}>${hub.userId}`);
    }
  }
  await users.client.follow({ userId: others[1]!.userId }, hub.call);
  edges.add(`${hub.userId}>${others[1]!.userId}`);

  const ids = [hub, ...others].map((a) => a.userId);
  const pairs = Array.from({ length: 100 }, (_, i) => {
    if (i % 10 === 9) return { followerId: crypto.randomUUID(), followeeId: hub.userId }; // nobody
    const follower = ids[(i * 3) % ids.length]!;
    const followee = ids[(i * 5 + 1) % ids.length]!;
    return { followerId: i % 7 === 0 ? follower.toUpperCase() : follower, followeeId: followee };
  });
  const expected = pairs.map((p) => edges.has(`${p.followerId.toLowerCase()}>${p.followeeId}`));
  t.true(expected.filter(Boolean).length >= 5, "the set has edges, repeated");
  t.true(expected.some((f) => !f), "and non-edges");
  t.true(new Set(pairs.map((p) => `${p.followerId}>${p.followeeId}`)).size < 100, "and duplicate pairs");

  const { results } = await users.client.checkFollows({ pairs }, hub.call);
  t.is(results.length, 100);
  t.deepEqual(
    results.map((r) => [r.followerId, r.followeeId, r.follows]),
    pairs.map((p, i) => [p.followerId.toLowerCase(), p.followeeId, expected[i]]),
  );
});
