// Push delivery against the local APNs, FCM and Web Push servers: the
// providers' verdicts acted on as they document them, retries, the
// dead-letter topic, the ledger, and devices in the foreground.
import test from "ava";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { LikeCreatedSchema } from "@aviary/gen/aviary/events/v1/post_events_pb";
import type { DeliveredEvent } from "@aviary/runtime/bus/bus";
import { uniqueName } from "../../runtime/test-support/infra.ts";
import { DEVICE_HEADER, postEventsTopic } from "../src/index.ts";
import { startTestNotification, webPushId, type Signed, type TestNotification } from "./harness.ts";

let n: TestNotification;
const deadLetters: DeliveredEvent[] = [];

test.before(async () => {
  // Three sends per device, so "retries exhausted" is quick to reach.
  n = await startTestNotification({ PUSH_MAX_ATTEMPTS: "3" });
  await n.bus.subscribe({
    groupId: uniqueName("push_dlq_reader"),
    topics: [`${n.env["NOTIFICATION_EVENTS_TOPIC"]}.dlq`],
    handle: async (event) => void deadLetters.push(event),
  });
});
test.after.always(async () => {
  await n?.close();
});

/** A like of one of `author`'s posts, by someone (published as the post service would). */
async function likeFor(author: Signed): Promise<string> {
  const postId = crypto.randomUUID();
  await n.publish(postEventsTopic, postId, LikeCreatedSchema, { postId, likerId: crypto.randomUUID(), postAuthorId: author.userId, createdAt: timestampFromDate(new Date()) });
  return postId;
}

/** The ledger row of the newest notification of `author` on `deviceId`, once it is decided. */
async function settled(author: Signed, deviceId: string, postId: string): Promise<{ status: string; attempts: number; reason: string | null }> {
  let row: { status: string; attempts: number; reason: string | null } | undefined;
  await n.until(`the delivery to ${deviceId}`, async () => {
    [row] = await n.query<{ status: string; attempts: number; reason: string | null }>(
      `select d.status, d.attempts, d.reason from notification.deliveries d join notification.notifications x on x.id = d.notification_id
       where x.post_id = $1 and d.device_id = $2 and d.status <> 'sending'`,
      [postId, deviceId],
    );
    return row !== undefined;
  });
  return row!;
}

async function deviceIds(account: Signed): Promise<string[]> {
  return (await n.post.user.client.listDevices({}, account.call)).devices.map((d) => d.deviceId);
}

test("503 then 200: delivered once, after a retry", async (t) => {
  const author = await n.signUp();
  const ios = await n.registerDevice(author, "ios");
  const android = await n.registerDevice(author, "android");
  n.apns.respond(ios.token, [{ status: 503, reason: "ServiceUnavailable" }]);
  n.fcm.respond(android.token, [{ status: 503, retryAfter: 0 }]);
  const postId = await likeFor(author);
  t.like(await settled(author, ios.deviceId, postId), { status: "delivered", attempts: 2 });
  t.like(await settled(author, android.deviceId, postId), { status: "delivered", attempts: 2 });
  t.deepEqual(
    n.apns.requestsFor(ios.token).map((r) => r.status),
    [503, 200],
  );
  t.deepEqual(
    n.fcm.requestsFor(android.token).map((r) => r.status),
    [503, 200],
  );
});

test("410 / UNREGISTERED / Gone: the device is removed and never pushed again", async (t) => {
  const author = await n.signUp();
  const ios = await n.registerDevice(author, "ios");
  const android = await n.registerDevice(author, "android");
  const web = await n.registerDevice(author, "web");
  const keeper = await n.registerDevice(author, "ios");
  n.apns.unregister(ios.token, Date.now());
  n.fcm.unregistered(android.token);
  n.webPush.gone(webPushId(n.webPush, web.token));
  const first = await likeFor(author);
  t.like(await settled(author, ios.deviceId, first), { status: "gone" });
  t.like(await settled(author, android.deviceId, first), { status: "gone" });
  t.like(await settled(author, web.deviceId, first), { status: "gone" });
  await n.until("the devices retired in the user service", async () => (await deviceIds(author)).length === 1);
  t.deepEqual(await deviceIds(author), [keeper.deviceId]);

  const second = await likeFor(author);
  t.like(await settled(author, keeper.deviceId, second), { status: "delivered" });
  t.is(n.apns.requestsFor(ios.token).length, 1, "the dead token was used once");
  t.is(n.fcm.requestsFor(android.token).length, 1);
  t.is(n.webPush.requestsFor(webPushId(n.webPush, web.token)).length, 1);
});

