/**
 * One suite for the user-stream port (realtime/), run against the in-memory
 * adapter and real Redis: offsets, history, epochs, dedup, live delivery and
 * presence must behave the same in both.
 */
import test from "ava";
import { Redis } from "ioredis";
import { MemoryUserStreams } from "../src/realtime/memory.ts";
import { openRedisUserStreams, userStreamKeys } from "../src/realtime/redis.ts";
import type { LiveItem, PresenceStatus, UserStreamHub } from "../src/realtime/user-streams.ts";
import { silentSink } from "../src/bus/log-sink.ts";
import { eventually, infra, uniqueName } from "../test-support/infra.ts";

interface Adapter {
  hub: UserStreamHub;
  /** Loses one user's history and presence, as a Redis flush would. */
  lose(userId: string): Promise<void>;
  close(): Promise<void>;
}

const bytes = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);
const user = () => crypto.randomUUID();

function collect(hub: UserStreamHub, userId: string): Promise<{ items: LiveItem[]; stop: () => Promise<void> }> {
  const items: LiveItem[] = [];
  return hub.listen(userId, (item) => items.push(item)).then((stop) => ({ items, stop }));
}

function suite(name: string, open: (history: { maxItems: number; ttlSeconds: number }) => Promise<Adapter>): void {
  const withHub = (maxItems: number, run: (a: Adapter) => Promise<void>) => async () => {
    const adapter = await open({ maxItems, ttlSeconds: 3600 });
    try {
      await run(adapter);
    } finally {
      await adapter.close();
    }
  };

  test(`${name}: durable items get gapless offsets, arrive live in order, and a repeated id is stored and sent once`, async (t) => {
    await withHub(100, async ({ hub }) => {
      const u = user();
      const other = user();
      const live = await collect(hub, u);
      const otherLive = await collect(hub, other);
      const first = await hub.publish(u, { id: "e1", payload: bytes("one") });
      t.is(first.offset, 1);
      t.false(first.duplicate);
      t.is((await hub.publish(u, { id: "e2", payload: bytes("two") })).offset, 2);
      const again = await hub.publish(u, { id: "e1", payload: bytes("one, again") });
      t.deepEqual(again, { epoch: first.epoch, offset: 1, duplicate: true, deferred: false });
      t.is((await hub.publish(u, { id: "e3", payload: new Uint8Array([0, 10, 255, 10]) })).offset, 3);
      await eventually("three live items", () => live.items.length >= 3, 5_000);
      t.deepEqual(
        live.items.map((i) => [i.epoch, i.offset, i.id]),
        [[first.epoch, 1, "e1"], [first.epoch, 2, "e2"], [first.epoch, 3, "e3"]],
      );
      t.deepEqual([...live.items[2]!.payload], [0, 10, 255, 10], "binary payloads survive, newlines included");
      t.is(str(live.items[0]!.payload), "one");
      t.deepEqual(await hub.position(u), { epoch: first.epoch, offset: 3 });
      t.is(otherLive.items.length, 0, "nothing crosses users");
      await live.stop();
      await otherLive.stop();
    })();
  });

  test(`${name}: publishMany publishes each user's items in order in one go, answers in the items' order, and skips ids already held`, async (t) => {
    await withHub(3, async ({ hub }) => {
      const [u, v] = [user(), user()];
      const live = await collect(hub, u);
      await hub.publish(u, { id: "a0", payload: bytes("earlier") });
      const results = await hub.publishMany([
        { userId: u, id: "a1", payload: bytes("1") },
        { userId: v, id: "b1", payload: bytes("1") },
        { userId: u, id: "a0", payload: bytes("again") },
        { userId: u, id: "a2", payload: new Uint8Array([0, 10, 255]) },
        { userId: v, id: "b2", payload: bytes("2") },
        { userId: u, id: "a3", payload: bytes("3") },
      ]);
      const { epoch } = await hub.position(u);
      t.deepEqual(
        results.map((r) => [r.offset, r.duplicate]),
        [[2, false], [1, false], [1, true], [3, false], [2, false], [4, false]],
      );
      t.is(results[0]!.epoch, epoch);
      t.deepEqual(await hub.position(v), { epoch: results[1]!.epoch, offset: 2 });
      await eventually("four live items", () => live.items.length >= 4, 5_000);
      t.deepEqual(live.items.map((i) => [i.offset, i.id]), [[1, "a0"], [2, "a1"], [3, "a2"], [4, "a3"]]);
      t.deepEqual([...live.items[2]!.payload], [0, 10, 255]);
      // History bounds hold within one call too: three kept, older ids forgotten with them.
      t.deepEqual((await hub.range(u, epoch, 2, 4))?.map((i) => i.id), ["a1", "a2", "a3"]);
      t.is(await hub.range(u, epoch, 1, 4), null);
      t.false((await hub.publishMany([{ userId: u, id: "a0", payload: bytes("0") }]))[0]!.duplicate, "a0 left the window");
      t.deepEqual(await hub.publishMany([]), []);
      await live.stop();
    })();
  });

  test(`${name}: concurrent publishMany calls each get their own results, a user's items in call order`, async (t) => {
    await withHub(100, async ({ hub }) => {
      const [u, v] = [user(), user()];
      const live = await collect(hub, u);
      // Started in one turn of the event loop (what a consumer's partitions do with one fetch).
      const [first, second, third] = await Promise.all([
        hub.publishMany([{ userId: u, id: "c1", payload: bytes("1") }, { userId: v, id: "d1", payload: bytes("1") }]),
        hub.publishMany([{ userId: v, id: "d2", payload: bytes("2") }, { userId: u, id: "c2", payload: bytes("2") }, { userId: u, id: "c1", payload: bytes("again") }]),
        hub.publish(u, { id: "c3", payload: bytes("3") }),
      ]);
      t.deepEqual(first.map((r) => [r.offset, r.duplicate]), [[1, false], [1, false]]);
      t.deepEqual(second.map((r) => [r.offset, r.duplicate]), [[2, false], [2, false], [1, true]]);
      t.deepEqual([third.offset, third.duplicate], [3, false]);
      await eventually("three live items", () => live.items.length >= 3, 5_000);
      t.deepEqual(live.items.map((i) => [i.offset, i.id]), [[1, "c1"], [2, "c2"], [3, "c3"]]);
      await t.throwsAsync(hub.publishMany([{ userId: u, id: "", payload: bytes("no id") }]));
      t.deepEqual(await hub.position(u), { epoch: first[0]!.epoch, offset: 3 }, "a refused call publishes nothing");
      await live.stop();
    })();
  });

  test(`${name}: an only-next item is published only right after its sequence's mark, which every other publish of the sequence raises`, async (t) => {
    await withHub(100, async (adapter) => {
      const { hub } = adapter;
      const [u, v] = [user(), user()];
      const live = await collect(hub, u);
      const item = (userId: string, id: string, key: string, seq: number, onlyNext = false) => ({ userId, id, payload: bytes(id), sequence: { key, seq, onlyNext } });
      const states = (results: readonly { offset: number; duplicate: boolean; deferred: boolean }[]) =>
        results.map((r) => (r.deferred ? "deferred" : r.duplicate ? `duplicate ${r.offset}` : `published ${r.offset}`));

      // No mark yet (a member the in-order path has not reached): deferred, even as seq 1.
      t.deepEqual(states(await hub.publishMany([item(u, "c1", "conv", 1, true), item(u, "c2", "conv", 2, true)])), ["deferred", "deferred"]);
      t.is((await hub.position(u)).offset, 0, "a deferred item stores nothing");
      // The in-order path publishes 1 and raises the mark; the fast path's 2 follows, its 4 (3 not yet delivered) waits.
      t.deepEqual(
        states(await hub.publishMany([item(u, "c1", "conv", 1), item(u, "c2", "conv", 2, true), item(u, "c4", "conv", 4, true), item(u, "x1", "other", 1, true)])),
        ["published 1", "published 2", "deferred", "deferred"],
      );
      // The in-order path then delivers 2 (already there: a duplicate, no second copy), 3 and 4.
      t.deepEqual(states(await hub.publishMany([item(u, "c2", "conv", 2), item(u, "c3", "conv", 3), item(u, "c4", "conv", 4)])), ["duplicate 2", "published 3", "published 4"]);
      // A stale only-next (its seq already passed) is deferred, not published out of order; a repeated id is still a duplicate.
      t.deepEqual(states(await hub.publishMany([item(u, "late", "conv", 3, true), item(u, "c4", "conv", 4, true), item(u, "c5", "conv", 5, true)])), ["deferred", "duplicate 4", "published 5"]);
      // Items without a sequence are untouched by marks and leave them as they are.
      t.deepEqual(states(await hub.publishMany([{ userId: u, id: "plain", payload: bytes("plain") }, item(u, "c6", "conv", 6, true)])), ["published 6", "published 7"]);
      // Marks are per user and per key.
      t.deepEqual(states(await hub.publishMany([item(v, "c7", "conv", 7, true)])), ["deferred"]);
      await eventually("seven live items", () => live.items.length >= 7, 5_000);
      t.deepEqual(live.items.map((i) => i.id), ["c1", "c2", "c3", "c4", "c5", "plain", "c6"], "each id once, in seq order");
      // A lost history loses the marks with it: the fast path waits for the in-order path again.
      await adapter.lose(u);
      t.deepEqual(states(await hub.publishMany([item(u, "c7", "conv", 7, true)])), ["deferred"]);
      // Malformed sequences are refused before anything is published.
      await t.throwsAsync(hub.publishMany([item(u, "ok", "conv", 7), item(u, "bad", "conv", 0)]));
      await t.throwsAsync(hub.publishMany([item(u, "bad", "", 8)]));
      t.is((await hub.position(u)).offset, 0);
      await live.stop();
    })();
  });

  test(`${name}: replay gives exactly what came after a position, or says it cannot`, async (t) => {
    await withHub(100, async ({ hub }) => {
      const u = user();
      const { epoch } = await hub.position(u);
      for (let i = 1; i <= 10; i++) await hub.publish(u, { id: `e${i}`, payload: bytes(`item ${i}`) });
      const after4 = await hub.replay(u, { epoch, offset: 4 });
      t.true(after4.recovered);
      if (after4.recovered) t.deepEqual(after4.items.map((i) => [i.offset, i.id, str(i.payload)]), [5, 6, 7, 8, 9, 10].map((n) => [n, `e${n}`, `item ${n}`]));
      t.deepEqual(after4.position, { epoch, offset: 10 });
      const atEnd = await hub.replay(u, { epoch, offset: 10 });
      t.true(atEnd.recovered);
      if (atEnd.recovered) t.is(atEnd.items.length, 0);
      t.false((await hub.replay(u, { epoch, offset: 11 })).recovered, "an offset never issued");
      t.false((await hub.replay(u, { epoch: "someone-elses-epoch", offset: 4 })).recovered, "another epoch");
      const other = user();
      const otherEpoch = (await hub.position(other)).epoch;
      const foreign = await hub.replay(u, { epoch: otherEpoch, offset: 0 });
      t.false(foreign.recovered, "another user's epoch is just a different epoch");
      t.deepEqual(foreign.position, { epoch, offset: 10 });
      t.deepEqual((await hub.range(u, epoch, 3, 5))?.map((i) => i.offset), [3, 4, 5]);
      t.is(await hub.range(u, "nope", 3, 5), null);
    })();
  });

  test(`${name}: a trimmed history cannot replay past its start, and ids older than it are forgotten with it`, async (t) => {
    await withHub(5, async ({ hub }) => {
      const u = user();
      const { epoch } = await hub.position(u);
      for (let i = 1; i <= 8; i++) await hub.publish(u, { id: `e${i}`, payload: bytes(`${i}`) });
      t.false((await hub.replay(u, { epoch, offset: 2 })).recovered, "item 3 was trimmed");
      const fromThree = await hub.replay(u, { epoch, offset: 3 });
      t.true(fromThree.recovered, "items 4..8 are the five kept");
      if (fromThree.recovered) t.deepEqual(fromThree.items.map((i) => i.offset), [4, 5, 6, 7, 8]);
      t.is(await hub.range(u, epoch, 2, 4), null);
      t.true((await hub.publish(u, { id: "e8", payload: bytes("8") })).duplicate, "an id still in the window");
    })();
  });

  test(`${name}: a lost history starts a new epoch, and a resume from the old one is not recovered`, async (t) => {
    await withHub(100, async (adapter) => {
      const { hub } = adapter;
      const u = user();
      const { epoch } = await hub.position(u);
      await hub.publish(u, { id: "e1", payload: bytes("1") });
      await adapter.lose(u);
      const replay = await hub.replay(u, { epoch, offset: 1 });
      t.false(replay.recovered);
      t.not(replay.position.epoch, epoch);
      t.is(replay.position.offset, 0);
      const next = await hub.publish(u, { id: "e2", payload: bytes("2") });
      t.deepEqual(next, { epoch: replay.position.epoch, offset: 1, duplicate: false, deferred: false });
    })();
  });

  test(`${name}: ephemeral signals carry no offset, are never stored, and with onlyLive skip users without a live stream`, async (t) => {
    await withHub(100, async ({ hub }) => {
      const online = user();
      const offline = user();
      const a = await collect(hub, online);
      const b = await collect(hub, offline);
      await hub.connect({ userId: online, sessionId: "s1", connectionId: "c1" }, 60_000);
      t.is(await hub.signal([online, offline], { id: "hint-1", payload: bytes("new posts") }, { onlyLive: true }), 1);
      t.is(await hub.signal([offline], { id: "hint-2", payload: bytes("to all") }), 1);
      await eventually("signals", () => a.items.length === 1 && b.items.length === 1, 5_000);
      t.deepEqual([a.items[0]!.epoch, a.items[0]!.offset, a.items[0]!.id], ["", 0, "hint-1"]);
      t.is(b.items[0]!.id, "hint-2");
      t.is((await hub.position(online)).offset, 0, "signals take no offset");
      await a.stop();
      await b.stop();
    })();
  });

  test(`${name}: a signal to more users than one script call reaches each live one once, and counts them`, async (t) => {
    await withHub(100, async ({ hub }) => {
      // 1,201 users: three calls of the Redis adapter (500 each); live users at both ends and in the middle.
      const users = Array.from({ length: 1_201 }, () => user());
      const live = [users[0]!, users[500]!, users[1_200]!];
      const listeners = await Promise.all(live.map((u) => collect(hub, u)));
      const offline = await collect(hub, users[1]!);
      for (const [n, u] of live.entries()) await hub.connect({ userId: u, sessionId: "s", connectionId: `c${n}` }, 60_000);
      t.is(await hub.signal(users, { id: "hint-many", payload: bytes("new posts") }, { onlyLive: true }), 3);
      await eventually("signals", () => listeners.every((l) => l.items.length === 1), 5_000);
      t.deepEqual(listeners.map((l) => l.items[0]!.id), ["hint-many", "hint-many", "hint-many"]);
      t.is(await hub.signal(users.slice(0, 2), { id: "hint-all", payload: bytes("to all") }), 2, "without onlyLive every user is sent to");
      await eventually("the second signal", () => offline.items.length === 1, 5_000);
      t.is(offline.items[0]!.id, "hint-all", "the offline user got only the signal sent to all");
      for (const l of [...listeners, offline]) await l.stop();
    })();
  });

  test(`${name}: presence follows connections and hints, and each change is announced once`, async (t) => {
    await withHub(100, async ({ hub }) => {
      const u = user();
      const changes: PresenceStatus[] = [];
      const stop = await hub.watchPresence(u, (s) => changes.push(s));
      t.is((await hub.presence([u]))[0]!.state, "offline");
      const phone = { userId: u, sessionId: "phone", connectionId: "p1" };
      const laptop = { userId: u, sessionId: "laptop", connectionId: "l1" };
      t.is((await hub.connect(phone, 60_000)).state, "online");
      t.is((await hub.hint(u, "phone", true, 60_000)).state, "away");
      t.is((await hub.connect(laptop, 60_000)).state, "online", "one active device is enough");
      t.is((await hub.hint(u, "laptop", true, 60_000)).state, "away");
      t.is((await hub.hint(u, "laptop", false, 60_000)).state, "online");
      t.is((await hub.disconnect(laptop)).state, "away", "the phone still says away");
      const gone = await hub.disconnect(phone);
      t.is(gone.state, "offline");
      t.true(gone.lastSeenMs !== undefined && Math.abs(gone.lastSeenMs - Date.now()) < 60_000);
      await eventually("seven announcements", () => changes.length >= 7, 5_000);
      t.deepEqual(changes.map((c) => c.state), ["online", "away", "online", "away", "online", "away", "offline"]);
      await stop();
    })();
  });

  test(`${name}: foreground sessions are the live ones without an away hint, per user, and nobody else's`, async (t) => {
    await withHub(100, async ({ hub }) => {
      const u = user();
      const other = user();
      const nobody = user();
      const sessions = async (id: string) => [...((await hub.foregroundSessions([u, other, nobody])).get(id) ?? ["missing"])].sort();
      const phone = { userId: u, sessionId: "phone", connectionId: "p1" };
      const laptop = { userId: u, sessionId: "laptop", connectionId: "l1" };
      t.deepEqual(await hub.foregroundSessions([]), new Map());
      t.deepEqual(await sessions(u), [], "no connection, no foreground");

      await hub.connect(phone, 60_000);
      await hub.connect({ ...phone, connectionId: "p2" }, 60_000);
      await hub.connect(laptop, 60_000);
      await hub.connect({ userId: other, sessionId: "tablet", connectionId: "t1" }, 60_000);
      t.deepEqual(await sessions(u), ["laptop", "phone"], "each session once, however many streams it holds");
      t.deepEqual(await sessions(other), ["tablet"]);
      t.deepEqual(await sessions(nobody), [], "a user with nothing is an empty set");

      await hub.hint(u, "phone", true, 60_000);
      t.deepEqual(await sessions(u), ["laptop"], "away is not foreground");
      await hub.hint(u, "phone", false, 60_000);
      t.deepEqual(await sessions(u), ["laptop", "phone"], "back from away");

      await hub.disconnect(laptop);
      t.deepEqual(await sessions(u), ["phone"], "a disconnected session is not foreground");
      await hub.disconnect(phone);
      t.deepEqual(await sessions(u), ["phone"], "its other stream still holds the session");
      await hub.disconnect({ ...phone, connectionId: "p2" });
      t.deepEqual(await sessions(u), []);
      // A hint without a stream makes nothing foreground.
      await hub.hint(u, "phone", false, 60_000);
      t.deepEqual(await sessions(u), []);
      t.deepEqual(await sessions(other), ["tablet"], "other users are untouched");
    })();
  });

  test(`${name}: a session whose connections expired is not in the foreground`, async (t) => {
    await withHub(100, async ({ hub }) => {
      const u = user();
      const kept = { userId: u, sessionId: "kept", connectionId: "k1" };
      // The kept connection's TTL is far beyond any stall of a busy machine
      // (with 300 ms it expired between two refreshes under a CPU hog); the
      // lapsed one's is short, but long enough to be seen once before it goes.
      await hub.connect(kept, 60_000);
      await hub.connect({ userId: u, sessionId: "lapsed", connectionId: "x1" }, 2_000);
      t.deepEqual([...((await hub.foregroundSessions([u])).get(u) ?? [])].sort(), ["kept", "lapsed"]);
      await eventually(
        "the unrefreshed connection to expire",
        async () => {
          await hub.refresh([kept], 60_000);
          return !(await hub.foregroundSessions([u])).get(u)?.has("lapsed");
        },
        30_000,
      );
      t.deepEqual([...((await hub.foregroundSessions([u])).get(u) ?? [])], ["kept"]);
    })();
  });

  test(`${name}: a connection nobody refreshes expires, and sweep announces that user offline exactly once`, async (t) => {
    await withHub(100, async ({ hub }) => {
      const u = user();
      const kept = user();
      const changes: PresenceStatus[] = [];
      const stop = await hub.watchPresence(u, (s) => changes.push(s));
      const ttlMs = 300;
      // The kept connection's TTL outlasts any stall of a busy machine, so
      // only the unrefreshed one can expire, whatever the scheduling.
      const keptTtlMs = 60_000;
      await hub.connect({ userId: u, sessionId: "s", connectionId: "dead" }, ttlMs);
      const keptConnection = { userId: kept, sessionId: "s", connectionId: "alive" };
      await hub.connect(keptConnection, keptTtlMs);
      // The kept connection is refreshed (as its instance would on every heartbeat) until u's has expired.
      await eventually(
        "the unrefreshed connection to expire",
        async () => {
          await hub.refresh([keptConnection], keptTtlMs);
          return (await hub.presence([u]))[0]!.state === "offline";
        },
        10_000,
      );
      const swept: PresenceStatus[] = [];
      await eventually("sweep to announce the expired user", async () => {
        swept.push(...(await hub.sweep(100)));
        return swept.some((s) => s.userId === u);
      }, 10_000);
      t.deepEqual(swept.filter((s) => s.userId === u).map((s) => s.state), ["offline"]);
      t.false(swept.some((s) => s.userId === kept), "a refreshed connection is not swept");
      t.false((await hub.sweep(100)).some((s) => s.userId === u), "announced once");
      await eventually("the offline change", () => changes.some((c) => c.state === "offline"), 5_000);
      t.deepEqual(changes.map((c) => c.state), ["online", "offline"]);
      // The instance was only slow, not dead: its next refresh brings the user back, announced.
      await hub.refresh([{ userId: u, sessionId: "s", connectionId: "dead" }, keptConnection], 60_000);
      t.is((await hub.presence([u]))[0]!.state, "online");
      await eventually("the online change", () => changes.length === 3, 5_000);
      t.deepEqual(changes.map((c) => c.state), ["online", "offline", "online"]);
      await stop();
    })();
  });
}

