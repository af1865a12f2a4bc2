// `make dev` mode: no servers at all (PGlite, the in-process bus, in-memory
// timelines). The consumers apply events the same way there.
import test from "ava";
import { create, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { LikeCreatedSchema, PostCreatedSchema, PostDeletedSchema } from "@aviary/gen/aviary/events/v1/post_events_pb";
import type { DeliveredEvent } from "@aviary/runtime/bus/bus";
import { FollowCreatedSchema } from "@aviary/gen/aviary/events/v1/user_events_pb";
import { eq } from "drizzle-orm";
import { follows, processedEvents } from "../src/store/schema.ts";
import { handleFeedEvents } from "../src/events/consume.ts";
import { eventually } from "../../runtime/test-support/infra.ts";
import { feedConfigFromEnv, postEventsTopic, startFeedService, userEventsTopic, type RunningFeedService } from "../src/index.ts";

let feed: RunningFeedService;
test.before(async () => {
  feed = await startFeedService(feedConfigFromEnv({ FEED_PORT: "0", LOG_LEVEL: "silent", PAGE_TOKEN_SECRET: "test-page-token-secret-0123456789" }));
});
test.after.always(async () => {
  await feed?.close();
});

function record<D extends DescMessage>(topic: string, key: string, schema: D, message: MessageInitShape<D>, eventId = crypto.randomUUID()) {
  return { topic, key, value: toBinary(schema, create(schema, message)), headers: { "event-id": eventId, "event-type": schema.typeName, "content-type": "application/x-protobuf" } };
}

function publish<D extends DescMessage>(topic: string, key: string, schema: D, message: MessageInitShape<D>) {
  return feed.bus!.publish([record(topic, key, schema, message)]);
}

test("embedded adapters: a follow, then a post, fans out into the follower's timeline", async (t) => {
  t.is(feed.database.kind, "pglite");
  t.is(feed.bus?.kind, "memory");
  t.is(feed.timelines.kind, "memory");
  const [follower, author, postId] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  await feed.timelines.beginRebuild(follower);
  await feed.timelines.finishRebuild(follower);
  await publish(userEventsTopic, follower, FollowCreatedSchema, { followerId: follower, followeeId: author, createdAt: timestampFromDate(new Date()) });
  await eventually("the follow applied", async () => (await feed.database.db.select().from(follows).where(eq(follows.followerId, follower))).length === 1);
  await publish(postEventsTopic, postId, PostCreatedSchema, { postId, authorId: author, createdAt: timestampFromDate(new Date()) });
  await eventually("the post fanned out", async () => (await feed.timelines.page(follower, 10))?.length === 1);
  t.deepEqual((await feed.timelines.page(follower, 10))?.map((e) => e.postId), [postId]);
});

test("a run of one partition's events is applied in order, posts together, and applying it again changes nothing", async (t) => {
  const [f1, f2, a, b] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  const [p1, p2, p3] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  for (const user of [f1, f2, a, b]) {
    await feed.timelines.beginRebuild(user);
    await feed.timelines.finishRebuild(user);
  }
  const at = (ms: number) => timestampFromDate(new Date(Date.UTC(2026, 0, 1) + ms));
  const p1Id = crypto.randomUUID();
  let offset = 0;
  const delivered = (r: ReturnType<typeof record>): DeliveredEvent => ({ ...r, partition: 0, offset: String(offset++), attempt: 1 });
  const run = [
    record(userEventsTopic, f1, FollowCreatedSchema, { followerId: f1, followeeId: a, createdAt: at(0) }),
    record(userEventsTopic, f2, FollowCreatedSchema, { followerId: f2, followeeId: a, createdAt: at(0) }),
    record(userEventsTopic, f1, FollowCreatedSchema, { followerId: f1, followeeId: b, createdAt: at(0) }),
    record(postEventsTopic, p1, PostCreatedSchema, { postId: p1, authorId: a, createdAt: at(1) }, p1Id),
    record(postEventsTopic, p2, PostCreatedSchema, { postId: p2, authorId: b, createdAt: at(2) }),
    record(postEventsTopic, p2, LikeCreatedSchema, { postId: p2, likerId: f1, postAuthorId: b, createdAt: at(2) }),
    record(postEventsTopic, p3, PostCreatedSchema, { postId: p3, authorId: a, createdAt: at(3) }),
    record(postEventsTopic, p3, PostDeletedSchema, { postId: p3, authorId: a, deletedAt: at(4) }),
    // p1's event again in the same run (a redelivery): applied once.
    record(postEventsTopic, p1, PostCreatedSchema, { postId: p1, authorId: a, createdAt: at(1) }, p1Id),
  ].map(delivered);
  // One follower per page: a's second follower comes from the page-by-page walk after the batch's first pages.
  const deps = { database: feed.database, timelines: feed.timelines, fanoutBatch: 1, fanoutThreshold: 10_000, backfill: 0 };
  const timelinesNow = async () => Promise.all([f1, f2, a, b].map(async (user) => (await feed.timelines.page(user, 10))?.map((e) => e.postId)));
  const expected = [[p2, p1], [p1], [p1], [p2]];

  await handleFeedEvents(deps, run);
  t.deepEqual(await timelinesNow(), expected, "f1 gets both authors' posts, f2 and the authors theirs, the deleted post is nowhere");
  const claims = (await feed.database.db.select().from(processedEvents)).length;

  await handleFeedEvents(deps, run);
  t.deepEqual(await timelinesNow(), expected, "a redelivered run changes no timeline");
  t.is((await feed.database.db.select().from(processedEvents)).length, claims, "and claims no event twice");
});
