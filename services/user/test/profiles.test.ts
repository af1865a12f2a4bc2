// Profiles against real PostgreSQL, Redis and Kafka, with the real auth
// service issuing tokens and publishing the UserRegistered events.
import test from "ava";
import { Code, type ConnectError } from "@connectrpc/connect";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { BadRequestSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { UserRegisteredSchema } from "@aviary/gen/aviary/events/v1/auth_events_pb";
import { openEventBus } from "@aviary/runtime/bus/open";
import { eventually, infra, uniqueName } from "../../runtime/test-support/infra.ts";
import { deadLetterTopic, type DeliveredEvent } from "@aviary/runtime/bus/bus";
import { authEventsTopic, RESERVED_USERNAMES } from "../src/index.ts";
import { rejection, startTestUser, uniqueGermanPhone, type TestUser } from "./harness.ts";

let users: TestUser;
test.before(async () => {
  users = await startTestUser();
});
test.after.always(async () => {
  await users?.close();
});

function violations(error: ConnectError): Array<{ field: string; reason: string }> {
  return error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map(({ field, reason }) => ({ field, reason })));
}

let nameCounter = 0;
function uniqueUsername(prefix = "u"): string {
  nameCounter += 1;
  return `${prefix}_${process.pid % 10_000}_${nameCounter}_${Date.now().toString(36)}`.slice(0, 30);
}

test("a registration through the auth service creates an empty profile", async (t) => {
  const ada = await users.signUp({ label: "ada" });
  const { profile } = await users.client.getProfile({ userId: ada.userId }, ada.call);
  t.is(profile?.userId, ada.userId);
  t.is(profile?.username, "");
  t.is(profile?.followerCount, 0n);
  t.is(profile?.followingCount, 0n);
  t.is(profile?.region, "", "registered by email: no region");
});

test("a UserRegistered delivered twice (same event id) creates one profile, applied once", async (t) => {
  const bus = await openEventBus({ brokers: (await infra()).kafkaBrokers, clientId: "user-profiles-test" });
  t.teardown(() => bus.close());
  const userId = crypto.randomUUID();
  const eventId = crypto.randomUUID();
  const message = create(UserRegisteredSchema, { userId, phone: "+33612345678", registeredAt: timestampFromDate(new Date()) });
  const record = {
    topic: authEventsTopic,
    key: userId,
    value: toBinary(UserRegisteredSchema, message),
    headers: { "event-id": eventId, "event-type": UserRegisteredSchema.typeName, "content-type": "application/x-protobuf" },
  };
  await bus.publish([record]);
  await bus.publish([record]);
  // A replay under a new event id (a relay republishing after a crash) keeps the profile too.
  await bus.publish([{ ...record, headers: { ...record.headers, "event-id": crypto.randomUUID() } }]);
  await eventually("the event applied", async () => (await users.query("select 1 from users.profiles where user_id = $1", [userId])).length === 1, 60_000);
  // Let the duplicate delivery arrive before counting.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const profiles = await users.query<{ region: string }>("select region from users.profiles where user_id = $1", [userId]);
  t.is(profiles.length, 1);
  t.is(profiles[0]?.region, "FR");
  const processed = await users.query("select 1 from users.processed_events where event_id = $1", [eventId]);
  t.is(processed.length, 1);
});

test("the region comes from the registration phone and only its owner sees it", async (t) => {
  const phone = uniqueGermanPhone();
  const owner = await users.signUp({ phone });
  const other = await users.signUp({ label: "other" });
  const own = await users.client.getProfile({ userId: owner.userId }, owner.call);
  t.is(own.profile?.region, "DE");
  const seen = await users.client.getProfile({ userId: owner.userId }, other.call);
  t.is(seen.profile?.region, "", "private to the owner");
  const batch = await users.client.batchGetProfiles({ userIds: [owner.userId] }, other.call);
  t.is(batch.profiles[0]?.region, "");
});

test("update own profile, find it by username case-insensitively; a token for A never changes B", async (t) => {
  const a = await users.signUp({ label: "a" });
  const b = await users.signUp({ label: "b" });
  const name = uniqueUsername("Ada");
  const updated = await users.client.updateProfile({ username: name, displayName: " Ada L. ", bio: "analyst" }, a.call);
  t.is(updated.profile?.userId, a.userId);
  t.is(updated.profile?.username, name);
  t.is(updated.profile?.displayName, "Ada L.");
  t.is(updated.profile?.bio, "analyst");

  const found = await users.client.getProfileByUsername({ username: name.toUpperCase() }, b.call);
  t.is(found.profile?.userId, a.userId);

  // Only the fields that are set change.
  const partial = await users.client.updateProfile({ bio: "" }, a.call);
  t.is(partial.profile?.bio, "");
  t.is(partial.profile?.displayName, "Ada L.");

  const before = await users.query("select username, display_name, bio from users.profiles where user_id = $1", [b.userId]);
  await users.client.updateProfile({ displayName: "Mallory", bio: "pwned" }, a.call);
  const after = await users.query("select username, display_name, bio from users.profiles where user_id = $1", [b.userId]);
  t.deepEqual(after, before, "B's profile is untouched by A's calls");
  t.is((await users.client.getProfile({ userId: a.userId }, a.call)).profile?.displayName, "Mallory");

  const anonymous = await rejection(users.client.updateProfile({ bio: "x" }));
  t.is(anonymous.code, Code.Unauthenticated);
});