suite("memory", async (history) => {
  const hub = new MemoryUserStreams({ history });
  return { hub, lose: async () => hub.clear(), close: () => hub.close() };
});

suite("redis", async (history) => {
  const { redisUrl } = await infra();
  const prefix = `${uniqueName("rt")}:`;
  const hub = openRedisUserStreams({ url: redisUrl, history, prefix, logger: silentSink });
  const admin = new Redis(redisUrl);
  return {
    hub,
    async lose(userId) {
      const k = userStreamKeys(prefix, userId);
      await admin.del(k.epoch, k.newest, k.history, k.ids, k.marks, k.connections, k.hints, k.seen, k.announced);
    },
    async close() {
      await hub.close();
      const keys = await admin.keys(`${prefix}*`);
      if (keys.length > 0) await admin.del(...keys);
      await admin.quit();
    },
  };
});

test("redis: a publishMany call that fails does not fail the calls that shared its round trip", async (t) => {
  const { redisUrl } = await infra();
  const prefix = `${uniqueName("rt")}:`;
  const hub = openRedisUserStreams({ url: redisUrl, prefix, logger: silentSink });
  const admin = new Redis(redisUrl);
  try {
    const [broken, fine] = [user(), user()];
    // A history key of the wrong type (under a live epoch, so it is kept) makes this user's script call fail.
    const k = userStreamKeys(prefix, broken);
    await admin.mset(k.epoch, "e1", k.newest, "0", k.history, "not a stream");
    const [failed, published] = await Promise.allSettled([
      hub.publishMany([{ userId: broken, id: "x1", payload: bytes("x") }]),
      hub.publishMany([{ userId: fine, id: "y1", payload: bytes("y") }]),
    ]);
    t.is(failed.status, "rejected");
    t.is(published.status, "fulfilled");
    if (published.status === "fulfilled") t.deepEqual(published.value.map((r) => [r.offset, r.duplicate]), [[1, false]]);
    t.is((await hub.position(fine)).offset, 1);
  } finally {
    await hub.close();
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  }
});
