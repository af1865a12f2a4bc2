// The publishing load generator of bench/realtime.ts (a worker process, see
// workers.ts): durable publishes through the user-stream port's Redis adapter
// (publishEvent, as the notification, chat and feed services publish), or, for
// the reference, raw PUBLISH on one channel per user. Open loop at a fixed
// rate spread round-robin over the users: a publish never waits for earlier
// ones to be answered. Each item carries process.hrtime.bigint() at the call
// (CLOCK_MONOTONIC, shared by every process of the machine).
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { openRedisUserStreams } from "@aviary/runtime/realtime/redis";
import { publishEvent } from "@aviary/runtime/realtime/events";
import type { UserStreamHub } from "@aviary/runtime/realtime/user-streams";
import { silentSink } from "@aviary/runtime/bus/log-sink";
import { serveWorker } from "./workers.ts";

export interface RunArgs {
  mode: "realtime" | "redis";
  /** Ids (realtime) and messages (redis) start with it, so receivers tell steps apart. */
  label: string;
  rate: number;
  seconds: number;
}

export interface RunResult {
  scheduled: number;
  published: number;
  errors: number;
  duplicates: number;
  firstError: string | undefined;
  /** Calls made per second over the sending window. */
  sentPerSecond: number;
  /** How far behind its schedule the sender fell at worst (its own event loop), ms. */
  maxLagMs: number;
  /** Per user: the last offset the port returned (realtime) or the last sequence number sent (redis). */
  lastByUser: Record<string, number>;
  /** Round trip of the publish call itself, ms. */
  callP50Ms: number;
  callP99Ms: number;
}

let hub: UserStreamHub | undefined;
let raw: Redis | undefined;
let users: string[] = [];
let channelOf: (user: string) => string = (user) => user;
/** Per mode and user: the sequence number of the last item sent (the reference receiver checks it). */
const seqByUser = { realtime: new Map<string, number>(), redis: new Map<string, number>() };
// Pads the reference messages to about the size of the port's live message (epoch, offset, id, event).
const PAD = "x".repeat(48);

serveWorker({
  init(args: { url: string; prefix: string; users: string[]; referencePrefix: string }): void {
    hub = openRedisUserStreams({ url: args.url, prefix: args.prefix, logger: silentSink });
    raw = new Redis(args.url, { maxRetriesPerRequest: 1 });
    raw.on("error", () => {});
    users = args.users;
    channelOf = (user) => `${args.referencePrefix}${user}`;
  },

  async warm(): Promise<void> {
    await hub?.ping();
    await raw?.ping();
  },

  async run(args: RunArgs): Promise<RunResult> {
    if (hub === undefined || raw === undefined) throw new Error("init first");
    const streams = hub;
    const redis = raw;
    const total = Math.round(args.rate * args.seconds);
    const lastByUser: Record<string, number> = {};
    const calls: number[] = [];
    let published = 0;
    let errors = 0;
    let duplicates = 0;
    let firstError: string | undefined;
    let maxLagMs = 0;
    const inflight: Promise<void>[] = [];

    const fire = (index: number) => {
      const user = users[index % users.length]!;
      const seq = (seqByUser[args.mode].get(user) ?? 0) + 1;
      seqByUser[args.mode].set(user, seq);
      const started = performance.now();
      const sentNs = process.hrtime.bigint();
      const done = (offset: number) => {
        calls.push(performance.now() - started);
        published += 1;
        if (offset > (lastByUser[user] ?? 0)) lastByUser[user] = offset;
      };
      const failed = (error: unknown) => {
        errors += 1;
        firstError ??= (error as Error).message;
      };
      if (args.mode === "realtime") {
        inflight.push(
          publishEvent(streams, user, `${args.label}-${seq}`, { case: "feedUpdated", value: { newestPostId: String(sentNs) } }).then((result) => {
            if (result.duplicate) duplicates += 1;
            done(result.offset);
          }, failed),
        );
      } else {
        inflight.push(redis.publish(channelOf(user), `${args.label}\n${seq}\n${sentNs}\n${PAD}`).then(() => done(seq), failed));
      }
    };

    const begin = performance.now() + 20;
    let index = 0;
    while (index < total) {
      const now = performance.now();
      const due = begin + (index * 1000) / args.rate;
      if (now < due) {
        await sleep(Math.max(1, Math.floor(due - now)));
        continue;
      }
      // Everything due by now goes out in this turn.
      while (index < total && begin + (index * 1000) / args.rate <= now) {
        maxLagMs = Math.max(maxLagMs, now - (begin + (index * 1000) / args.rate));
        fire(index);
        index += 1;
      }
    }
    const sendingMs = performance.now() - begin;
    await Promise.all(inflight);
    calls.sort((a, b) => a - b);
    const q = (p: number) => Number((calls[Math.min(calls.length - 1, Math.floor(p * calls.length))] ?? Number.NaN).toFixed(2));
    return {
      scheduled: total,
      published,
      errors,
      duplicates,
      firstError,
      sentPerSecond: Math.round(total / (sendingMs / 1000)),
      maxLagMs: Number(maxLagMs.toFixed(1)),
      lastByUser,
      callP50Ms: q(0.5),
      callP99Ms: q(0.99),
    };
  },

  async close(): Promise<void> {
    await hub?.close();
    raw?.disconnect();
  },
});
