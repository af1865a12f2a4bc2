// The receiving load generator of bench/realtime.ts (a worker process, see
// workers.ts). Cheap on purpose, so the service's cost is what shows:
//
// - h2: node:http2 client sessions, several Subscribe streams on each, gRPC
//   framing by hand (5-byte prefix + the protobuf), no connect client per
//   stream. Each stream is checked to receive its `ready` frame (or, against
//   the bare reference, its response headers); durable events are checked to
//   arrive in offset order per user, each offset exactly once.
// - redis: one ioredis subscriber on one channel per user (the raw Redis
//   PUBLISH → SUBSCRIBE reference), checked the same way by sequence number.
//
// Latency: the publisher puts process.hrtime.bigint() (CLOCK_MONOTONIC, the
// same clock in every process of the machine) into each item; the receive
// time is taken when the frame is read off its stream.
import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import { SubscribeRequestSchema, SubscribeResponseSchema } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import { serveWorker } from "./workers.ts";

const SUBSCRIBE_PATH = "/aviary.realtime.v1.RealtimeService/Subscribe";
const OPEN_TIMEOUT_MS = 30_000;

export interface Target {
  user: string;
  token: string;
}

export interface OpenArgs {
  url: string;
  targets: Target[];
  /** Streams are spread over this many HTTP/2 connections, in contiguous blocks (stream j on connection ⌊j · connections / streams⌋). */
  connections: number;
  /** "ready": the first message must be a `ready` frame (realtime); "headers": response headers suffice (bare reference). */
  expect: "ready" | "headers";
  concurrency: number;
}

export interface OpenResult {
  opened: number;
  failed: number;
  firstError: string | undefined;
  connectMs: number;
  openMs: number;
}

export interface Stats {
  held: number;
  ended: number;
  endings: Record<string, number>;
  heartbeats: { min: number; max: number; total: number };
  frames: number;
  rotates: number;
}

export interface StepResult {
  label: string;
  received: number;
  /** Latency of each item of the step, ms. */
  latenciesMs: Float64Array;
  /** Items out of order, repeated or after a gap (by offset or sequence, per user). */
  violations: number;
  firstViolations: string[];
  /** Per user: the last offset (h2) or sequence number (redis) received. */
  lastByUser: Record<string, number>;
  /** Items of other steps (late ones) or undecodable. */
  strays: number;
}

interface StreamState {
  user: string;
  request: http2.ClientHttp2Stream;
  ready: boolean;
  lastOffset: number;
  heartbeats: number;
  frames: number;
  ended: boolean;
}

const sessions: http2.ClientHttp2Session[] = [];
const streams: StreamState[] = [];
const endings: Record<string, number> = {};
let rotates = 0;
let subscriber: Redis | undefined;
const lastSeq = new Map<string, number>();

let step: { label: string; prefix: string; latencies: number[]; violations: number; firstViolations: string[]; strays: number } | undefined;

function violation(text: string): void {
  if (step === undefined) return;
  step.violations += 1;
  if (step.firstViolations.length < 5) step.firstViolations.push(text);
}

/** Splits a byte stream into gRPC messages (1 flag byte, 4 length bytes, message). */
function grpcMessages(onMessage: (message: Uint8Array) => void): (chunk: Buffer) => void {
  let pending: Buffer | undefined;
  return (chunk) => {
    const buffer = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
    let at = 0;
    while (buffer.length - at >= 5) {
      const length = buffer.readUInt32BE(at + 1);
      if (buffer.length - at - 5 < length) break;
      onMessage(buffer.subarray(at + 5, at + 5 + length));
      at += 5 + length;
    }
    pending = at < buffer.length ? buffer.subarray(at) : undefined;
  };
}

const requestBody = (() => {
  const message = toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, {}));
  const framed = Buffer.alloc(5 + message.length);
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, 5);
  return framed;
})();

