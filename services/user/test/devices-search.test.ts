// Push devices and user search against real PostgreSQL, Redis and Kafka.
import test from "ava";
import { Code } from "@connectrpc/connect";
import { Platform } from "@aviary/gen/aviary/user/v1/user_pb";
import { rejection, startTestUser, type TestUser } from "./harness.ts";

let users: TestUser;
test.before(async () => {
  users = await startTestUser();
});
test.after.always(async () => {
  await users?.close();
});

test("RegisterDevice is idempotent per (user, token); ListDevices pages; others' devices are NOT_FOUND", async (t) => {
  const [a, b] = await Promise.all([users.signUp({ label: "dev-a" }), users.signUp({ label: "dev-b" })]);
  const first = await users.client.registerDevice({ platform: Platform.IOS, token: "apns-token-1" }, a.call);
  const again = await users.client.registerDevice({ platform: Platform.IOS, token: "apns-token-1" }, a.call);
  t.is(again.device?.deviceId, first.device?.deviceId);
  await users.client.registerDevice({ platform: Platform.ANDROID, token: "fcm-token-2" }, a.call);
  await users.client.registerDevice({ platform: Platform.WEB, token: "https://push.example/3" }, a.call);
  // The same token for another user is another device.
  const bDevice = await users.client.registerDevice({ platform: Platform.IOS, token: "apns-token-1" }, b.call);
  t.not(bDevice.device?.deviceId, first.device?.deviceId);

  const page1 = await users.client.listDevices({ pageSize: 2 }, a.call);
  const page2 = await users.client.listDevices({ pageSize: 2, pageToken: page1.nextPageToken }, a.call);
  t.is(page2.nextPageToken, "");
  t.deepEqual(
    [...page1.devices, ...page2.devices].map((d) => [d.platform, d.token]),
    [
      [Platform.WEB, "https://push.example/3"],
      [Platform.ANDROID, "fcm-token-2"],
      [Platform.IOS, "apns-token-1"],
    ],
  );
  t.deepEqual((await users.client.listDevices({}, b.call)).devices.map((d) => d.deviceId), [bDevice.device?.deviceId]);

  t.is((await rejection(users.client.removeDevice({ deviceId: first.device?.deviceId ?? "" }, b.call))).code, Code.NotFound);
  await users.client.removeDevice({ deviceId: first.device?.deviceId ?? "" }, a.call);
  t.is((await rejection(users.client.removeDevice({ deviceId: first.device?.deviceId ?? "" }, a.call))).code, Code.NotFound);
  t.is((await users.client.listDevices({}, a.call)).devices.length, 2);
  t.is((await users.client.listDevices({}, b.call)).devices.length, 1, "b's device with the same token stays");

  t.is((await rejection(users.client.registerDevice({ platform: Platform.UNSPECIFIED, token: "x" }, a.call))).code, Code.InvalidArgument);
  t.is((await rejection(users.client.registerDevice({ platform: Platform.IOS, token: "x".repeat(4097) }, a.call))).code, Code.InvalidArgument);
  await users.client.registerDevice({ platform: Platform.IOS, token: "x".repeat(4096) }, a.call);
});

test("SearchUsers ranks exact username, username prefix, display-name prefix, then word prefix; pages; hides blocks", async (t) => {
  const tag = `q${Date.now().toString(36)}`;
  const [viewer, exact, prefixed, display, word, blocker] = await Promise.all(
    ["viewer", "exact", "prefixed", "display", "word", "blocker"].map((label) => users.signUp({ label })),
  );
  await users.client.updateProfile({ username: tag }, exact!.call);
  await users.client.updateProfile({ username: `${tag}_two` }, prefixed!.call);
  await users.client.updateProfile({ username: `zz_${tag}`, displayName: `${tag.toUpperCase()} Display` }, display!.call);
  await users.client.updateProfile({ username: `yy_${tag}`, displayName: `Someone ${tag}` }, word!.call);
  await users.client.updateProfile({ username: `${tag}_blocker` }, blocker!.call);
  await users.client.block({ userId: viewer!.userId }, blocker!.call);

  const all = await users.client.searchUsers({ query: `@${tag.toUpperCase()}` }, viewer!.call);
  t.deepEqual(
    all.profiles.map((p) => p.userId),
    [exact!.userId, prefixed!.userId, display!.userId, word!.userId],
  );

  const seen: string[] = [];
  let pageToken = "";
  do {
    const page = await users.client.searchUsers({ query: tag, pageSize: 1, pageToken }, viewer!.call);
    seen.push(...page.profiles.map((p) => p.userId));
    pageToken = page.nextPageToken;
  } while (pageToken !== "" && seen.length < 10);
  t.deepEqual(seen, all.profiles.map((p) => p.userId));

  // A token only continues its own query.
  const first = await users.client.searchUsers({ query: tag, pageSize: 1 }, viewer!.call);
  t.is((await rejection(users.client.searchUsers({ query: `${tag}_`, pageToken: first.nextPageToken }, viewer!.call))).code, Code.InvalidArgument);
  // LIKE wildcards are literal.
  t.deepEqual((await users.client.searchUsers({ query: "%" }, viewer!.call)).profiles, []);
  t.is((await rejection(users.client.searchUsers({ query: " @ " }, viewer!.call))).code, Code.InvalidArgument);
});
