// Delivery and resume against real Redis: every device of a user gets every
// item once and in order, across instances; a resume replays exactly what
// was missed or says it cannot.
import test from "ava";
import { Redis } from "ioredis";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { RealtimeService, Rotate_Reason } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import { openRedisUserStreams, userStreamKeys } from "../../runtime/src/realtime/redis.ts";
import { publishEvent } from "../../runtime/src/realtime/events.ts";
import { silentSink } from "../../runtime/src/bus/log-sink.ts";
import { privateServer } from "../../runtime/test-support/infra.ts";
import { openStream, startTestRealtime, type TestRealtime } from "./harness.ts";

let rt: TestRealtime;
test.before(async () => {
  rt = await startTestRealtime({ REALTIME_HISTORY_MAX_ITEMS: "100" });
});
test.after.always(async () => {
  await rt?.close();
});

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test("a publish reaches every device stream of the user, in order, and nobody else's", async (t) => {
  const ana = await rt.signUp();
  const anaLaptop = await rt.anotherDevice(ana);
  const ben = await rt.signUp();
  const phone = openStream(rt.client, ana);
  const laptop = openStream(rt.client, anaLaptop);
  const bens = openStream(rt.client, ben);
  const [p, l] = await Promise.all([phone.ready(), laptop.ready(), bens.ready()]);
  t.false(p.recovered, "no resume position given");
  t.is(p.epoch, l.epoch);
  const ids = await rt.publish(ana.userId, 30);
  await phone.until("30 items on the phone", (r) => r.offsets().length >= 30);
  await laptop.until("30 items on the laptop", (r) => r.offsets().length >= 30);
  for (const reader of [phone, laptop]) {
    t.deepEqual(reader.offsets(), range(p.offset + 1, p.offset + 30));
    t.deepEqual(reader.events().filter((e) => e.offset > 0n).map((e) => e.id), ids);
  }
  // Ben's stream carries his own marker, and nothing of Ana's.
  await rt.publish(ben.userId, 1, "ben-marker");
  await bens.until("Ben's marker", (r) => r.offsets().length === 1);
  t.true(bens.events().every((e) => e.id.startsWith("ben-marker")));
  for (const r of [phone, laptop, bens]) r.cancel();
});

test("two instances: the user's devices on different instances both get everything exactly once", async (t) => {
  const second = await rt.startInstance();
  const ana = await rt.signUp();
  const onFirst = openStream(rt.client, ana);
  const onSecond = openStream(createClient(RealtimeService, createGrpcTransport({ baseUrl: second.url })), await rt.anotherDevice(ana));
  const start = await onFirst.ready();
  await onSecond.ready();
  // Concurrent producers: the offsets still come out gapless and in one order for both.
  await Promise.all([rt.publish(ana.userId, 25, "a"), rt.publish(ana.userId, 25, "b")]);
  await onFirst.until("50 on the first instance", (r) => r.offsets().length >= 50);
  await onSecond.until("50 on the second instance", (r) => r.offsets().length >= 50);
  t.deepEqual(onFirst.offsets(), range(start.offset + 1, start.offset + 50));
  t.deepEqual(onSecond.offsets(), onFirst.offsets());
  t.deepEqual(onSecond.events().map((e) => e.id), onFirst.events().map((e) => e.id));
  t.is(new Set(onFirst.events().map((e) => e.id)).size, 50, "no id twice");
  onFirst.cancel();
  onSecond.cancel();
});

