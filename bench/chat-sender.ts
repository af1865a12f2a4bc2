// Load generator of bench/chat.ts, a worker process (bench/workers.ts) so its
// CPU is its own and it does not share an event loop with the listener that
// measures arrivals. Commands:
//   send     ChatService.SendMessage at a steady rate, open loop, cycling
//            through (caller token, conversation) targets; returns every
//            measured send's client_message_id and send time.
//   publish  the reference: raw Redis PUBLISH at a steady rate, cycling
//            through channels; the payload is the id.
// Times are process.hrtime (CLOCK_MONOTONIC) in ms, the clock the parent
// stamps arrivals with.
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Redis } from "ioredis";
import { ChatService } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { serveWorker } from "./workers.ts";

export interface SendTarget {
  token: string;
  conversationId: string;
}

export interface OpenLoopResult {
  ids: string[];
  sentAt: Float64Array;
  /** Send → answer (SendMessage) or → PUBLISH reply, ms; NaN for a failed one. */
  ackMs: Float64Array;
  errors: number;
  firstError?: string;
  sentPerSecond: number;
}

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** Calls `fire(i)` at `rate`/s for warmupS + seconds; only the calls after the warm-up are returned. */
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
  const interval = 1000 / rate;
  const begin = nowMs();
  for (let i = 0; i < total; i += 1) {
    const wait = begin + i * interval - nowMs();
    if (wait > 1) await new Promise((done) => setTimeout(done, wait));
    const id = crypto.randomUUID();
    const at = nowMs();
    const slot = i - warmup;
    if (slot >= 0) {
      ids.push(id);
      sentAt[slot] = at;
    }
    inFlight.push(
      fire(i, id).then(
        () => void (slot >= 0 && (ackMs[slot] = nowMs() - at)),
        (error: unknown) => {
          errors += 1;
          firstError ??= error instanceof Error ? error.message : String(error);
        },
      ),
    );
  }
  const last = nowMs();
  await Promise.all(inFlight);
  const first = sentAt[0] ?? last;
  return { ids, sentAt, ackMs, errors, ...(firstError === undefined ? {} : { firstError }), sentPerSecond: Math.round((measured / Math.max(1, last - first)) * 1000 * 10) / 10 };
}

serveWorker({
  async send(args: { url: string; rate: number; warmupS: number; seconds: number; targets: SendTarget[] }) {
    const chat = createClient(ChatService, createGrpcTransport({ baseUrl: args.url }));
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