test("username rules: characters, length, reserved names, taken case-insensitively", async (t) => {
  const a = await users.signUp({ label: "rules-a" });
  const b = await users.signUp({ label: "rules-b" });
  const cases: Array<[string, string]> = [
    ["bad-char", "PATTERN"],
    ["with space", "PATTERN"],
    ["ab", "MIN_LEN"],
    ["a".repeat(31), "MAX_LEN"],
    ["Admin", "RESERVED"],
    ["ROOT", "RESERVED"],
  ];
  for (const [username, reason] of cases) {
    const error = await rejection(users.client.updateProfile({ username }, a.call));
    t.is(error.code, Code.InvalidArgument, username);
    t.true(violations(error).some((v) => v.field === "username" && v.reason === reason), `${username}: ${JSON.stringify(violations(error))}`);
  }
  t.true(RESERVED_USERNAMES.has("support"));

  const name = uniqueUsername("taken");
  await users.client.updateProfile({ username: name }, a.call);
  const taken = await rejection(users.client.updateProfile({ username: name.toUpperCase(), bio: "nope" }, b.call));
  t.is(taken.code, Code.AlreadyExists);
  const bRow = await users.query<{ bio: string; username: string | null }>("select bio, username from users.profiles where user_id = $1", [b.userId]);
  t.deepEqual(bRow[0], { bio: "", username: null }, "a rejected update writes nothing");
  // The owner may change the casing of their own name.
  const recased = await users.client.updateProfile({ username: name.toUpperCase() }, a.call);
  t.is(recased.profile?.username, name.toUpperCase());
});

test("a bio over 300 characters is a field violation and writes nothing", async (t) => {
  const a = await users.signUp({ label: "bio" });
  const error = await rejection(users.client.updateProfile({ bio: "é".repeat(301), displayName: "x" }, a.call));
  t.is(error.code, Code.InvalidArgument);
  t.deepEqual(violations(error), [{ field: "bio", reason: "MAX_LEN" }]);
  const row = await users.query<{ display_name: string }>("select display_name from users.profiles where user_id = $1", [a.userId]);
  t.is(row[0]?.display_name, "");
  const ok = await users.client.updateProfile({ bio: "é".repeat(300) }, a.call);
  t.is([...(ok.profile?.bio ?? "")].length, 300);
});

test("GetProfile of an unknown user is NOT_FOUND; BatchGetProfiles leaves missing ids out and caps at 100", async (t) => {
  const a = await users.signUp({ label: "batch-a" });
  const b = await users.signUp({ label: "batch-b" });
  t.is((await rejection(users.client.getProfile({ userId: crypto.randomUUID() }, a.call))).code, Code.NotFound);
  const batch = await users.client.batchGetProfiles({ userIds: [a.userId, crypto.randomUUID(), b.userId] }, a.call);
  t.deepEqual(batch.profiles.map((p) => p.userId).sort(), [a.userId, b.userId].sort());
  const tooMany = await rejection(users.client.batchGetProfiles({ userIds: Array.from({ length: 101 }, () => crypto.randomUUID()) }, a.call));
  t.is(tooMany.code, Code.InvalidArgument);
  t.deepEqual(violations(tooMany), [{ field: "user_ids", reason: "MAX_ITEMS" }]);
});

test("a UserRegistered that cannot be decoded is parked on the dead-letter topic and creates nothing", async (t) => {
  const bus = await openEventBus({ brokers: (await infra()).kafkaBrokers, clientId: "user-profiles-dlq-test" });
  t.teardown(() => bus.close());
  const parked: DeliveredEvent[] = [];
  const subscription = await bus.subscribe({
    groupId: uniqueName("user_dlq_test"),
    topics: [deadLetterTopic(authEventsTopic)],
    fromBeginning: true,
    handle: async (event) => void parked.push(event),
  });
  t.teardown(() => subscription.stop());
  const key = crypto.randomUUID();
  await bus.publish([
    {
      topic: authEventsTopic,
      key,
      value: new Uint8Array([0xff, 0xff, 0xff]),
      headers: { "event-id": crypto.randomUUID(), "event-type": UserRegisteredSchema.typeName, "content-type": "application/x-protobuf" },
    },
  ]);
  await eventually("the poison event on the DLQ", () => parked.some((e) => e.key === key), 60_000);
  const event = parked.find((e) => e.key === key);
  t.regex(event?.headers["dlq-reason"] ?? "", /not a valid aviary.events.v1.UserRegistered/);
  t.is((await users.query("select 1 from users.profiles where user_id = $1", [key])).length, 0);
});

test("a token of a logged-out session is rejected (the auth service's cache denylist)", async (t) => {
  const a = await users.signUp({ label: "revoked" });
  await users.client.getProfile({ userId: a.userId }, a.call);
  await users.auth.client.logout({}, a.call);
  const error = await rejection(users.client.getProfile({ userId: a.userId }, a.call));
  t.is(error.code, Code.Unauthenticated);
});
