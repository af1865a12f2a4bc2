// Load generator of bench/chat.ts, a worker process (bench/workers.ts) so its
// CPU is its own and it does not share an event loop with the listener that
// measures arrivals. Commands:
//   send     ChatService.SendMessage (raw HTTP/2 gRPC) at a steady rate, open loop, cycling
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
import { connect, type ClientHttp2Session } from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import { ChatService, SendMessageRequestSchema } from "@aviary/gen/aviary/chat/v1/chat_pb";
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

/**
 * Unary gRPC calls made with node:http2 alone: the request encoded with
 * the generated schema, one length-prefixed frame, the answer drained and
 * judged by its grpc-status. The load generator's CPU shares the machine
 * with the stack it measures, so it does no more than a call needs (no
 * client framework, no decoding of the answer). Resolves on status 0,
 * rejects with the status and message otherwise.
 */
function rawGrpcUnary(session: ClientHttp2Session, path: string) {
  return (headers: Record<string, string>, body: Uint8Array): Promise<void> =>
    new Promise((resolve, reject) => {
      const frame = Buffer.allocUnsafe(5 + body.byteLength);
      frame[0] = 0;
      frame.writeUInt32BE(body.byteLength, 1);
      frame.set(body, 5);
      const call = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers });
      let status: string | undefined;
      let message = "";
      const judge = (fields: Record<string, string | string[] | undefined>) => {
        if (fields["grpc-status"] === undefined) return;
        status = String(fields["grpc-status"]);
        message = decodeURIComponent(String(fields["grpc-message"] ?? ""));
      };
      call.on("response", judge); // a trailers-only answer (an error) carries the status here
      call.on("trailers", judge);
      call.on("data", () => {});
      call.on("end", () => (status === "0" ? resolve() : reject(new Error(`grpc-status ${status ?? "missing"}: ${message}`))));
      call.on("error", reject);
      call.end(frame);
    });
}

serveWorker({
  async send(args: { url: string; rate: number; warmupS: number; seconds: number; targets: SendTarget[] }) {
    // A peer URL names the grpc-js listener as grpc://host:port; both listeners speak gRPC over cleartext HTTP/2.
    const session = connect(args.url.replace(/^grpc:/, "http:"));
    // Not fatal to the worker: the calls open on a failed session fail with its error, and are counted.
    session.on("error", () => {});
    const sendMessage = rawGrpcUnary(session, `/${ChatService.typeName}/${ChatService.method.sendMessage.name}`);
    const headers = args.targets.map((t) => ({ authorization: `Bearer ${t.token}` }));
    try {
      return await openLoop(args.rate, args.warmupS, args.seconds, (i, id) => {
        const target = args.targets[i % args.targets.length]!;
        const request = create(SendMessageRequestSchema, { target: { case: "conversationId", value: target.conversationId }, clientMessageId: id, text: `bench message ${i}` });
        return sendMessage(headers[i % args.targets.length]!, toBinary(SendMessageRequestSchema, request));
      });
    } finally {
      session.close();
    }
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