function connectSession(url: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error("HTTP/2 connect timed out"));
    }, OPEN_TIMEOUT_MS);
    session.once("connect", () => {
      clearTimeout(timer);
      session.off("error", reject);
      session.on("error", () => {});
      resolve(session);
    });
    session.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

function openStream(session: http2.ClientHttp2Session, target: Target, expect: OpenArgs["expect"]): Promise<void> {
  const request = session.request({
    ":method": "POST",
    ":path": SUBSCRIBE_PATH,
    "content-type": "application/grpc",
    te: "trailers",
    authorization: `Bearer ${target.token}`,
    "user-agent": "aviary-bench-realtime",
  });
  const state: StreamState = { user: target.user, request, ready: false, lastOffset: 0, heartbeats: 0, frames: 0, ended: false };
  streams.push(state);
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error === undefined) resolve();
      else reject(error);
    };
    const timer = setTimeout(() => settle(new Error(`no ${expect} within ${OPEN_TIMEOUT_MS} ms`)), OPEN_TIMEOUT_MS);
    let grpcStatus: string | undefined;
    request.on("response", (headers) => {
      if (headers[":status"] !== 200) settle(new Error(`HTTP ${headers[":status"]}`));
      else if (headers["grpc-status"] !== undefined) grpcStatus = `${headers["grpc-status"]} ${decodeURIComponent(String(headers["grpc-message"] ?? ""))}`;
      else if (expect === "headers") {
        state.ready = true;
        settle();
      }
    });
    request.on("trailers", (trailers) => {
      grpcStatus = `${trailers["grpc-status"]} ${decodeURIComponent(String(trailers["grpc-message"] ?? ""))}`;
    });
    request.on(
      "data",
      grpcMessages((bytes) => {
        const receivedNs = process.hrtime.bigint();
        state.frames += 1;
        let frame;
        try {
          frame = fromBinary(SubscribeResponseSchema, bytes).frame;
        } catch {
          if (step !== undefined) step.strays += 1;
          return;
        }
        switch (frame.case) {
          case "ready":
            if (state.ready) violation(`${state.user}: a second ready frame`);
            state.ready = true;
            state.lastOffset = Number(frame.value.position?.offset ?? 0n);
            settle();
            return;
          case "heartbeat":
            state.heartbeats += 1;
            return;
          case "rotate":
            rotates += 1;
            return;
          case "event": {
            const event = frame.value;
            const offset = Number(event.offset);
            if (offset === 0) return; // ephemeral (presence): not what is measured
            if (offset !== state.lastOffset + 1) violation(`${state.user}: offset ${offset} after ${state.lastOffset}`);
            if (offset > state.lastOffset) state.lastOffset = offset;
            if (step === undefined || !event.id.startsWith(step.prefix)) {
              if (step !== undefined) step.strays += 1;
              return;
            }
            if (event.payload.case !== "feedUpdated") return;
            step.latencies.push(Number(receivedNs - BigInt(event.payload.value.newestPostId)) / 1e6);
            return;
          }
          default:
            return;
        }
      }),
    );
    request.on("error", () => {});
    request.on("close", () => {
      state.ended = true;
      const why = grpcStatus ?? `closed (rst ${request.rstCode})`;
      endings[why] = (endings[why] ?? 0) + 1;
      settle(new Error(`stream ended before ${expect}: ${why}`));
    });
    request.end(requestBody);
  });
}

/** Runs `work` over `items` with at most `concurrency` in flight. */
async function inParallel<T>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        await work(items[index]!, index);
      }
    }),
  );
}