test("wrong environment or sender: the device is quarantined (kept, listed with the reason), not pushed again until registered again", async (t) => {
  const author = await n.signUp();
  const ios = await n.registerDevice(author, "ios");
  const android = await n.registerDevice(author, "android");
  n.apns.wrongEnvironment(ios.token);
  n.fcm.senderMismatch(android.token);
  const first = await likeFor(author);
  t.like(await settled(author, ios.deviceId, first), { status: "quarantined", reason: "apns 400 BadDeviceToken" });
  t.like(await settled(author, android.deviceId, first), { status: "quarantined" });
  const listed = (await n.post.user.client.listDevices({}, author.call)).devices;
  t.is(listed.length, 2, "kept");
  t.true(listed.every((d) => d.quarantineReason !== ""));

  // A healthy device registered now shows when the next push request has been handled.
  const keeper = await n.registerDevice(author, "ios");
  const second = await likeFor(author);
  t.like(await settled(author, keeper.deviceId, second), { status: "delivered" });
  const rows = await n.query("select 1 from notification.deliveries d join notification.notifications x on x.id = d.notification_id where x.post_id = $1", [second]);
  t.is(rows.length, 1, "only the healthy device was considered");
  t.is(n.apns.requestsFor(ios.token).length, 1);
  t.is(n.fcm.requestsFor(android.token).length, 1);
});

test("retries exhausted: dead-lettered with the reason and the device; other devices unaffected", async (t) => {
  const author = await n.signUp();
  const ios = await n.registerDevice(author, "ios");
  const web = await n.registerDevice(author, "web");
  n.apns.respond(ios.token, [
    { status: 500, reason: "InternalServerError" },
    { status: 503, reason: "ServiceUnavailable" },
    { status: 429, reason: "TooManyRequests", retryAfter: 0 },
  ]);
  const postId = await likeFor(author);
  const row = await settled(author, ios.deviceId, postId);
  t.is(row.status, "dead-lettered");
  t.is(row.attempts, 3);
  t.regex(row.reason ?? "", /gave up after 3 attempts/);
  t.like(await settled(author, web.deviceId, postId), { status: "delivered" });
  await n.until("the dead letter", async () => deadLetters.some((e) => e.headers[DEVICE_HEADER] === ios.deviceId));
  const letter = deadLetters.find((e) => e.headers[DEVICE_HEADER] === ios.deviceId)!;
  t.regex(letter.headers["dlq-reason"] ?? "", /gave up after 3 attempts/);
  t.is(letter.headers["dlq-original-topic"], n.env["NOTIFICATION_EVENTS_TOPIC"]);
});

test("a device whose session holds a live foreground stream gets no push; once it says away, it does", async (t) => {
  const author = await n.signUp();
  const ios = await n.registerDevice(author, "ios");
  const connection = { userId: author.userId, sessionId: author.sessionId, connectionId: crypto.randomUUID() };
  await n.hub.connect(connection, 120_000);

  const inForeground = await likeFor(author);
  t.like(await settled(author, ios.deviceId, inForeground), { status: "skipped", reason: "foreground stream" });

  await n.hub.hint(author.userId, author.sessionId, true, 120_000);
  const inBackground = await likeFor(author);
  t.like(await settled(author, ios.deviceId, inBackground), { status: "delivered" });
  t.is(n.apns.requestsFor(ios.token).length, 1);
  await n.hub.disconnect(connection);
});
