// UserInternalService over the real auth and user services: service tokens
// from ServiceAuthService (through the runtime's token source and client
// interceptor, as the notification service will call it), scopes, and
// everything that must not get in.
import test from "ava";
import { createHash } from "node:crypto";
import { Code, createClient, type Client } from "@connectrpc/connect";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Platform } from "@aviary/gen/aviary/user/v1/user_pb";
import { UserInternalService } from "@aviary/gen/aviary/user/v1/user_internal_pb";
import { ServiceAuthService } from "@aviary/gen/aviary/auth/v1/service_auth_pb";
import { BadRequestSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { createServiceClient } from "@aviary/runtime/interceptors/client";
import { createServiceTokenSource, serviceTokenInterceptor } from "@aviary/runtime/auth/service-token";
import { startTestAuth, type TestAuth } from "../../auth/test/harness.ts";
import { password, uniqueIp } from "../../auth/test/harness.ts";
import { as, rejection, startTestUser, type Account, type TestUser } from "./harness.ts";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const secrets = {
  notification: "notification-secret-5e1d2c3b4a59687f",
  feed: "feed-secret-1f2e3d4c5b6a79880",
  // Reads devices, may not change them or read profiles.
  reader: "reader-secret-0a9b8c7d6e5f4a3b2",
};

let auth: TestAuth;
let users: TestUser;
let internal: Client<typeof UserInternalService>;
let serviceAuth: Client<typeof ServiceAuthService>;
let ada: Account;
let bob: Account;
let cy: Account;
let dee: Account;

/** A service token straight from the auth service. */
async function serviceToken(client: keyof typeof secrets): Promise<string> {
  return (await serviceAuth.issueServiceToken({ clientId: client, clientSecret: secrets[client] })).accessToken;
}

test.before(async () => {
  auth = await startTestAuth({
    // The notification client as deploy configures it (see README "Configuration (user and media services)").
    AUTH_SERVICE_CLIENTS: [
      `notification:user.devices.read+user.devices.write+user.profiles.read:${sha256(secrets.notification)}`,
      `feed:posts.read:${sha256(secrets.feed)}`,
      `reader:user.devices.read:${sha256(secrets.reader)}`,
    ].join(","),
  });
  users = await startTestUser({}, auth);
  internal = createClient(UserInternalService, createGrpcTransport({ baseUrl: users.service.url }));
  serviceAuth = createClient(ServiceAuthService, createGrpcTransport({ baseUrl: auth.service.url }));
  const signedUp = await Promise.all(["ada", "bob", "cy", "dee"].map((label) => users.signUp({ label })));
  [ada, bob, cy, dee] = signedUp as [Account, Account, Account, Account];
  await users.client.registerDevice({ platform: Platform.IOS, token: "ada-apns" }, ada.call);
  await users.client.registerDevice({ platform: Platform.ANDROID, token: "ada-fcm" }, ada.call);
  await users.client.registerDevice({ platform: Platform.WEB, token: "bob-web" }, bob.call);
  await users.client.registerDevice({ platform: Platform.IOS, token: "dee-apns" }, dee.call);
});
test.after.always(async () => {
  await users?.close();
  await auth?.close();
});

test("a service with user.devices.read reads every device of exactly the users asked for", async (t) => {
  const source = createServiceTokenSource({ authUrl: auth.service.url, clientId: "notification", clientSecret: secrets.notification });
  const client = createServiceClient(UserInternalService, users.service.url, { interceptors: [serviceTokenInterceptor(source)] });
  // cy has no devices; dee has one but is not asked for; ada is asked twice, once in upper case.
  const res = await client.batchGetDevices({ userIds: [ada.userId, bob.userId, cy.userId, ada.userId.toUpperCase()] });
  const got = res.devices.map((d) => `${d.userId} ${d.device?.platform} ${d.device?.token}`).sort();
  t.deepEqual(
    got,
    [`${ada.userId} ${Platform.IOS} ada-apns`, `${ada.userId} ${Platform.ANDROID} ada-fcm`, `${bob.userId} ${Platform.WEB} bob-web`].sort(),
  );
  t.true(res.devices.every((d) => d.device?.deviceId !== "" && d.device?.createdAt !== undefined));
  // Users without devices add nothing.
  t.deepEqual((await client.batchGetDevices({ userIds: [cy.userId] })).devices, []);
});

test("a service token without the scope is PERMISSION_DENIED", async (t) => {
  const error = await rejection(internal.batchGetDevices({ userIds: [ada.userId] }, as({ token: await serviceToken("feed") })));
  t.is(error.code, Code.PermissionDenied);
});

test("a user's access token is PERMISSION_DENIED, even for the user's own devices", async (t) => {
  const error = await rejection(internal.batchGetDevices({ userIds: [ada.userId] }, ada.call));
  t.is(error.code, Code.PermissionDenied);
});

test("no token is UNAUTHENTICATED", async (t) => {
  t.is((await rejection(internal.batchGetDevices({ userIds: [ada.userId] }))).code, Code.Unauthenticated);
});

test("a service token on a client-facing UserService procedure is PERMISSION_DENIED", async (t) => {
  const token = await serviceToken("notification");
  t.is((await rejection(users.client.getProfile({ userId: ada.userId }, as({ token })))).code, Code.PermissionDenied);
  t.is((await rejection(users.client.listDevices({}, as({ token })))).code, Code.PermissionDenied);
});

test("a user's token re-addressed to the internal audience is UNAUTHENTICATED (the signature no longer matches)", async (t) => {
  const [head = "", body = "", sig = ""] = ada.token.split(".");
  const claims = JSON.parse(Buffer.from(body, "base64url").toString()) as Record<string, unknown>;
  const header = JSON.parse(Buffer.from(head, "base64url").toString()) as Record<string, unknown>;
  const encode = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const forged = [
    `${head}.${encode({ ...claims, aud: "aviary-internal" })}.${sig}`,
    `${encode({ ...header, typ: "svc+jwt" })}.${encode({ ...claims, aud: "aviary-internal", sub: "service:notification", scope: "user.devices.read" })}.${sig}`,
  ];
  for (const token of forged) {
    t.is((await rejection(internal.batchGetDevices({ userIds: [ada.userId] }, as({ token })))).code, Code.Unauthenticated);
  }
});

test("bad input is INVALID_ARGUMENT on user_ids", async (t) => {
  const token = await serviceToken("notification");
  const cases: Array<[string[], string]> = [
    [Array.from({ length: 101 }, () => crypto.randomUUID()), "user_ids"],
    [[], "user_ids"],
    [[ada.userId, "not-a-uuid"], "user_ids[1]"],
  ];
  for (const [userIds, field] of cases) {
    const error = await rejection(internal.batchGetDevices({ userIds }, as({ token })));
    t.is(error.code, Code.InvalidArgument);
    t.deepEqual(error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field)), [field]);
  }
  // 100 is allowed.
  const hundred = [ada.userId, ...Array.from({ length: 99 }, () => crypto.randomUUID())];
  t.is((await internal.batchGetDevices({ userIds: hundred }, as({ token }))).devices.length, 2);
});

