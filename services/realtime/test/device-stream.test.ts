// The offset rules of one device stream, alone: gaps filled from the history
// in order, an unfillable gap or another epoch ending in RESYNC, duplicates
// dropped, coalescing, the slow-consumer bound and heartbeats. Every rule is
// checked for both ways a stream is read: pulled by connect (`frames`) and
// written out by the server's direct gRPC path (`pipeTo`).
import test from "ava";
import { create } from "@bufbuild/protobuf";
import { EventSchema, Rotate_Reason, type Event, type SubscribeResponse } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import { decodeEvent, encodeEvent } from "../../runtime/src/realtime/events.ts";
import type { StoredItem } from "../../runtime/src/realtime/user-streams.ts";
import { eventually } from "../../runtime/test-support/infra.ts";
import { DeviceStream, type DecodedItem } from "../src/streams/device-stream.ts";
import { createHeartbeatWheel, heartbeatTickMs } from "../src/streams/heartbeats.ts";

type Reader = "frames" | "pipeTo";

const EPOCH = "epoch-a";

function stored(offset: number): StoredItem {
  return { offset, id: `e${offset}`, payload: encodeEvent(`e${offset}`, { case: "feedUpdated", value: { newestPostId: `p${offset}` } }) };
}
function live(offset: number, epoch = EPOCH): DecodedItem {
  const s = stored(offset);
  return { item: { epoch, offset, id: s.id, payload: s.payload }, event: decodeEvent(s.payload) };
}
function ephemeral(id: string, event: Event): DecodedItem {
  return { item: { epoch: "", offset: 0, id, payload: new Uint8Array() }, event };
}

function makeStream(reader: Reader, options: { history?: Map<number, StoredItem>; queueLimit?: number; heartbeatMs?: number; coalesceMs?: number; reading?: Promise<void> } = {}) {
  const fetched: Array<[number, number]> = [];
  const stream = new DeviceStream({
    userId: "u",
    sessionId: "s",
    streamId: "x",
    queueLimit: options.queueLimit ?? 100,
    heartbeatMs: options.heartbeatMs ?? 60_000,
    heartbeats: createHeartbeatWheel(heartbeatTickMs(options.heartbeatMs ?? 60_000)),
    coalesceMs: options.coalesceMs ?? 0,
    decode: decodeEvent,
    fetchRange: async (epoch, from, to) => {
      fetched.push([from, to]);
      if (epoch !== EPOCH) return null;
      const items: StoredItem[] = [];
      for (let o = from; o <= to; o++) {
        const item = options.history?.get(o);
        if (item === undefined) return null;
        items.push(item);
      }
      return items;
    },
  });
  const abort = new AbortController();
  const frames: SubscribeResponse[] = [];
  const reading = options.reading;
  const done =
    reader === "frames"
      ? (async () => {
          // A slow client: frames are only pulled once `reading` resolves.
          await reading;
          for await (const frame of stream.frames(abort.signal)) frames.push(frame);
        })()
      : (() => {
          // A slow client: the transport takes a frame, then is backed up until `reading` resolves.
          let backedUp = reading !== undefined;
          void reading?.then(() => (backedUp = false));
          return stream
            .pipeTo(
              {
                send: (frame) => {
                  frames.push(frame);
                  return !backedUp;
                },
                onWritable: (listener) => void (reading ?? Promise.resolve()).then(listener),
              },
              abort.signal,
            )
            .catch(() => undefined);
        })();
  const offsets = () => frames.flatMap((f) => (f.frame.case === "event" && f.frame.value.offset > 0n ? [Number(f.frame.value.offset)] : []));
  return { stream, frames, offsets, fetched, done, abort };
}

const start = (stream: DeviceStream, offset: number, replayed: StoredItem[] = []) =>
  stream.start({ epoch: EPOCH, offset, recovered: replayed.length > 0, heartbeatIntervalSeconds: 60 }, replayed);

