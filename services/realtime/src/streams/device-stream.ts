// One device's stream: the frames it owes the client, in order.
//
// Durable items are delivered strictly by offset: an item at or below the last
// offset sent is a duplicate and dropped; an item beyond the next one means
// the live channel skipped some (a subscriber reconnect, a publish racing the
// subscribe), so the gap is filled from the history before the item goes out,
// or, when the history no longer has it, the stream ends with a `rotate`
// (RESYNC) and the client's resume says `recovered: false`. An item of
// another epoch means the history was lost: RESYNC too. Never a silent gap.
//
// Live items are processed one at a time through a promise chain, so a gap
// fill (a Redis round trip) holds back everything behind it. Before the
// stream has replayed its history (`start`), live items are held and then run
// through the same rules, so an item published during the replay is neither
// lost nor sent twice.
//
// Ephemeral items (presence, feed hints) are coalesced per key: at most one
// per window, the latest winning, sent at the end of the window if one was
// held back, so the client always ends on the newest state.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  Rotate_Reason,
  SubscribeResponseSchema,
  type Event,
  type SubscribeResponse,
} from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import type { DirectStreamOut } from "@aviary/runtime/direct-stream";
import type { LiveItem, StoredItem } from "@aviary/runtime/realtime/user-streams";
import type { Beating, HeartbeatWheel } from "./heartbeats.ts";

export interface DeviceStreamOptions {
  userId: string;
  sessionId: string;
  streamId: string;
  /** Frames waiting for a slow client before the stream is rotated (SLOW_CONSUMER). */
  queueLimit: number;
  heartbeatMs: number;
  /** Beats the stream when it has been silent for `heartbeatMs`. */
  heartbeats: HeartbeatWheel;
  /** Ephemeral coalescing window per key. */
  coalesceMs: number;
  /** Fills a gap: items from..to of the epoch, or null when the history lacks any. */
  fetchRange: (epoch: string, from: number, to: number) => Promise<StoredItem[] | null>;
  decode: (payload: Uint8Array) => Event;
}

/** A decoded live item, shared by every stream of the user (never mutated). */
export interface DecodedItem {
  readonly item: LiveItem;
  readonly event: Event;
}

interface Coalesced {
  lastSentMs: number;
  pending: Event | undefined;
  timer: NodeJS.Timeout | undefined;
}

type Ending = { kind: "rotate"; reason: Rotate_Reason } | { kind: "error"; error: ConnectError };

export class DeviceStream implements Beating {
  readonly userId: string;
  readonly sessionId: string;
  readonly streamId: string;
  readonly #options: DeviceStreamOptions;
  #epoch = "";
  #lastOffset = 0;
  #started = false;
  #held: DecodedItem[] = [];
  #chain: Promise<void> = Promise.resolve();
  readonly #queue: SubscribeResponse[] = [];
  #wake: (() => void) | undefined;
  #ending: Ending | undefined;
  /** When the last frame was queued: heartbeats fill silences only. */
  #lastSentMs = Date.now();
  /** The last heartbeat frame, sent again while the offset stays (an idle stream allocates nothing to beat). */
  #heartbeatFrame: SubscribeResponse | undefined;
  #heartbeatOffset = -1;
  readonly #coalesced = new Map<string, Coalesced>();
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(options: DeviceStreamOptions) {
    this.userId = options.userId;
    this.sessionId = options.sessionId;
    this.streamId = options.streamId;
    this.#options = options;
  }

  get lastOffset(): number {
    return this.#lastOffset;
  }

  get ended(): boolean {
    return this.#ending !== undefined;
  }

