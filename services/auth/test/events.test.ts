// Auth events travel through the outbox to the real Kafka broker, as protobuf
// messages keyed by user id, in the order the changes happened.
import test from "ava";
import type { DescMessage } from "@bufbuild/protobuf";
import { openEventBus } from "@aviary/runtime/bus/open";
import type { DeliveredEvent, EventBus, Subscription } from "@aviary/runtime/bus/bus";
import { decodeEvent } from "@aviary/runtime/outbox/enqueue";
import { SessionRevokedReason, SessionRevokedSchema, UserLoggedInSchema, UserRegisteredSchema } from "@aviary/gen/aviary/events/v1/auth_events_pb";
import { infra, eventually, uniqueName } from "../../runtime/test-support/infra.ts";
import { as, startTestAuth, uniqueEmail, uniqueIp, type TestAuth } from "./harness.ts";
import { authEventsTopic } from "../src/index.ts";

let auth: TestAuth;
let bus: EventBus;
let subscription: Subscription;
const received: DeliveredEvent[] = [];

test.before(async () => {
  auth = await startTestAuth();
  bus = await openEventBus({ brokers: (await infra()).kafkaBrokers, clientId: "auth-events-test" });
  subscription = await bus.subscribe({
    groupId: uniqueName("auth_events_test"),
    topics: [authEventsTopic],
    fromBeginning: true,
    handle: async (event) => {
      received.push(event);
    },
  });
});
test.after.always(async () => {
  await subscription?.stop();
  await bus?.close();
  await auth?.close();
});

const password = "violet-harbour-teapot-42";

function eventsOf(userId: string): DeliveredEvent[] {
  return received.filter((event) => event.key === userId);
}

test("register, login and logout publish UserRegistered, UserLoggedIn and SessionRevoked in order", async (t) => {
  const email = uniqueEmail("events");
  const registered = await auth.client.register({ identity: { case: "email", value: email }, password });
  const ip = uniqueIp();
  const login = await auth.client.login({ identity: { case: "email", value: email }, password, deviceName: "pixel" }, as({ ip }));
  await auth.client.logout({}, as({ token: login.tokens?.accessToken ?? "" }));

  await eventually("three auth events for the user", () => eventsOf(registered.userId).length >= 3, 30_000);
  const events = eventsOf(registered.userId);
  t.deepEqual(
    events.map((e) => e.headers["event-type"]),
    ["aviary.events.v1.UserRegistered", "aviary.events.v1.UserLoggedIn", "aviary.events.v1.SessionRevoked"],
  );
  t.is(new Set(events.map((e) => e.partition)).size, 1, "one key, one partition");
  for (const event of events) {
    t.regex(event.headers["event-id"] ?? "", /^[0-9a-f-]{36}$/);
    t.is(event.headers["content-type"], "application/x-protobuf");
    t.regex(event.headers["traceparent"] ?? "", /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/, "the RPC's trace continues into the event");
  }
  const [first, second, third] = events as [DeliveredEvent, DeliveredEvent, DeliveredEvent];
  const userRegistered = decodeEvent(UserRegisteredSchema, first);
  t.is(userRegistered.userId, registered.userId);
  t.is(userRegistered.email, email);
  const loggedIn = decodeEvent(UserLoggedInSchema, second);
  t.is(loggedIn.sessionId, login.sessionId);
  t.is(loggedIn.deviceName, "pixel");
  t.is(loggedIn.ipAddress, ip);
  const revoked = decodeEvent(SessionRevokedSchema, third);
  t.is(revoked.sessionId, login.sessionId);
  t.is(revoked.reason, SessionRevokedReason.LOGOUT);
});

test("a rejected registration publishes nothing", async (t) => {
  const email = uniqueEmail("once");
  const registered = await auth.client.register({ identity: { case: "email", value: email }, password });
  await t.throwsAsync(auth.client.register({ identity: { case: "email", value: email }, password }));
  await auth.service.eventsFlushed(30_000);
  await eventually("the first registration's event", () => eventsOf(registered.userId).length >= 1, 30_000);
  // Give a stray duplicate time to arrive before counting.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const registrations = received.filter((e) => e.headers["event-type"] === "aviary.events.v1.UserRegistered" && decodeAs(UserRegisteredSchema, e)?.email === email);
  t.is(registrations.length, 1);
});

function decodeAs<Desc extends DescMessage>(schema: Desc, event: DeliveredEvent) {
  try {
    return decodeEvent(schema, event);
  } catch {
    return undefined;
  }
}
