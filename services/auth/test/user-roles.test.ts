// Roles (RoleService) and suspensions in the auth service, on real
// infrastructure: the first admin from AUTH_BOOTSTRAP_ADMINS, the `roles`
// claim, grants reaching tokens at refresh, revocations ending sessions at
// once, admin-only RPCs, bad input; and the moderation service's
// UserSuspended/UserUnsuspended events applied in order, whatever replays.
import test from "ava";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { decodeJwt } from "jose";
import { RoleService } from "@aviary/gen/aviary/auth/v1/roles_pb";
import { UserSuspendedSchema, UserUnsuspendedSchema } from "@aviary/gen/aviary/events/v1/moderation_events_pb";
import { ErrorInfoSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { Role } from "@aviary/runtime/auth/roles";
import { openEventBus } from "@aviary/runtime/bus/open";
import type { EventBus } from "@aviary/runtime/bus/bus";
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import { eventually, infra, uniqueName } from "../../runtime/test-support/infra.ts";
import { as, password, rejection, startTestAuth, uniqueEmail, uniqueIp, type TestAuth } from "./harness.ts";
import { violatedFields } from "../../post/test/harness.ts";

let auth: TestAuth;
let bus: EventBus;
let roles: ReturnType<typeof createClient<typeof RoleService>>;
const topic = uniqueName("moderation_events_roles_test");
const adminEmail = uniqueEmail("admin");

interface Signed {
  userId: string;
  email: string;
  token: string;
  refresh: string;
  call: { headers: Record<string, string> };
}

async function register(label: string): Promise<string> {
  const email = uniqueEmail(label);
  await auth.client.register({ identity: { case: "email", value: email }, password });
  return email;
}

async function signIn(email: string): Promise<Signed> {
  const login = await auth.client.login({ identity: { case: "email", value: email }, password, deviceName: "test" }, as({ ip: uniqueIp() }));
  const token = login.tokens?.accessToken ?? "";
  return { userId: login.userId, email, token, refresh: login.tokens?.refreshToken ?? "", call: as({ token }) };
}

const rolesClaim = (token: string) => decodeJwt(token)["roles"];

async function publish<D extends DescMessage>(schema: D, key: string, message: MessageInitShape<D>): Promise<void> {
  await bus.publish([
    { topic, key, value: toBinary(schema, create(schema, message)), headers: { "event-id": crypto.randomUUID(), "event-type": schema.typeName, "content-type": "application/x-protobuf" } },
  ]);
}

test.before(async () => {
  auth = await startTestAuth({ AUTH_BOOTSTRAP_ADMINS: `  ${adminEmail.toUpperCase()} ,nobody-yet@example.org`, MODERATION_EVENTS_TOPIC: topic, AUTH_SUSPENSIONS_GROUP: uniqueName("auth_suspensions_test") });
  roles = createClient(RoleService, createGrpcTransport({ baseUrl: auth.service.url }));
  bus = await openEventBus({ brokers: (await infra()).kafkaBrokers, clientId: "auth-roles-test" });
  await auth.client.register({ identity: { case: "email", value: adminEmail }, password });
});

test.after.always(async () => {
  await bus?.close();
  await auth?.close();
});

test.serial("the first admin comes from AUTH_BOOTSTRAP_ADMINS, once; its token carries the roles claim", async (t) => {
  const [first] = await Promise.all([auth.service.applyBootstrapAdmins()]);
  t.is(first.length, 1);
  t.deepEqual(await auth.service.applyBootstrapAdmins(), [], "applying it again changes nothing");
  const admin = await signIn(adminEmail);
  t.deepEqual(rolesClaim(admin.token), ["admin"]);
  const granted = await auth.query<{ type: string }>("select type from auth.outbox_events where key = $1 and type = 'aviary.events.v1.RoleGranted'", [admin.userId]);
  t.is(granted.length, 1, "one RoleGranted");
  const listed = await roles.listUserRoles({ userId: admin.userId }, admin.call);
  t.deepEqual(listed.grants.map((g) => [g.role, g.grantedBy]), [[Role.ADMIN, ""]]);
  const plain = await signIn(await register("plain"));
  t.is(rolesClaim(plain.token), undefined, "no roles, no claim");
});

test.serial("only admins call RoleService; bad input gets field errors; nothing is written", async (t) => {
  const admin = await signIn(adminEmail);
  const plain = await signIn(await register("plain"));
  const [before] = await auth.query<{ n: number }>("select count(*)::int as n from auth.user_roles");
  for (const call of [
    roles.grantRole({ userId: plain.userId, role: Role.ADMIN }, plain.call),
    roles.revokeRole({ userId: admin.userId, role: Role.ADMIN }, plain.call),
    roles.listUserRoles({ userId: plain.userId }, plain.call),
  ]) {
    const error = await rejection(call);
    t.is(error.code, Code.PermissionDenied);
    t.regex(error.rawMessage, /admin role/);
  }
  t.deepEqual(violatedFields(await rejection(roles.grantRole({ userId: "someone", role: Role.UNSPECIFIED }, admin.call))), ["user_id", "role"]);
  t.deepEqual(violatedFields(await rejection(roles.grantRole({ userId: plain.userId, role: 7 as Role }, admin.call))), ["role"]);
  t.is((await rejection(roles.grantRole({ userId: crypto.randomUUID(), role: Role.MODERATOR }, admin.call))).code, Code.NotFound);
  t.is((await rejection(roles.revokeRole({ userId: plain.userId, role: Role.MODERATOR }, admin.call))).code, Code.NotFound);
  t.is((await rejection(roles.revokeRole({ userId: admin.userId, role: Role.ADMIN }, admin.call))).code, Code.FailedPrecondition);
  const [after] = await auth.query<{ n: number }>("select count(*)::int as n from auth.user_roles");
  t.deepEqual(after, before);
});

test.serial("a grant reaches the holder's token at refresh; a revocation ends every session at once", async (t) => {
  const admin = await signIn(adminEmail);
  const mo = await signIn(await register("mo"));
  const grant = await roles.grantRole({ userId: mo.userId, role: Role.MODERATOR }, admin.call);
  t.is(grant.grant?.grantedBy, admin.userId);
  t.is((await roles.grantRole({ userId: mo.userId, role: Role.MODERATOR }, admin.call)).grant?.grantedAt?.seconds, grant.grant?.grantedAt?.seconds, "granting twice keeps the grant");
  t.is(rolesClaim(mo.token), undefined, "a token issued before the grant has no role");
  const refreshed = await auth.client.refresh({ refreshToken: mo.refresh });
  const moToken = refreshed.tokens?.accessToken ?? "";
  t.deepEqual(rolesClaim(moToken), ["moderator"]);
  const secondDevice = await signIn(mo.email);
  t.deepEqual(rolesClaim(secondDevice.token), ["moderator"]);

  await roles.revokeRole({ userId: mo.userId, role: Role.MODERATOR }, admin.call);
  // At once, not at expiry: both sessions ended, their tokens (carrying the role) refused.
  for (const token of [moToken, secondDevice.token]) t.is((await rejection(auth.client.getMe({}, as({ token })))).code, Code.Unauthenticated);
  t.is((await rejection(auth.client.refresh({ refreshToken: refreshed.tokens?.refreshToken ?? "" }))).code, Code.Unauthenticated);
  const revokedEvents = await auth.query<{ type: string }>("select type from auth.outbox_events where key = $1 and type in ('aviary.events.v1.RoleRevoked', 'aviary.events.v1.SessionRevoked') order by type", [mo.userId]);
  t.deepEqual(revokedEvents.map((e) => e.type), ["aviary.events.v1.RoleRevoked", "aviary.events.v1.SessionRevoked", "aviary.events.v1.SessionRevoked"]);
  const fresh = await signIn(mo.email);
  t.is(rolesClaim(fresh.token), undefined);
  t.deepEqual((await roles.listUserRoles({ userId: mo.userId }, admin.call)).grants, []);
});

test.serial("UserSuspended ends the sessions and refuses sign-in with the reason; events apply in order whatever the replays", async (t) => {
  const ben = await signIn(await register("ben"));
  const t0 = Date.now();
  await publish(UserSuspendedSchema, ben.userId, { userId: ben.userId, actorId: crypto.randomUUID(), reason: "spam", suspendedAt: timestampFromDate(new Date(t0)) });
  await eventually("Ben's session ended", async () => (await rejection(auth.client.getMe({}, ben.call)).catch(() => undefined))?.code === Code.Unauthenticated, 60_000);
  const refused = await rejection(signIn(ben.email));
  t.is(refused.code, Code.FailedPrecondition);
  t.is(refused.findDetails(ErrorInfoSchema)[0]?.reason, "ACCOUNT_SUSPENDED");
  t.is(refused.findDetails(ErrorInfoSchema)[0]?.metadata["reason"], "spam");
  // A wrong password still says only that: suspension is not revealed without the password.
  t.is((await rejection(auth.client.login({ identity: { case: "email", value: ben.email }, password: "wrong-password-123", deviceName: "x" }, as({ ip: uniqueIp() })))).code, Code.Unauthenticated);

  await publish(UserUnsuspendedSchema, ben.userId, { userId: ben.userId, actorId: crypto.randomUUID(), reason: "appeal", unsuspendedAt: timestampFromDate(new Date(t0 + 2000)) });
  // A replayed older suspension after the newer unsuspension changes nothing.
  await publish(UserSuspendedSchema, ben.userId, { userId: ben.userId, actorId: crypto.randomUUID(), reason: "spam", suspendedAt: timestampFromDate(new Date(t0 + 1000)) });
  // One key, one partition: the three apply in order. Wait until all three were handled.
  await eventually("Ben's events applied", async () => {
    const rows = await auth.query<{ changed_at: Date }>("select changed_at from auth.account_suspensions where user_id = $1 and suspended = false", [ben.userId]);
    const processed = await auth.query<{ n: number }>("select count(*)::int as n from auth.processed_events where consumer = 'auth-suspensions'");
    return rows.length === 1 && (processed[0]?.n ?? 0) >= 3;
  }, 60_000);
  const again = await signIn(ben.email);
  t.truthy(again.token, "signs in again once unsuspended");
});
