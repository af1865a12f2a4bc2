/**
 * The timeline Redis down for longer than the bus' retry budget
 * (DEFAULT_MAX_ATTEMPTS attempts) must not cost a single event: the
 * consumer holds the partition and retries until Redis is back, then every
 * post reaches the follower's timeline exactly once and nothing is parked
 * on the dead-letter topic. A poison event is still parked at its first
 * attempt.
 *
 * Timelines live in a redis-server of this file's own (append-only file on,
 * so the timelines survive the restart and show what was applied): stopping
 * the shared Redis would break the suites running next to this one.
 */
import test from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Redis } from "ioredis";
import { DEFAULT_MAX_ATTEMPTS } from "@aviary/runtime/bus/delivery";
import { PostCreatedSchema } from "@aviary/gen/aviary/events/v1/post_events_pb";
import { FollowCreatedSchema } from "@aviary/gen/aviary/events/v1/user_events_pb";
import { deadLetterTopic, EventHeaders, type DeliveredEvent, type Subscription } from "@aviary/runtime/bus/bus";
import { eventually, uniqueName } from "../../runtime/test-support/infra.ts";
import { freePort } from "../../runtime/test-support/envoy.ts";
import { postEventsTopic, userEventsTopic } from "../src/index.ts";
import { CONSUMER_WAIT_MS, startTestFeed, type TestFeed } from "./harness.ts";

const POSTS = 5;

