// Roles declared on RPCs (aviary.auth.v1.required_role), enforced by the
// auth interceptor on a real server: the token's `roles` claim must hold the
// role or "admin"; service tokens never pass; a role-gated method is never
// public; a malformed claim is a bad token.
import test from "ava";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import type { CryptoKey, JWK } from "jose";
import { Code, ConnectError, createClient, type ServiceImpl } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { RoleService } from "@aviary/gen/aviary/auth/v1/roles_pb";
import { ModerationService } from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import { createLogger } from "../src/log.ts";
import { startTelemetry, type Telemetry } from "../src/telemetry.ts";
import { startServer, type RunningServer } from "../src/server.ts";
import { createServiceTokenVerifier, createTokenVerifier } from "../src/auth/verifier.ts";
import { requirePrincipal } from "../src/context.ts";
import { Role, requiredRoleOf } from "../src/auth/roles.ts";

const ISSUER = "https://auth.aviary.test";
const someUser = "0190a9b0-0000-7000-8000-000000000001";
let privateKey: CryptoKey;
let jwk: JWK;
let telemetry: Telemetry;
let server: RunningServer;

function sign(typ: string, claims: Record<string, unknown>): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: ISSUER, jti: crypto.randomUUID(), iat: now, exp: now + 300, ...claims }).setProtectedHeader({ alg: "ES256", kid: "k1", typ }).sign(privateKey);
}
const userToken = (roles?: unknown) => sign("at+jwt", { aud: "aviary", sub: "user-1", sid: "session-1", ...(roles === undefined ? {} : { roles }) });
const call = async (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

const roleStub: Partial<ServiceImpl<typeof RoleService>> = {
  listUserRoles(_req, ctx) {
    return { grants: (requirePrincipal(ctx).roles ?? []).map((role) => ({ userId: role })) };
  },
};
const moderationStub: Partial<ServiceImpl<typeof ModerationService>> = {
  listReports() {
    return {};
  },
  createReport() {
    return { created: true };
  },
};

test.before(async () => {
  const pair = await generateKeyPair("ES256");
  privateKey = pair.privateKey;
  jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256" };
  telemetry = startTelemetry({ serviceName: "required-role-test" });
  const jwks = () => ({ keys: [jwk] });
  server = await startServer({
    name: "required-role-test",
    port: 0,
    logger: createLogger("required-role-test", "silent"),
    telemetry,
    readiness: [],
    routes: (router) => {
      router.service(RoleService, roleStub);
      router.service(ModerationService, moderationStub);
    },
    auth: {
      verifier: createTokenVerifier({ issuer: ISSUER, audience: "aviary", jwks, typ: "at+jwt" }),
      // Listing a role-gated method as public must not open it.
      publicProcedures: [`${RoleService.typeName}/ListUserRoles`],
      serviceTokens: { verifier: createServiceTokenVerifier({ issuer: ISSUER, audience: "aviary-internal", jwks }), procedures: [`${RoleService.typeName}/ListUserRoles`] },
    },
  });
});

test.after.always(async () => {
  await server?.close();
  await telemetry?.shutdown();
});

const codeOf = (p: Promise<unknown>) => p.then(() => Code.Unknown - 100, (e: unknown) => ConnectError.from(e).code);

test("the option is read from the descriptors", (t) => {
  t.is(requiredRoleOf(RoleService.method.listUserRoles), Role.ADMIN);
  t.is(requiredRoleOf(ModerationService.method.listReports), Role.MODERATOR);
  t.is(requiredRoleOf(ModerationService.method.createReport), undefined);
});

test("a required role: held (or admin) passes; missing is PERMISSION_DENIED; no token is UNAUTHENTICATED", async (t) => {
  const transport = createGrpcTransport({ baseUrl: server.url });
  const roles = createClient(RoleService, transport);
  const moderation = createClient(ModerationService, transport);
  t.deepEqual((await roles.listUserRoles({ userId: someUser }, await call(await userToken(["admin"])))).grants.map((g) => g.userId), ["admin"]);
  t.is(await codeOf(roles.listUserRoles({ userId: someUser }, await call(await userToken(["moderator"])))), Code.PermissionDenied);
  t.is(await codeOf(roles.listUserRoles({ userId: someUser }, await call(await userToken()))), Code.PermissionDenied);
  t.is(await codeOf(roles.listUserRoles({ userId: someUser })), Code.Unauthenticated, "never public");
  await moderation.listReports({}, await call(await userToken(["moderator"])));
  await moderation.listReports({}, await call(await userToken(["admin"])));
  t.is(await codeOf(moderation.listReports({}, await call(await userToken([])))), Code.PermissionDenied);
  t.is(await codeOf(moderation.listReports({}, await call(await userToken(["Moderator"])))), Code.PermissionDenied, "claims match exactly");
  t.true((await moderation.createReport({ target: { kind: { case: "userId", value: someUser } }, reason: 1 }, await call(await userToken()))).created, "no role needed");
  // A malformed claim is a bad token.
  t.is(await codeOf(moderation.listReports({}, await call(await userToken("moderator")))), Code.Unauthenticated);
  t.is(await codeOf(moderation.listReports({}, await call(await userToken([1])))), Code.Unauthenticated);
});

test("a service token never passes a role requirement, even on a procedure open to service tokens", async (t) => {
  const roles = createClient(RoleService, createGrpcTransport({ baseUrl: server.url }));
  const token = await sign("svc+jwt", { aud: "aviary-internal", sub: "service:notification", scope: "all", roles: ["admin"] });
  t.is(await codeOf(roles.listUserRoles({ userId: someUser }, await call(token))), Code.PermissionDenied);
});