  /**
   * Sends `ready` and the replayed items, then releases the live items held
   * meanwhile. `offset` is the position the replay (or the lookup) reported.
   */
  start(ready: { epoch: string; offset: number; recovered: boolean; heartbeatIntervalSeconds: number }, replayed: readonly StoredItem[]): void {
    this.#epoch = ready.epoch;
    this.#push(
      create(SubscribeResponseSchema, {
        frame: {
          case: "ready",
          value: {
            position: { epoch: ready.epoch, offset: BigInt(ready.offset) },
            recovered: ready.recovered,
            heartbeatIntervalSeconds: ready.heartbeatIntervalSeconds,
            streamId: this.streamId,
          },
        },
      }),
    );
    // Replayed items run from just after the client's offset up to the position.
    this.#lastOffset = replayed.length > 0 ? replayed[0]!.offset - 1 : ready.offset;
    for (const stored of replayed) this.#sendDurable(stored.offset, this.#options.decode(stored.payload));
    this.#started = true;
    const held = this.#held;
    this.#held = [];
    for (const item of held) this.deliver(item);
    this.#options.heartbeats.schedule(this, this.#lastSentMs + this.#options.heartbeatMs);
  }

  /** A live item for this stream's user (in channel order). */
  deliver(decoded: DecodedItem): void {
    if (this.#ending) return;
    if (!this.#started) {
      this.#held.push(decoded);
      return;
    }
    if (decoded.item.offset === 0) {
      this.#sendEphemeral(decoded.event);
      return;
    }
    this.#chain = this.#chain.then(() => this.#deliverDurable(decoded)).catch((e: unknown) => this.fail(ConnectError.from(e, Code.Unavailable)));
  }

  /**
   * Live delivery was interrupted: `position` is the user's position read
   * after it resumed. Items up to it that the channel never brought are
   * fetched from the history, in order behind everything already queued;
   * another epoch means the history was lost meanwhile (RESYNC).
   */
  catchUp(position: { epoch: string; offset: number }): void {
    if (this.#ending || !this.#started) return;
    this.#chain = this.#chain
      .then(async () => {
        if (this.#ending) return;
        if (position.epoch !== this.#epoch) return this.rotate(Rotate_Reason.RESYNC);
        if (position.offset <= this.#lastOffset) return;
        const missing = await this.#options.fetchRange(this.#epoch, this.#lastOffset + 1, position.offset);
        if (this.#ending) return;
        if (missing === null) return this.rotate(Rotate_Reason.RESYNC);
        for (const stored of missing) if (stored.offset === this.#lastOffset + 1) this.#sendDurable(stored.offset, this.#options.decode(stored.payload));
      })
      .catch((e: unknown) => this.fail(ConnectError.from(e, Code.Unavailable)));
  }

  /** An ephemeral event produced here (presence of a watched user). */
  sendEphemeral(event: Event): void {
    if (this.#ending || !this.#started) return;
    this.#sendEphemeral(event);
  }

  async #deliverDurable({ item, event }: DecodedItem): Promise<void> {
    if (this.#ending) return;
    if (item.epoch !== this.#epoch) return this.rotate(Rotate_Reason.RESYNC);
    if (item.offset <= this.#lastOffset) return; // already sent (replayed, or a duplicate)
    if (item.offset > this.#lastOffset + 1) {
      const missing = await this.#options.fetchRange(this.#epoch, this.#lastOffset + 1, item.offset - 1);
      if (this.#ending) return;
      if (missing === null) return this.rotate(Rotate_Reason.RESYNC);
      for (const stored of missing) this.#sendDurable(stored.offset, this.#options.decode(stored.payload));
    }
    this.#sendDurable(item.offset, event);
  }

  #sendDurable(offset: number, event: Event): void {
    if (offset !== this.#lastOffset + 1) {
      // Only reachable through a bug in the rules above; refuse to send a gap.
      this.rotate(Rotate_Reason.RESYNC);
      return;
    }
    this.#lastOffset = offset;
    this.#push(create(SubscribeResponseSchema, { frame: { case: "event", value: { ...event, offset: BigInt(offset) } } }));
  }

  #sendEphemeral(event: Event): void {
    const key = coalesceKey(event);
    const window = this.#options.coalesceMs;
    const now = Date.now();
    let state = this.#coalesced.get(key);
    if (state === undefined) this.#coalesced.set(key, (state = { lastSentMs: -Infinity, pending: undefined, timer: undefined }));
    if (now - state.lastSentMs >= window && state.timer === undefined) {
      state.lastSentMs = now;
      this.#push(create(SubscribeResponseSchema, { frame: { case: "event", value: { ...event, offset: 0n } } }));
      return;
    }
    state.pending = event;
    if (state.timer !== undefined) return;
    const coalesced = state;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      coalesced.timer = undefined;
      const latest = coalesced.pending;
      coalesced.pending = undefined;
      if (latest === undefined || this.#ending) return;
      coalesced.lastSentMs = Date.now();
      this.#push(create(SubscribeResponseSchema, { frame: { case: "event", value: { ...latest, offset: 0n } } }));
    }, Math.max(0, state.lastSentMs + window - now));
    timer.unref();
    state.timer = timer;
    this.#timers.add(timer);
  }

  /**
   * The wheel's call: a heartbeat when the stream has been silent for its
   * interval (less the wheel's tick, which may ask that much early), so an
   * idle stream beats once per interval and no stream is silent for longer.
   */
  beat(nowMs: number): number | undefined {
    if (this.#ending) return undefined;
    const interval = this.#options.heartbeatMs;
    if (nowMs - this.#lastSentMs >= interval - this.#options.heartbeats.tickMs) {
      if (this.#heartbeatFrame === undefined || this.#heartbeatOffset !== this.#lastOffset) {
        this.#heartbeatOffset = this.#lastOffset;
        this.#heartbeatFrame = create(SubscribeResponseSchema, { frame: { case: "heartbeat", value: { offset: BigInt(this.#lastOffset) } } });
      }
      this.#push(this.#heartbeatFrame);
      if (this.#ending) return undefined;
    }
    return this.#lastSentMs + interval;
  }

  #push(frame: SubscribeResponse): void {
    if (this.#ending) return;
    if (this.#queue.length >= this.#options.queueLimit) {
      this.rotate(Rotate_Reason.SLOW_CONSUMER);
      return;
    }
    this.#queue.push(frame);
    this.#lastSentMs = Date.now();
    this.#wakeUp();
  }

  /** Ends the stream on purpose: a last `rotate` frame, then a normal end. */
  rotate(reason: Rotate_Reason, retryAfterMs = 0): void {
    if (this.#ending) return;
    // The rotate frame is sent even past the queue limit: it is the last one.
    this.#queue.push(create(SubscribeResponseSchema, { frame: { case: "rotate", value: { reason, retryAfterMs } } }));
    this.#end({ kind: "rotate", reason });
  }

  /** Ends the stream with an error (revoked session, expired token, Redis down); queued frames are dropped. */
  fail(error: ConnectError): void {
    if (this.#ending) return;
    this.#queue.length = 0;
    this.#end({ kind: "error", error });
  }

  #end(ending: Ending): void {
    this.#ending = ending;
    this.#options.heartbeats.cancel(this);
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#wakeUp();
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /**
   * Writes the frames to `out` as they come (the server's direct path),
   * holding them here while `out` is backed up, so a slow client still meets
   * the queue limit. Resolves when the stream ends or `signal` aborts;
   * rejects with the error of a failed stream.
   */
  pipeTo(out: DirectStreamOut<SubscribeResponse>, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let waiting = false;
      const done = (error?: ConnectError) => {
        signal.removeEventListener("abort", onAbort);
        // The client went away (or the server aborted): stop the timers.
        if (this.#ending === undefined) this.#end({ kind: "rotate", reason: Rotate_Reason.UNSPECIFIED });
        if (error === undefined) resolve();
        else reject(error);
      };
      const flush = () => {
        waiting = false;
        for (;;) {
          const frame = this.#queue.shift();
          if (frame === undefined) break;
          if (!out.send(frame)) {
            waiting = true;
            out.onWritable(flush);
            return;
          }
        }
        if (this.#ending?.kind === "error") return done(this.#ending.error);
        if (this.#ending !== undefined || signal.aborted) return done();
        this.#wake = flush;
      };
      const onAbort = () => {
        // An abort while backed up is handled here; otherwise the flush it wakes ends the stream.
        if (waiting) done();
        else this.#wakeUp();
      };
      signal.addEventListener("abort", onAbort);
      flush();
    });
  }

  /** The frames for the RPC's response; ends when the stream ends or `signal` aborts. */
  async *frames(signal: AbortSignal): AsyncGenerator<SubscribeResponse> {
    const onAbort = () => this.#wakeUp();
    signal.addEventListener("abort", onAbort);
    try {
      for (;;) {
        const frame = this.#queue.shift();
        if (frame !== undefined) {
          yield frame;
          continue;
        }
        if (this.#ending?.kind === "error") throw this.#ending.error;
        if (this.#ending !== undefined || signal.aborted) return;
        await new Promise<void>((resolve) => (this.#wake = resolve));
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      // The client went away (or the server aborted): stop the timers.
      if (this.#ending === undefined) this.#end({ kind: "rotate", reason: Rotate_Reason.UNSPECIFIED });
    }
  }
}

/** Ephemeral events replace each other per key: one presence per user, one feed hint. */
function coalesceKey(event: Event): string {
  switch (event.payload.case) {
    case "presence":
      return `presence:${event.payload.value.presence?.userId ?? ""}`;
    default:
      return event.payload.case ?? "";
  }
}
