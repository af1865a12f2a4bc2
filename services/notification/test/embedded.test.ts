// `make dev` mode: PGlite, the in-process bus and the in-memory stream hub.
// The same consumer, outbox relay and push worker run on them: a like
// becomes a group, a live update and a push through a provider handed in.
import test from "ava";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { LikeCreatedSchema } from "@aviary/gen/aviary/events/v1/post_events_pb";
import { eq } from "drizzle-orm";
import { MemoryUserStreams } from "../../runtime/src/realtime/memory.ts";
import { decodeEvent } from "../../runtime/src/realtime/events.ts";
import { eventually } from "../../runtime/test-support/infra.ts";
import { groups } from "../src/store/schema.ts";
import { notificationConfigFromEnv, postEventsTopic, startNotificationService, type PushMessage, type PushProvider, type PushTarget, type RunningNotificationService } from "../src/index.ts";

const sent: Array<{ target: PushTarget; message: PushMessage }> = [];
const provider: PushProvider = {
  platform: "ios",
  async send(target, message) {
    sent.push({ target, message });
    return { kind: "delivered" };
  },
  async close() {},
};
const author = crypto.randomUUID();
const deviceId = crypto.randomUUID();
const hub = new MemoryUserStreams();
let service: RunningNotificationService;

test.before(async () => {
  service = await startNotificationService(notificationConfigFromEnv({ NOTIFICATION_PORT: "0", LOG_LEVEL: "silent", PAGE_TOKEN_SECRET: "test-page-token-secret-0123456789" }), {
    userStreams: hub,
    providers: new Map([["ios", provider]]),
    users: {
      directory: { idsByUsername: async () => new Map(), summaries: async (ids) => new Map(ids.map((id) => [id, { userId: id, username: "ana", displayName: "Ana" }])) },
      devices: {
        devicesOf: async (userId) => (userId === author ? [{ deviceId, platform: "ios", token: "a1b2c3", sessionId: "" }] : []),
        retire: async () => undefined,
        quarantine: async () => undefined,
      },
    },
  });
});
test.after.always(async () => {
  await service?.close();
  await hub.close();
});

test("embedded adapters: a like becomes a group, a live update and one push", async (t) => {
  t.is(service.database.kind, "pglite");
  t.is(service.bus.kind, "memory");
  const live: Array<{ groupId: string; sample: string[]; unread: bigint }> = [];
  const stop = await hub.listen(author, (item) => {
    const event = decodeEvent(item.payload);
    if (event.payload.case === "notificationsChanged") {
      const { group, unreadCount } = event.payload.value;
      live.push({ groupId: group?.groupId ?? "", sample: group?.sampleActorIds ?? [], unread: unreadCount });
    }
  });
  const postId = crypto.randomUUID();
  const likerId = crypto.randomUUID();
  const like = create(LikeCreatedSchema, { postId, likerId, postAuthorId: author, createdAt: timestampFromDate(new Date()) });
  await service.bus.publish([
    { topic: postEventsTopic, key: postId, value: toBinary(LikeCreatedSchema, like), headers: { "event-id": crypto.randomUUID(), "event-type": LikeCreatedSchema.typeName, "content-type": "application/x-protobuf" } },
  ]);
  await eventually("the push", async () => sent.length === 1, 20_000);
  const [group] = await service.database.db.select().from(groups).where(eq(groups.recipientId, author));
  t.is(group?.notificationCount, 1);
  t.deepEqual(live, [{ groupId: group!.id, sample: [likerId], unread: 1n }]);
  t.is(sent[0]?.target.deviceId, deviceId);
  t.is(sent[0]?.message.collapseKey, group!.id);
  t.is(sent[0]?.message.badge, 1);
  t.is(sent[0]?.message.body, "Ana liked your post");
  await stop();
});
