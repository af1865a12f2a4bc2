// The memo of who follows an author merged at read time, on its own: what a
// notification, a lost LISTEN connection, an answer racing a change and age
// each do to what it remembers. (The consumer's notifications, end to end on
// the real stack: events.test.ts.)
import test from "ava";
import type { ListenOptions } from "@aviary/runtime/db/database";
import { EVERY_READER, MAX_AGE_MS, startMergedAuthors } from "../src/read/merged-authors.ts";
import { MERGE_CHANNEL } from "../src/store/projection.ts";

interface Fixture {
  notify(payload: string): void;
  listening(state: boolean): void;
  /** Queries made, by reader. */
  queries: string[];
  /** What the database answers, by reader (absent: false). */
  answers: Map<string, boolean>;
  clock: { now: number };
  stopped: () => boolean;
}

async function startMemo(options: { entries?: number; query?: (readerId: string) => Promise<boolean> } = {}) {
  let onNotify: (payload: string) => void = () => undefined;
  let onListening: ListenOptions["onListening"];
  let channel = "";
  let stopped = false;
  const fixture: Fixture = {
    notify: (payload) => onNotify(payload),
    listening: (state) => onListening?.(state),
    queries: [],
    answers: new Map(),
    clock: { now: 0 },
    stopped: () => stopped,
  };
  const memo = await startMergedAuthors({
    database: {
      listen: async (name, notify, listenOptions) => {
        channel = name;
        onNotify = notify;
        onListening = listenOptions?.onListening;
        return async () => void (stopped = true);
      },
    },
    query:
      options.query ??
      (async (readerId) => {
        fixture.queries.push(readerId);
        return fixture.answers.get(readerId) ?? false;
      }),
    now: () => fixture.clock.now,
    ...(options.entries === undefined ? {} : { entries: options.entries }),
  });
  return { memo, fixture, channel: () => channel };
}

const ana = "0b8c6d3e-54a4-4c3e-9b8f-1a2b3c4d5e6f";
const ben = "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2918";

test("an answer is kept: the second read of a reader asks the database nothing", async (t) => {
  const { memo, fixture, channel } = await startMemo();
  t.is(channel(), MERGE_CHANNEL);
  fixture.answers.set(ben, true);
  t.false(await memo.followsAny(ana));
  t.true(await memo.followsAny(ben));
  t.false(await memo.followsAny(ana));
  t.true(await memo.followsAny(ben.toUpperCase()), "ids are compared without case");
  t.deepEqual(fixture.queries, [ana, ben]);
});

test("a notification naming a reader forgets that reader only; '*' forgets everyone", async (t) => {
  const { memo, fixture } = await startMemo();
  await memo.followsAny(ana);
  await memo.followsAny(ben);
  fixture.answers.set(ana, true);
  fixture.notify(ana.toUpperCase());
  t.true(await memo.followsAny(ana), "the new answer");
  await memo.followsAny(ben);
  t.deepEqual(fixture.queries, [ana, ben, ana]);
  fixture.notify(EVERY_READER);
  await memo.followsAny(ana);
  await memo.followsAny(ben);
  t.deepEqual(fixture.queries, [ana, ben, ana, ana, ben]);
});

test("forget (the consumer in this process) works like the notification", async (t) => {
  const { memo, fixture } = await startMemo();
  await memo.followsAny(ana);
  memo.forget(ana);
  await memo.followsAny(ana);
  memo.forget(EVERY_READER);
  await memo.followsAny(ana);
  t.deepEqual(fixture.queries, [ana, ana, ana]);
});

test("while the LISTEN connection is down nothing is kept, and what was kept before is forgotten", async (t) => {
  const { memo, fixture } = await startMemo();
  await memo.followsAny(ana);
  fixture.listening(false);
  await memo.followsAny(ana);
  await memo.followsAny(ana);
  t.deepEqual(fixture.queries, [ana, ana, ana], "every read asks while notifications could be missed");
  fixture.listening(true);
  await memo.followsAny(ana);
  await memo.followsAny(ana);
  t.deepEqual(fixture.queries, [ana, ana, ana, ana], "kept again once it listens");
});

test("an answer read while its reader was forgotten is not kept (it may predate the change)", async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const queries: string[] = [];
  const { memo, fixture } = await startMemo({
    query: async (readerId) => {
      queries.push(readerId);
      if (queries.length === 1) await gate;
      return false;
    },
  });
  const first = memo.followsAny(ana);
  fixture.notify(ana); // the follow commits while the first query runs
  release();
  t.false(await first);
  await memo.followsAny(ana);
  t.deepEqual(queries, [ana, ana], "asked again: the racing answer was dropped");

  // The same for a forget of everyone.
  let releaseAll!: () => void;
  const gateAll = new Promise<void>((resolve) => (releaseAll = resolve));
  let asked = 0;
  const slow = await startMemo({
    query: async () => {
      if (++asked === 1) await gateAll;
      return false;
    },
  });
  const pending = slow.memo.followsAny(ben);
  slow.fixture.notify(EVERY_READER);
  releaseAll();
  await pending;
  await slow.memo.followsAny(ben);
  await slow.memo.followsAny(ben);
  t.is(asked, 2, "asked again after the racing answer, then kept");
});

test("answers expire after MAX_AGE_MS, and the oldest goes past the capacity", async (t) => {
  const { memo, fixture } = await startMemo({ entries: 1 });
  await memo.followsAny(ana);
  fixture.clock.now = MAX_AGE_MS - 1;
  await memo.followsAny(ana);
  t.deepEqual(fixture.queries, [ana]);
  fixture.clock.now = MAX_AGE_MS + 1;
  await memo.followsAny(ana);
  t.deepEqual(fixture.queries, [ana, ana], "expired");
  await memo.followsAny(ben); // pushes ana out
  await memo.followsAny(ana);
  t.deepEqual(fixture.queries, [ana, ana, ben, ana]);
});

test("stop unlistens", async (t) => {
  const { memo, fixture } = await startMemo();
  await memo.stop();
  t.true(fixture.stopped());
});