test("disconnect, 50 published meanwhile, resume with (epoch, offset): exactly those 50, in order, recovered", async (t) => {
  const ana = await rt.signUp();
  const first = openStream(rt.client, ana);
  await first.ready();
  await rt.publish(ana.userId, 5, "before");
  await first.until("5 items", (r) => r.offsets().length === 5);
  const since = first.position();
  first.cancel();
  await first.ended;
  const missed = await rt.publish(ana.userId, 50, "missed");
  const resumed = openStream(rt.client, ana, { since });
  const ready = await resumed.ready();
  t.true(ready.recovered);
  t.deepEqual(ready, { epoch: since.epoch, offset: Number(since.offset) + 50, recovered: true });
  await resumed.until("the 50 missed items", (r) => r.offsets().length >= 50);
  // Live items after the replay continue the sequence.
  const after = await rt.publish(ana.userId, 3, "after");
  await resumed.until("3 live items after the replay", (r) => r.offsets().length >= 53);
  t.deepEqual(resumed.offsets(), range(Number(since.offset) + 1, Number(since.offset) + 53));
  t.deepEqual(resumed.events().filter((e) => e.offset > 0n).map((e) => e.id), [...missed, ...after]);
  resumed.cancel();
});

test("items published while a resume replays are neither lost nor doubled", async (t) => {
  const ana = await rt.signUp();
  const first = openStream(rt.client, ana);
  const { epoch, offset } = await first.ready();
  first.cancel();
  await rt.publish(ana.userId, 40, "missed");
  const publishing = rt.publish(ana.userId, 40, "racing");
  const resumed = openStream(rt.client, ana, { since: { epoch, offset: BigInt(offset) } });
  t.true((await resumed.ready()).recovered);
  await publishing;
  await resumed.until("all 80", (r) => r.offsets().length >= 80);
  t.deepEqual(resumed.offsets(), range(offset + 1, offset + 80));
  resumed.cancel();
});

test("resume after the history was trimmed: recovered false at the current position, and nothing old is delivered", async (t) => {
  const ana = await rt.signUp();
  const first = openStream(rt.client, ana);
  const { epoch, offset } = await first.ready();
  first.cancel();
  await rt.publish(ana.userId, 120, "overflow"); // the history keeps 100
  const resumed = openStream(rt.client, ana, { since: { epoch, offset: BigInt(offset) } });
  const ready = await resumed.ready();
  t.false(ready.recovered);
  t.deepEqual(ready, { epoch, offset: offset + 120, recovered: false });
  await rt.publish(ana.userId, 1, "next");
  await resumed.until("the next live item", (r) => r.offsets().length === 1);
  t.deepEqual(resumed.offsets(), [offset + 121], "only what came after the position");
  resumed.cancel();
});

test("resume after the epoch changed (history lost): recovered false, a new epoch, and a live stream told to resync", async (t) => {
  const ana = await rt.signUp();
  const watching = openStream(rt.client, ana);
  const before = await watching.ready();
  await rt.publish(ana.userId, 3, "old");
  await watching.until("3 items", (r) => r.offsets().length === 3);
  // Lose the user's history, as a flush or eviction would.
  const redis = new Redis(rt.env["REDIS_URL"]!);
  const k = userStreamKeys(rt.prefix, ana.userId);
  await redis.del(k.epoch, k.newest, k.history, k.ids);
  await redis.quit();
  await rt.publish(ana.userId, 1, "new-epoch");
  await watching.until("the stream to end", (r) => r.isEnded());
  const last = watching.frames.at(-1);
  t.is(last?.frame.case, "rotate");
  t.is(last?.frame.case === "rotate" ? last.frame.value.reason : undefined, Rotate_Reason.RESYNC);
  t.deepEqual(watching.offsets(), [1, 2, 3].map((n) => before.offset + n), "the new epoch's item is not passed off as offset 4");
  const resumed = openStream(rt.client, ana, { since: watching.position() });
  const ready = await resumed.ready();
  t.false(ready.recovered);
  t.not(ready.epoch, before.epoch);
  t.is(ready.offset, 1);
  resumed.cancel();
});

