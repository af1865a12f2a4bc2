// UserInternalService over the real auth and user services: service tokens
// from ServiceAuthService (through the runtime's token source and client
// interceptor, as the notification service will call it), scopes, and
// everything that must not get in.
import test from "ava";
import { createHash } from "node:crypto";
import { Code, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Platform } from "@aviary/gen/aviary/user/v1/user_pb";
import { UserInternalService } from "@aviary/gen/aviary/user/v1/user_internal_pb";
import { ServiceAuthService } from "@aviary/gen/aviary/auth/v1/service_auth_pb";
import { BadRequestSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { createServiceClient } from "@aviary/runtime/interceptors/client";
import { createServiceTokenSource, serviceTokenInterceptor } from "@aviary/runtime/auth/service-token";
import { startTestAuth, type TestAuth } from "../../auth/test/harness.ts";
import { as, rejection, startTestUser, type Account, type TestUser } from "./harness.ts";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const secrets = { notification: "notification-secret-5e1d2c3b4a59687f", feed: "feed-secret-1f2e3d4c5b6a79880" };

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
    AUTH_SERVICE_CLIENTS: `notification:user.devices.read:${sha256(secrets.notification)},feed:posts.read:${sha256(secrets.feed)}`,
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
