// User events travel through the outbox to the real Kafka broker, as protobuf
// messages keyed by the acting user's id.
import test from "ava";
import { openEventBus } from "@aviary/runtime/bus/open";
import type { DeliveredEvent, EventBus, Subscription } from "@aviary/runtime/bus/bus";
import { decodeEvent } from "@aviary/runtime/outbox/enqueue";
import {
  FollowCreatedSchema,
  FollowDeletedReason,
  FollowDeletedSchema,
  ProfileUpdatedSchema,
  UserBlockedSchema,
  UserUnblockedSchema,
} from "@aviary/gen/aviary/events/v1/user_events_pb";
import { eventually, infra, uniqueName } from "../../runtime/test-support/infra.ts";
import { userEventsTopic } from "../src/index.ts";
import { startTestUser, type TestUser } from "./harness.ts";

let users: TestUser;
let bus: EventBus;
let subscription: Subscription;
const received: DeliveredEvent[] = [];

test.before(async () => {
  users = await startTestUser();
  bus = await openEventBus({ brokers: (await infra()).kafkaBrokers, clientId: "user-events-test" });
  subscription = await bus.subscribe({
    groupId: uniqueName("user_events_test"),
    topics: [userEventsTopic],
    fromBeginning: true,
    handle: async (event) => void received.push(event),
  });
});
test.after.always(async () => {
  await subscription?.stop();
  await bus?.close();
  await users?.close();
});

test("follow, unfollow, profile update and block publish their events, keyed by the acting user", async (t) => {
  const [a, b] = await Promise.all([users.signUp({ label: "ev-a" }), users.signUp({ label: "ev-b" })]);
  await users.client.follow({ userId: b.userId }, a.call);
  await users.client.follow({ userId: b.userId }, a.call); // no second event
  await users.client.unfollow({ userId: b.userId }, a.call);
  await users.client.follow({ userId: b.userId }, a.call);
  await users.client.updateProfile({ displayName: "Ada", bio: "hi" }, a.call);
  await users.client.block({ userId: a.userId }, b.call);
  await users.client.unblock({ userId: a.userId }, b.call);
  await users.client.unblock({ userId: a.userId }, b.call); // no second event

  const ofA = () => received.filter((e) => e.key === a.userId);
  const ofB = () => received.filter((e) => e.key === b.userId);
  await eventually("a's four events and b's three", () => ofA().length >= 4 && ofB().length >= 3, 30_000);
  await users.service.eventsFlushed(10_000);
  await new Promise((resolve) => setTimeout(resolve, 500));

  t.deepEqual(
    ofA().map((e) => e.headers["event-type"]),
    ["aviary.events.v1.FollowCreated", "aviary.events.v1.FollowDeleted", "aviary.events.v1.FollowCreated", "aviary.events.v1.ProfileUpdated"],
  );
  const [created, unfollowed, , updated] = ofA() as [DeliveredEvent, DeliveredEvent, DeliveredEvent, DeliveredEvent];
  t.like(decodeEvent(FollowCreatedSchema, created), { followerId: a.userId, followeeId: b.userId });
  t.like(decodeEvent(FollowDeletedSchema, unfollowed), { followerId: a.userId, followeeId: b.userId, reason: FollowDeletedReason.UNFOLLOW });
  const profile = decodeEvent(ProfileUpdatedSchema, updated);
  t.like(profile, { userId: a.userId, displayName: "Ada", bio: "hi" });
  t.deepEqual(profile.changedFields, ["display_name", "bio"]);

  t.deepEqual(ofB().map((e) => e.headers["event-type"]), ["aviary.events.v1.FollowDeleted", "aviary.events.v1.UserBlocked", "aviary.events.v1.UserUnblocked"]);
  const [removed, blocked, unblocked] = ofB() as [DeliveredEvent, DeliveredEvent, DeliveredEvent];
  t.like(decodeEvent(UserUnblockedSchema, unblocked), { blockerId: b.userId, blockedId: a.userId });
  t.like(decodeEvent(FollowDeletedSchema, removed), { followerId: a.userId, followeeId: b.userId, reason: FollowDeletedReason.BLOCK });
  t.like(decodeEvent(UserBlockedSchema, blocked), { blockerId: b.userId, blockedId: a.userId });
  for (const event of [...ofA(), ...ofB()]) {
    t.regex(event.headers["event-id"] ?? "", /^[0-9a-f-]{36}$/);
    t.is(event.headers["content-type"], "application/x-protobuf");
  }
});
