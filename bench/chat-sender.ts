// Load generator of bench/chat.ts, a worker process (bench/workers.ts) so its
// CPU is its own and it does not share an event loop with the listener that
// measures arrivals. Commands:
//   send     ChatService.SendMessage at a steady rate, open loop, cycling
//            through (caller token, conversation) targets; returns every
//            measured send's client_message_id and when it was due; at
//            most MAX_IN_FLIGHT requests open at once (a send over the cap
//            waits, and its wait counts; what is still held back when the
//            window closes is not sent), so the achieved rate may fall
//            short of the offered one (both are reported).
//   publish  the reference: raw Redis PUBLISH at a steady rate, cycling
//            through channels; the payload is the id.
// Times are process.hrtime (CLOCK_MONOTONIC) in ms, the clock the parent
// stamps arrivals with.
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createGrpcJsTransport } from "@aviary/runtime/grpc-js/transport";
import { Redis } from "ioredis";
import { ChatService } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { serveWorker } from "./workers.ts";

export interface SendTarget {
  token: string;
  conversationId: string;
}

export interface OpenLoopResult {
  ids: string[];
  /** When each send was due on the schedule (a send held back by the in-flight cap counts its wait). */
  sentAt: Float64Array;
  /** Due → answer (SendMessage) or → PUBLISH reply, ms; NaN for a failed one. */
  ackMs: Float64Array;
  errors: number;
  firstError?: string;
  /** Due within the window but held back by the in-flight cap until it closed: never sent. */
  notSent: number;
  /** Achieved: the measured sends over the time they took to go out. */
  sentPerSecond: number;
}

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/**
 * Requests in flight at most: a client holding thousands of streams open on
 * one HTTP/2 connection runs past the server's session memory
 * (NGHTTP2_ENHANCE_YOUR_CALM), which measures the client, not the service.
 */
const MAX_IN_FLIGHT = 256;

/**
 * Calls `fire(i)` at `rate`/s for warmupS + seconds; only the calls after
 * the warm-up are returned. Each call is timed from when it was due, not
 * from when it went out: a call held back by the in-flight cap (or a late
 * timer) waited in a queue, and that wait is latency too. `sentPerSecond` is
 * the rate achieved (the offered one is `rate`).
 */
async function openLoop(rate: number, warmupS: number, seconds: number, fire: (i: number, id: string) => Promise<unknown>): Promise<OpenLoopResult> {
  const warmup = Math.round(rate * warmupS);
  const total = warmup + Math.round(rate * seconds);
  const measured = total - warmup;
  const ids: string[] = [];
  const sentAt = new Float64Array(measured);
  const ackMs = new Float64Array(measured).fill(Number.NaN);
  let errors = 0;
  let firstError: string | undefined;
  const inFlight: Promise<void>[] = [];
  let open = 0;
  let slotFreed: (() => void) | undefined;
  const interval = 1000 / rate;
  const begin = nowMs();
  let firstMeasuredOut = Number.NaN;
  const end = begin + total * interval;
  let issued = 0;
  for (let i = 0; i < total; i += 1) {
    const due = begin + i * interval;
    const wait = due - nowMs();
    if (wait > 1) await new Promise((done) => setTimeout(done, wait));
    while (open >= MAX_IN_FLIGHT) await new Promise<void>((done) => (slotFreed = done));
    // The window is over: what the cap held back that long is not sent (reported, not hidden).
    if (nowMs() > end) break;
    issued = i + 1;
    const id = crypto.randomUUID();
    const slot = i - warmup;
    // Due, or now when the timer let it go a little early (it sleeps only waits over 1 ms).
    const at = Math.min(due, nowMs());
    if (slot >= 0) {
      ids.push(id);
      sentAt[slot] = at;
      if (slot === 0) firstMeasuredOut = nowMs();
    }
    open += 1;
    inFlight.push(
      fire(i, id)
        .then(
          () => void (slot >= 0 && (ackMs[slot] = nowMs() - at)),
          (error: unknown) => {
            errors += 1;
            firstError ??= error instanceof Error ? error.message : String(error);
          },
        )
        .finally(() => {
          open -= 1;
          slotFreed?.();
          slotFreed = undefined;
        }),
    );
  }
  const last = nowMs();
  await Promise.all(inFlight);
  const first = Number.isNaN(firstMeasuredOut) ? last : firstMeasuredOut;
  return {
    ids,
    sentAt: sentAt.slice(0, ids.length),
    ackMs: ackMs.slice(0, ids.length),
    errors,
    ...(firstError === undefined ? {} : { firstError }),
    notSent: total - issued,
    sentPerSecond: Math.round((ids.length / Math.max(1, last - first)) * 1000 * 10) / 10,
  };
}

serveWorker({
  async send(args: { url: string; rate: number; warmupS: number; seconds: number; targets: SendTarget[] }) {
    const grpcJs = /^grpc:/.test(args.url);
    const chat = createClient(ChatService, grpcJs ? createGrpcJsTransport({ baseUrl: args.url.replace(/^grpc:/, "http:") }) : createGrpcTransport({ baseUrl: args.url }));
    const headers = args.targets.map((t) => ({ headers: { authorization: `Bearer ${t.token}` } }));
    return openLoop(args.rate, args.warmupS, args.seconds, (i, id) => {
      const target = args.targets[i % args.targets.length]!;
      return chat.sendMessage({ target: { case: "conversationId", value: target.conversationId }, clientMessageId: id, text: `bench message ${i}` }, headers[i % args.targets.length]!);
    });
  },
  async publish(args: { redisUrl: string; rate: number; warmupS: number; seconds: number; channels: string[] }) {
    const redis = new Redis(args.redisUrl, { maxRetriesPerRequest: 1 });
    try {
      return await openLoop(args.rate, args.warmupS, args.seconds, (i, id) => redis.publish(args.channels[i % args.channels.length]!, id));
    } finally {
      redis.disconnect();
    }
  },
});