/** A redis-server on a port of its own whose data survives a stop and start (AOF, fsync per write). */
class OwnRedis {
  #process: ChildProcess | undefined;
  readonly port: number;
  readonly dir: string;
  constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    const child = spawn("redis-server", ["--port", String(this.port), "--bind", "127.0.0.1", "--dir", this.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", ""], { stdio: "ignore" });
    this.#process = child;
    const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on("error", () => undefined);
    try {
      await eventually("the private redis-server to answer", async () => (await probe.connect().then(() => probe.ping(), () => undefined)) === "PONG", 20_000, 50);
    } finally {
      probe.disconnect();
    }
  }
  async stop(): Promise<void> {
    const child = this.#process;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
    this.#process = undefined;
  }
}

let redis: OwnRedis | undefined;
let h: TestFeed | undefined;
let dlq: Subscription | undefined;
/** What this suite's consumer group parked on the post topic's dead-letter topic. */
const parked: DeliveredEvent[] = [];

test.before(async () => {
  redis = new OwnRedis(await freePort(), await mkdtemp(path.join(tmpdir(), "aviary-feed-timeline-redis-")));
  await redis.start();
  // One partition at a time: the event that waits for Redis holds every other one, so its attempts are what the metric counts.
  h = await startTestFeed({ FEED_REDIS_URL: redis.url, FEED_CONSUMER_CONCURRENCY: "1" });
  const group = h.env["FEED_GROUP"];
  dlq = await h.bus.subscribe({
    groupId: uniqueName("feed_outage_dlq"),
    topics: [deadLetterTopic(postEventsTopic)],
    handle: async (event) => void (event.headers[EventHeaders.deadLetterGroup] === group && parked.push(event)),
  });
});
test.after.always(async () => {
  await dlq?.stop();
  await h?.close();
  await redis?.stop();
  if (redis) await rm(redis.dir, { recursive: true, force: true });
});

/** The samples of `metric` for this suite's consumer group on the post topic, from the service's own /metrics. */
async function samples(feed: TestFeed, metric: string): Promise<Array<{ labels: string; value: number }>> {
  const text = await (await fetch(`${feed.service.url}/metrics`)).text();
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${metric}{`) && line.includes(`group="${feed.env["FEED_GROUP"]}"`) && line.includes(`topic="${postEventsTopic}"`))
    .map((line) => ({ labels: line.slice(0, line.lastIndexOf(" ")), value: Number(line.slice(line.lastIndexOf(" ") + 1)) }));
}

/** events_consumed_total by outcome. */
async function consumed(feed: TestFeed): Promise<Record<"handled" | "failed" | "dead_lettered", number>> {
  const counts = { handled: 0, failed: 0, dead_lettered: 0 };
  for (const { labels, value } of await samples(feed, "events_consumed_total")) {
    const outcome = /outcome="([a-z_]+)"/.exec(labels)?.[1] as keyof typeof counts | undefined;
    if (outcome !== undefined && outcome in counts) counts[outcome] += value;
  }
  return counts;
}

test.serial("timeline Redis down longer than the retry budget: every post applied once after it is back, nothing dead-lettered; a poison event is still parked", async (t) => {
  t.timeout(240_000);
  const feed = h!;
  const [follower, author] = [crypto.randomUUID(), crypto.randomUUID()];
  await feed.service.timelines.beginRebuild(follower);
  await feed.service.timelines.finishRebuild(follower);
  const followId = await feed.publish(userEventsTopic, follower, FollowCreatedSchema, { followerId: follower, followeeId: author, createdAt: timestampFromDate(new Date()) });
  await eventually("the follow applied", async () => (await feed.query("select 1 from feed.processed_events where event_id = $1", [followId])).length === 1, CONSUMER_WAIT_MS);

  // Caught up with the shared topic's history first (other suites' poison events in it are parked without Redis),
  // so what the consumer meets during the outage is this test's events.
  await eventually("the group caught up with the post topic", async () => {
    const lag = await samples(feed, "kafka_consumer_lag");
    return lag.length > 0 && lag.every((sample) => sample.value === 0);
  }, CONSUMER_WAIT_MS, 250);
  await redis!.stop();
  const before = await consumed(feed);
  const postIds: string[] = Array.from({ length: POSTS }, () => crypto.randomUUID());
  const base = Date.now() - 60_000;
  for (const [i, postId] of postIds.entries()) {
    await feed.publish(postEventsTopic, postId, PostCreatedSchema, { postId, authorId: author, createdAt: timestampFromDate(new Date(base + i * 1000)) });
  }
  // One more failure than the old budget allowed a single event before parking it.
  await eventually(`more than ${DEFAULT_MAX_ATTEMPTS} failed attempts while Redis is down`, async () => (await consumed(feed)).failed - before.failed > DEFAULT_MAX_ATTEMPTS, 120_000, 200);
  const during = await consumed(feed);
  // With the old budget the waiting event would have been parked by now.
  t.is(during.dead_lettered, before.dead_lettered, "nothing parked during the outage");
  t.log(`${during.failed - before.failed} failed attempts during the outage`);

  await redis!.start();
  let timeline: string[] = [];
  await eventually("every post in the follower's timeline", async () => {
    timeline = (await feed.timeline(follower)) ?? [];
    return postIds.every((id) => timeline.includes(id));
  }, CONSUMER_WAIT_MS, 100);
  t.deepEqual([...timeline].sort(), [...postIds].sort(), "each post once, and nothing else");
  const [row] = await feed.query<{ n: string }>("select count(*) as n from feed.posts where author_id = $1", [author]);
  t.is(Number(row?.n), POSTS, "the projection holds each post once");

  // Poison: an event no retry can fix is still parked (at its first attempt: the bus suite counts them).
  const poisonKey = `poison-${crypto.randomUUID()}`;
  await feed.publish(postEventsTopic, poisonKey, PostCreatedSchema, { postId: "not-a-uuid", authorId: author, createdAt: timestampFromDate(new Date()) });
  await eventually("the poison event parked", () => parked.some((e) => e.key === poisonKey), CONSUMER_WAIT_MS, 100);
  t.regex(parked.find((e) => e.key === poisonKey)!.headers[EventHeaders.deadLetterReason] ?? "", /post_id/);
  t.deepEqual(parked.filter((e) => postIds.includes(e.key)), [], "no post of the outage on the dead-letter topic");
});
