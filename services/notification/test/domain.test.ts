// The notification service's pure parts: grouping, preferences, push text,
// retry delays, the list cursor and derived ids.
import test from "ava";
import { Kind } from "@aviary/gen/aviary/notification/v1/notification_pb";
import { groupKey, withNewestActor } from "../src/domain/grouping.ts";
import { allKinds, kindName, kindOf, listedKinds } from "../src/domain/kinds.ts";
import { defaultPreferences, effectiveChannels, resolvePreferences } from "../src/domain/preferences.ts";
import { actorName, pushBody } from "../src/domain/push-text.ts";
import { cursorPayload, parseCursor } from "../src/domain/page-token.ts";
import { stableUuid } from "../src/domain/ids.ts";
import { retryDelayMs } from "../src/push/retry.ts";

const DAY = 86_400_000;

test("likes, comments and replies group per post; mentions per mentioning post; follows per window", (t) => {
  const at = new Date("2026-12-01T10:00:00Z");
  t.is(groupKey({ kind: "like", postId: "p1", at }, DAY), "like:p1");
  t.is(groupKey({ kind: "like", postId: "p1", at: new Date(at.getTime() + 30 * DAY) }, DAY), "like:p1", "however far apart");
  t.not(groupKey({ kind: "comment", postId: "p1", at }, DAY), groupKey({ kind: "like", postId: "p1", at }, DAY));
  t.is(groupKey({ kind: "follow", at }, DAY), groupKey({ kind: "follow", at: new Date("2026-12-01T23:59:59Z") }, DAY));
  t.not(groupKey({ kind: "follow", at }, DAY), groupKey({ kind: "follow", at: new Date("2026-12-02T00:00:00Z") }, DAY));
  t.throws(() => groupKey({ kind: "mention", at }, DAY), { message: /needs a post/ });
});

test("the sample keeps the newest three distinct actors, newest first", (t) => {
  t.deepEqual(withNewestActor([], "a"), ["a"]);
  t.deepEqual(withNewestActor(["a", "b", "c"], "d"), ["d", "a", "b"]);
  t.deepEqual(withNewestActor(["a", "b", "c"], "c"), ["c", "a", "b"], "an actor acting again moves to the front, not twice");
});

test("kinds map both ways; messages are never listed", (t) => {
  for (const name of allKinds) t.is(kindName(kindOf(name)), name);
  t.false(listedKinds.includes("message"));
  t.throws(() => kindName(Kind.UNSPECIFIED));
});

test("preferences: defaults everywhere, stored changes on top, messages never in-app", (t) => {
  t.deepEqual(effectiveChannels(defaultPreferences, "like"), { inApp: true, push: true });
  const stored = resolvePreferences({ channels: { like: { inApp: false, push: true }, bogus: { inApp: false, push: false } }, onlyFromFollowing: true });
  t.deepEqual(effectiveChannels(stored, "like"), { inApp: false, push: true });
  t.deepEqual(effectiveChannels(stored, "follow"), { inApp: true, push: true });
  t.true(stored.onlyFromFollowing);
  t.deepEqual(effectiveChannels(resolvePreferences({ channels: { message: { inApp: true, push: false } }, onlyFromFollowing: false }), "message"), { inApp: false, push: false });
});

test("push text says who and how many", (t) => {
  t.is(pushBody("like", "Ana", 1), "Ana liked your post");
  t.is(pushBody("like", "Ana", 2), "Ana and 1 other liked your post");
  t.is(pushBody("follow", "Ana", 5), "Ana and 4 others followed you");
  t.is(actorName({ displayName: "  Ana ", username: "ana" }), "Ana");
  t.is(actorName({ displayName: "", username: "ana" }), "@ana");
  t.is(actorName(undefined), "Someone");
});

test("retry delays: exponential with jitter, capped; Retry-After honoured within the cap", (t) => {
  const policy = { maxAttempts: 5, initialBackoffMs: 100, maxBackoffMs: 1_000 };
  t.is(retryDelayMs(policy, 1, undefined, () => 0), 50);
  t.is(retryDelayMs(policy, 1, undefined, () => 1), 100);
  t.is(retryDelayMs(policy, 3, undefined, () => 1), 400);
  t.is(retryDelayMs(policy, 10, undefined, () => 1), 1_000, "capped");
  t.is(retryDelayMs(policy, 1, 750), 750);
  t.is(retryDelayMs(policy, 1, 60_000), 1_000, "Retry-After capped too");
  t.is(retryDelayMs(policy, 1, 0), 0);
});

test("the list cursor round-trips and refuses other shapes", (t) => {
  t.deepEqual(parseCursor(JSON.parse(JSON.stringify(cursorPayload({ beforeSeq: 42, kinds: "like" })))), { beforeSeq: 42, kinds: "like" });
  for (const bad of [null, 3, {}, { s: 0, k: "" }, { s: 1.5, k: "" }, { s: 1, k: 2 }]) t.throws(() => parseCursor(bad));
});

test("derived ids are stable, distinct, and UUID-shaped", (t) => {
  const id = stableUuid("user", "like:p1");
  t.is(id, stableUuid("user", "like:p1"));
  t.not(id, stableUuid("user", "like:p2"));
  t.regex(id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});