for (const reader of ["frames", "pipeTo"] as const) {
  test(`[${reader}] a gap in the live channel is filled from the history before the item that revealed it`, async (t) => {
    const history = new Map([3, 4, 5].map((o) => [o, stored(o)]));
    const s = makeStream(reader, { history });
    start(s.stream, 2);
    s.stream.deliver(live(6)); // 3..5 never arrived live
    s.stream.deliver(live(7));
    s.stream.deliver(live(4)); // a late duplicate
    await eventually("offsets up to 7", () => s.offsets().length >= 5, 5_000);
    t.deepEqual(s.offsets(), [3, 4, 5, 6, 7]);
    t.deepEqual(s.fetched, [[3, 5]]);
    s.abort.abort();
    await s.done;
  });

  test(`[${reader}] live items held during the replay are released through the same rules`, async (t) => {
    const s = makeStream(reader);
    s.stream.deliver(live(2)); // arrives before start: replay also holds 2
    s.stream.deliver(live(3));
    start(s.stream, 2, [stored(1), stored(2)]);
    await eventually("offset 3", () => s.offsets().includes(3), 5_000);
    t.deepEqual(s.offsets(), [1, 2, 3]);
    t.is(s.frames[0]?.frame.case, "ready");
    s.abort.abort();
    await s.done;
  });

  test(`[${reader}] a gap the history cannot fill, or an item of another epoch, ends the stream with RESYNC and sends nothing past it`, async (t) => {
    for (const item of [live(9), live(2, "epoch-b")]) {
      const s = makeStream(reader, { history: new Map() });
      start(s.stream, 1);
      s.stream.deliver(item);
      await s.done;
      const last = s.frames.at(-1);
      t.is(last?.frame.case, "rotate");
      t.is(last?.frame.case === "rotate" ? last.frame.value.reason : undefined, Rotate_Reason.RESYNC);
      t.deepEqual(s.offsets(), []);
    }
  });

  test(`[${reader}] a client that falls behind by more than the queue limit is rotated (SLOW_CONSUMER), not buffered without bound`, async (t) => {
    let read = () => {};
    const s = makeStream(reader, { queueLimit: 10, reading: new Promise((resolve) => (read = resolve)) });
    start(s.stream, 0);
    for (let o = 1; o <= 50; o++) s.stream.deliver(live(o));
    await eventually("the stream to give up on the client", () => s.stream.ended, 5_000);
    read();
    await s.done;
    const last = s.frames.at(-1);
    t.is(last?.frame.case === "rotate" ? last.frame.value.reason : undefined, Rotate_Reason.SLOW_CONSUMER);
    t.true(s.frames.length <= 12, `at most the limit plus the rotate frame (${s.frames.length})`);
    t.deepEqual(s.offsets(), Array.from({ length: s.offsets().length }, (_, i) => i + 1), "what was sent is gapless");
  });

  test(`[${reader}] ephemeral items are coalesced per kind: the first at once, the latest at the window's end`, async (t) => {
    const s = makeStream(reader, { coalesceMs: 200 });
    start(s.stream, 0);
    const hint = (n: number) => ephemeral(`h${n}`, create(EventSchema, { id: `h${n}`, payload: { case: "feedUpdated", value: { newestPostId: `p${n}` } } }));
    for (let n = 1; n <= 5; n++) s.stream.deliver(hint(n));
    const hints = () => s.frames.flatMap((f) => (f.frame.case === "event" && f.frame.value.payload.case === "feedUpdated" ? [f.frame.value.payload.value.newestPostId] : []));
    await eventually("the trailing hint", () => hints().length === 2, 5_000);
    t.deepEqual(hints(), ["p1", "p5"]);
    s.abort.abort();
    await s.done;
  });

  test(`[${reader}] an idle stream sends heartbeats carrying its last offset`, async (t) => {
    const s = makeStream(reader, { heartbeatMs: 50 });
    start(s.stream, 7);
    await eventually("two heartbeats", () => s.frames.filter((f) => f.frame.case === "heartbeat").length >= 2, 5_000);
    const beat = s.frames.find((f) => f.frame.case === "heartbeat");
    t.is(beat?.frame.case === "heartbeat" ? beat.frame.value.offset : undefined, 7n);
    s.abort.abort();
    await s.done;
  });
}