test("foreign and made-up resume positions are just not recovered, and never deliver another user's items", async (t) => {
  const ana = await rt.signUp();
  const ben = await rt.signUp();
  await rt.publish(ben.userId, 5, "bens");
  const bens = openStream(rt.client, ben);
  const benPosition = await bens.ready();
  bens.cancel();
  const anaWithBens = openStream(rt.client, ana, { since: { epoch: benPosition.epoch, offset: 0n } });
  const ready = await anaWithBens.ready();
  t.false(ready.recovered);
  t.not(ready.epoch, benPosition.epoch);
  const madeUp = openStream(rt.client, ana, { since: { epoch: ready.epoch, offset: 999n } });
  t.false((await madeUp.ready()).recovered, "an offset never issued");
  await rt.publish(ana.userId, 1, "anas");
  await anaWithBens.until("Ana's item", (r) => r.offsets().length === 1);
  t.true(anaWithBens.events().every((e) => e.id.startsWith("anas")));
  anaWithBens.cancel();
  madeUp.cancel();
});

test("Redis flushed: a live stream is told to resync at the next item, and the resume says recovered false, never a silent gap", async (t) => {
  const redis = await privateServer("redis", "realtime-flush");
  const instance = await rt.startInstance({ REALTIME_REDIS_URL: redis.url });
  const producer = openRedisUserStreams({ url: redis.url, prefix: rt.prefix, logger: silentSink });
  try {
    const ana = await rt.signUp();
    const client = createClient(RealtimeService, createGrpcTransport({ baseUrl: instance.url }));
    const publish = (label: string) => publishEvent(producer, ana.userId, `${label}-${crypto.randomUUID()}`, { case: "feedUpdated", value: { newestPostId: label } });
    const watching = openStream(client, ana);
    const before = await watching.ready();
    for (let i = 0; i < 5; i++) await publish("before-flush");
    await watching.until("5 items", (r) => r.offsets().length === 5);
    const admin = new Redis(redis.url);
    await admin.flushall();
    await admin.quit();
    await publish("after-flush");
    await watching.until("the resync", (r) => r.isEnded());
    const last = watching.frames.at(-1);
    t.is(last?.frame.case === "rotate" ? last.frame.value.reason : undefined, Rotate_Reason.RESYNC);
    t.is(watching.offsets().length, 5, "the item of the new history is not delivered as if it continued the old one");
    const resumed = openStream(client, ana, { since: watching.position() });
    const ready = await resumed.ready();
    t.false(ready.recovered);
    t.not(ready.epoch, before.epoch);
    resumed.cancel();
  } finally {
    await producer.close();
    await instance.close();
    await redis.down();
  }
});

test("the subscriber connection dropping loses nothing: what was published meanwhile is caught up from the history", async (t) => {
  const redis = await privateServer("redis", "realtime-resubscribe");
  const instance = await rt.startInstance({ REALTIME_REDIS_URL: redis.url });
  const producer = openRedisUserStreams({ url: redis.url, prefix: rt.prefix, logger: silentSink });
  const admin = new Redis(redis.url);
  try {
    const ana = await rt.signUp();
    const client = createClient(RealtimeService, createGrpcTransport({ baseUrl: instance.url }));
    const publish = (label: string) => publishEvent(producer, ana.userId, `${label}-${crypto.randomUUID()}`, { case: "feedUpdated", value: { newestPostId: label } });
    const watching = openStream(client, ana);
    const { offset } = await watching.ready();
    await publish("before");
    await watching.until("the first item", (r) => r.offsets().length === 1);
    // Cut the instance's subscriber connection, and publish while it reconnects
    // (ioredis waits at least 200 ms before its first retry).
    t.true(Number(await admin.client("KILL", "TYPE", "pubsub")) >= 1);
    await publish("while-away-1");
    await publish("while-away-2");
    await watching.until("the items published while the subscriber was away", (r) => r.offsets().length >= 3);
    t.deepEqual(watching.offsets(), [offset + 1, offset + 2, offset + 3]);
    await publish("after");
    await watching.until("the next live item", (r) => r.offsets().length >= 4);
    t.deepEqual(watching.offsets(), [offset + 1, offset + 2, offset + 3, offset + 4]);
    t.false(watching.isEnded());
    watching.cancel();
  } finally {
    await admin.quit();
    await producer.close();
    await instance.close();
    await redis.down();
  }
});