serveWorker({
  async open(args: OpenArgs): Promise<OpenResult> {
    const t0 = performance.now();
    const own: http2.ClientHttp2Session[] = [];
    await inParallel(Array.from({ length: args.connections }, (_, i) => i), 50, async (i) => {
      own[i] = await connectSession(args.url);
    });
    sessions.push(...own);
    const t1 = performance.now();
    let opened = 0;
    let failed = 0;
    let firstError: string | undefined;
    await inParallel(args.targets, args.concurrency, async (target, j) => {
      try {
        await openStream(own[Math.floor((j * own.length) / args.targets.length)]!, target, args.expect);
        opened += 1;
      } catch (error) {
        failed += 1;
        firstError ??= (error as Error).message;
      }
    });
    return { opened, failed, firstError, connectMs: Math.round(t1 - t0), openMs: Math.round(performance.now() - t1) };
  },

  stats(): Stats {
    let min = Infinity;
    let max = 0;
    let total = 0;
    let frames = 0;
    let held = 0;
    for (const s of streams) {
      frames += s.frames;
      if (s.ended) continue;
      held += 1;
      min = Math.min(min, s.heartbeats);
      max = Math.max(max, s.heartbeats);
      total += s.heartbeats;
    }
    return { held, ended: streams.length - held, endings: { ...endings }, heartbeats: { min: held === 0 ? 0 : min, max, total }, frames, rotates };
  },

  /** Zeroes the heartbeat counters (the idle window counts its own). */
  resetHeartbeats(): void {
    for (const s of streams) s.heartbeats = 0;
  },

  async subscribeRedis(args: { url: string; channels: { user: string; channel: string }[] }): Promise<number> {
    subscriber = new Redis(args.url, { maxRetriesPerRequest: 1 });
    subscriber.on("error", () => {});
    const byChannel = new Map(args.channels.map((c) => [c.channel, c.user]));
    subscriber.on("messageBuffer", (channel: Buffer, message: Buffer) => {
      const receivedNs = process.hrtime.bigint();
      const user = byChannel.get(channel.toString("latin1"));
      // `label \n seq \n sentNs \n padding`
      const a = message.indexOf(0x0a);
      const b = message.indexOf(0x0a, a + 1);
      const c = message.indexOf(0x0a, b + 1);
      if (user === undefined || c < 0) {
        if (step !== undefined) step.strays += 1;
        return;
      }
      const label = message.toString("latin1", 0, a);
      const seq = Number(message.toString("latin1", a + 1, b));
      const last = lastSeq.get(user) ?? 0;
      if (seq !== last + 1) violation(`${user}: sequence ${seq} after ${last}`);
      if (seq > last) lastSeq.set(user, seq);
      if (step === undefined || label !== step.label) {
        if (step !== undefined) step.strays += 1;
        return;
      }
      step.latencies.push(Number(receivedNs - BigInt(message.toString("latin1", b + 1, c))) / 1e6);
    });
    const names = args.channels.map((c) => c.channel);
    for (let i = 0; i < names.length; i += 500) await subscriber.subscribe(...names.slice(i, i + 500));
    return names.length;
  },

  beginStep(args: { label: string }): void {
    step = { label: args.label, prefix: `${args.label}-`, latencies: [], violations: 0, firstViolations: [], strays: 0 };
  },

  stepCount(): number {
    return step?.latencies.length ?? 0;
  },

  endStep(): StepResult {
    if (step === undefined) throw new Error("no step begun");
    const lastByUser: Record<string, number> = {};
    if (subscriber !== undefined) for (const [user, seq] of lastSeq) lastByUser[user] = seq;
    else for (const s of streams) if (!s.ended) lastByUser[s.user] = Math.max(lastByUser[s.user] ?? 0, s.lastOffset);
    const result = {
      label: step.label,
      received: step.latencies.length,
      latenciesMs: Float64Array.from(step.latencies),
      violations: step.violations,
      firstViolations: step.firstViolations,
      lastByUser,
      strays: step.strays,
    };
    step = undefined;
    return result;
  },

  async closeAll(): Promise<void> {
    for (const session of sessions.splice(0)) session.destroy();
    streams.length = 0;
    if (subscriber !== undefined) subscriber.disconnect();
  },
});
