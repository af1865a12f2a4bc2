// `make dev` mode: no servers at all (PGlite, the in-process bus, in-memory
// timelines). The consumers apply events the same way there.
import test from "ava";
import { create, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { PostCreatedSchema } from "@aviary/gen/aviary/events/v1/post_events_pb";
import { FollowCreatedSchema } from "@aviary/gen/aviary/events/v1/user_events_pb";
import { eq } from "drizzle-orm";
import { follows } from "../src/store/schema.ts";
import { eventually } from "../../runtime/test-support/infra.ts";
import { feedConfigFromEnv, postEventsTopic, startFeedService, userEventsTopic, type RunningFeedService } from "../src/index.ts";

let feed: RunningFeedService;
test.before(async () => {
  feed = await startFeedService(feedConfigFromEnv({ FEED_PORT: "0", LOG_LEVEL: "silent", PAGE_TOKEN_SECRET: "test-page-token-secret-0123456789" }));
});
test.after.always(async () => {
  await feed?.close();
});

function publish<D extends DescMessage>(topic: string, key: string, schema: D, message: MessageInitShape<D>) {
  return feed.bus!.publish([
    { topic, key, value: toBinary(schema, create(schema, message)), headers: { "event-id": crypto.randomUUID(), "event-type": schema.typeName, "content-type": "application/x-protobuf" } },
  ]);
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