// ---------------------------------------------------------------- push upkeep and lookups
// Each test below signs up its own users: the tests of a file run concurrently,
// and the ones above count ada's and bob's devices.

/** The `sid` claim of an access token (the session it belongs to). */
function sessionOf(token: string): string {
  const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as { sid?: unknown };
  if (typeof claims.sid !== "string") throw new Error("token without sid");
  return claims.sid;
}

/** The same account signed in again: another session, another token. */
async function signInAgain(account: Account): Promise<Account> {
  const login = await auth.client.login({ identity: { case: "email", value: account.identity }, password, deviceName: "second" }, as({ ip: uniqueIp() }));
  const token = login.tokens?.accessToken ?? "";
  return { ...account, token, call: as({ token }) };
}

/** The notification service's view of one user's devices: token → session id. */
async function deliverable(userId: string): Promise<Map<string, string>> {
  const res = await internal.batchGetDevices({ userIds: [userId] }, as({ token: await serviceToken("notification") }));
  return new Map(res.devices.map((d) => [d.device?.token ?? "", d.sessionId]));
}

type DeviceState = { session_id: string | null; quarantine_reason: string | null; quarantined_at: Date | null; updated_at: Date };

async function stored(deviceId: string): Promise<DeviceState | undefined> {
  const [row] = await users.query<DeviceState>("select session_id, quarantine_reason, quarantined_at, updated_at from users.devices where id = $1", [deviceId]);
  return row;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("RegisterDevice records the caller's session; registering the same token from another session moves it", async (t) => {
  const eve = await users.signUp({ label: "eve" });
  const first = (await users.client.registerDevice({ platform: Platform.IOS, token: "eve-apns" }, eve.call)).device!;
  t.deepEqual(await deliverable(eve.userId), new Map([["eve-apns", sessionOf(eve.token)]]));

  const later = await signInAgain(eve);
  t.not(sessionOf(later.token), sessionOf(eve.token));
  const again = (await users.client.registerDevice({ platform: Platform.IOS, token: "eve-apns" }, later.call)).device!;
  t.is(again.deviceId, first.deviceId, "the same device");
  t.deepEqual(await deliverable(eve.userId), new Map([["eve-apns", sessionOf(later.token)]]));
  t.is((await stored(first.deviceId))?.session_id, sessionOf(later.token));
});

test("QuarantineDevice hides a device from BatchGetDevices, ListDevices tells its owner why, and registering the token again lifts it", async (t) => {
  const fay = await users.signUp({ label: "fay" });
  const token = await serviceToken("notification");
  const apns = (await users.client.registerDevice({ platform: Platform.IOS, token: "fay-apns" }, fay.call)).device!;
  await users.client.registerDevice({ platform: Platform.ANDROID, token: "fay-fcm" }, fay.call);
  t.is((await users.client.listDevices({}, fay.call)).devices.find((d) => d.token === "fay-apns")?.quarantineReason, "");

  t.true((await internal.quarantineDevice({ deviceId: apns.deviceId.toUpperCase(), reason: "BadDeviceToken" }, as({ token }))).quarantined);
  t.deepEqual([...(await deliverable(fay.userId)).keys()], ["fay-fcm"], "the quarantined device is left out, the other stays");
  const listed = await users.client.listDevices({}, fay.call);
  t.deepEqual(listed.devices.map((d) => [d.token, d.quarantineReason]).sort(), [["fay-apns", "BadDeviceToken"], ["fay-fcm", ""]]);
  const firstQuarantine = await stored(apns.deviceId);
  t.truthy(firstQuarantine?.quarantined_at);
  t.is(firstQuarantine?.updated_at.getTime(), timestampDate(apns.updatedAt!).getTime(), "a quarantine is not a registration");

  // Quarantined again: the newest reason, the first time.
  await pause(5);
  t.true((await internal.quarantineDevice({ deviceId: apns.deviceId, reason: "  DeviceTokenNotForTopic " }, as({ token }))).quarantined);
  const second = await stored(apns.deviceId);
  t.is(second?.quarantine_reason, "DeviceTokenNotForTopic");
  t.is(second?.quarantined_at?.getTime(), firstQuarantine?.quarantined_at?.getTime());

  // The app registers the token again (e.g. after switching APNs environment).
  const again = (await users.client.registerDevice({ platform: Platform.IOS, token: "fay-apns" }, fay.call)).device!;
  t.is(again.deviceId, apns.deviceId);
  t.is(again.quarantineReason, "");
  t.deepEqual([...(await deliverable(fay.userId)).keys()].sort(), ["fay-apns", "fay-fcm"]);
  t.like(await stored(apns.deviceId), { quarantine_reason: null, quarantined_at: null });

  t.false((await internal.quarantineDevice({ deviceId: crypto.randomUUID(), reason: "Unregistered" }, as({ token }))).quarantined, "no such device");
});

test("RetireDevice deletes a gone device unless it was registered again after gone_since; unknown devices are deleted: false", async (t) => {
  const gus = await users.signUp({ label: "gus" });
  const token = await serviceToken("notification");
  const retire = (deviceId: string, goneSince?: Date) =>
    internal.retireDevice({ deviceId, ...(goneSince === undefined ? {} : { goneSince: timestampFromDate(goneSince) }) }, as({ token }));

  // gone_since unset: now.
  const gone = (await users.client.registerDevice({ platform: Platform.WEB, token: "gus-web" }, gus.call)).device!;
  t.true((await retire(gone.deviceId)).deleted);
  t.false((await retire(gone.deviceId)).deleted, "already gone");
  t.false((await retire(crypto.randomUUID())).deleted, "never existed");

  // The provider's answer predates the latest registration: kept.
  const phone = (await users.client.registerDevice({ platform: Platform.IOS, token: "gus-apns" }, gus.call)).device!;
  const goneAt = new Date();
  await pause(20);
  await users.client.registerDevice({ platform: Platform.IOS, token: "gus-apns" }, gus.call);
  t.false((await retire(phone.deviceId, goneAt)).deleted);
  t.deepEqual([...(await deliverable(gus.userId)).keys()], ["gus-apns"]);

  // A quarantined device is retired like any other; the registration time is what counts.
  await internal.quarantineDevice({ deviceId: phone.deviceId, reason: "BadDeviceToken" }, as({ token }));
  const registeredAt = (await stored(phone.deviceId))!.updated_at;
  t.false((await retire(phone.deviceId, new Date(registeredAt.getTime() - 1))).deleted);
  t.true((await retire(phone.deviceId.toUpperCase(), registeredAt)).deleted, "gone at the registration time itself: deleted");
  t.deepEqual((await users.client.listDevices({}, gus.call)).devices, []);
});

test("the device writes and lookups need their own scopes, and a user's token gets none of them", async (t) => {
  const hal = await users.signUp({ label: "hal" });
  const device = (await users.client.registerDevice({ platform: Platform.IOS, token: "hal-apns" }, hal.call)).device!;
  const deviceId = device.deviceId;
  const reader = as({ token: await serviceToken("reader") });
  const feed = as({ token: await serviceToken("feed") });
  const calls = (options: { headers: Record<string, string> } | undefined) => [
    internal.retireDevice({ deviceId }, options),
    internal.quarantineDevice({ deviceId, reason: "BadDeviceToken" }, options),
    internal.batchLookupUsers({ userIds: [hal.userId] }, options),
  ];
  for (const [who, options, code] of [
    ["reader (user.devices.read only)", reader, Code.PermissionDenied],
    ["feed (posts.read)", feed, Code.PermissionDenied],
    ["the owner's own access token", hal.call, Code.PermissionDenied],
    ["no token", undefined, Code.Unauthenticated],
  ] as const) {
    for (const call of calls(options)) t.is((await rejection(call)).code, code, who);
  }
  // Nothing was written by the refused calls.
  t.like(await stored(deviceId), { quarantine_reason: null });
  t.deepEqual([...(await deliverable(hal.userId)).keys()], ["hal-apns"]);
  // The reader's scope is enough for what it is for.
  t.is((await internal.batchGetDevices({ userIds: [hal.userId] }, reader)).devices.length, 1);
});

test("BatchLookupUsers finds users by id and by username (any case, @ optional), each once, and leaves unknown ones out", async (t) => {
  const tag = Date.now().toString(36);
  const [ivy, jon, kim] = await Promise.all(["ivy", "jon", "kim"].map((label) => users.signUp({ label })));
  await users.client.updateProfile({ username: `Ivy_${tag}`, displayName: "Ivy Ives" }, ivy!.call);
  await users.client.updateProfile({ username: `jon_${tag}` }, jon!.call);
  await users.client.updateProfile({ displayName: "Kim, no username yet" }, kim!.call);
  const token = as({ token: await serviceToken("notification") });

  const res = await internal.batchLookupUsers(
    {
      // ivy by id and by name; kim (no username) by id; an unknown id.
      userIds: [ivy!.userId, kim!.userId.toUpperCase(), crypto.randomUUID(), kim!.userId],
      usernames: [`IVY_${tag.toUpperCase()}`, `@Jon_${tag}`, `nobody_${tag}`, ""],
    },
    token,
  );
  t.deepEqual(
    res.users.map((u) => [u.userId, u.username, u.displayName]).sort(),
    [
      [ivy!.userId, `Ivy_${tag}`, "Ivy Ives"],
      [jon!.userId, `jon_${tag}`, ""],
      [kim!.userId, "", "Kim, no username yet"],
    ].sort(),
  );
  t.deepEqual((await internal.batchLookupUsers({ usernames: [`jon_${tag}`] }, token)).users.map((u) => u.userId), [jon!.userId]);
  t.deepEqual((await internal.batchLookupUsers({}, token)).users, [], "asking for nobody finds nobody");
});

test("bad input to the device writes and lookups is INVALID_ARGUMENT on the field, and writes nothing", async (t) => {
  const lou = await users.signUp({ label: "lou" });
  const device = (await users.client.registerDevice({ platform: Platform.IOS, token: "lou-apns" }, lou.call)).device!;
  const token = as({ token: await serviceToken("notification") });
  const fields = async (call: Promise<unknown>) => {
    const error = await rejection(call);
    return [error.code, error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field))];
  };

  t.deepEqual(await fields(internal.retireDevice({ deviceId: "not-a-uuid" }, token)), [Code.InvalidArgument, ["device_id"]]);
  t.deepEqual(await fields(internal.retireDevice({}, token)), [Code.InvalidArgument, ["device_id"]]);
  t.deepEqual(await fields(internal.quarantineDevice({ deviceId: "not-a-uuid", reason: "BadDeviceToken" }, token)), [Code.InvalidArgument, ["device_id"]]);
  for (const reason of ["", "   ", "x".repeat(201)]) {
    t.deepEqual(await fields(internal.quarantineDevice({ deviceId: device.deviceId, reason }, token)), [Code.InvalidArgument, ["reason"]], JSON.stringify(reason.slice(0, 5)));
  }
  const tooMany = Array.from({ length: 101 }, () => crypto.randomUUID());
  t.deepEqual(await fields(internal.batchLookupUsers({ userIds: tooMany }, token)), [Code.InvalidArgument, ["user_ids"]]);
  t.deepEqual(await fields(internal.batchLookupUsers({ userIds: [lou.userId, "not-a-uuid"] }, token)), [Code.InvalidArgument, ["user_ids[1]"]]);
  t.deepEqual(await fields(internal.batchLookupUsers({ usernames: tooMany.map((id) => id.slice(0, 8)) }, token)), [Code.InvalidArgument, ["usernames"]]);
  t.deepEqual(await fields(internal.batchLookupUsers({ usernames: ["ok_name", "x".repeat(65)] }, token)), [Code.InvalidArgument, ["usernames[1]"]]);

  // The device is as it was: neither quarantined nor deleted.
  t.like(await stored(device.deviceId), { quarantine_reason: null, quarantined_at: null });
  t.deepEqual([...(await deliverable(lou.userId)).keys()], ["lou-apns"]);
  // 100 of each is allowed.
  t.is((await internal.batchLookupUsers({ userIds: [lou.userId, ...tooMany.slice(2)], usernames: tooMany.slice(1).map((id) => `u${id.slice(0, 8)}`) }, token)).users.length, 1);
});
