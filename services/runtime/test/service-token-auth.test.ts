// The receiving side of service identity: the auth interceptor with both kinds
// of token, on a real server. A service token is a principal of its own kind,
// never a user; it works only where the service opted in and only on the
// procedures listed for it.
import test from "ava";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import type { CryptoKey, JWK } from "jose";
import { Code, ConnectError, createClient, createContextValues, type Client } from "@connectrpc/connect";
import type { ServiceImpl } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { UserInternalService } from "@aviary/gen/aviary/user/v1/user_internal_pb";
import { createLogger } from "../src/log.ts";
import { startTelemetry, type Telemetry } from "../src/telemetry.ts";
import { startServer, type RunningServer } from "../src/server.ts";
import { createServiceTokenVerifier, createTokenVerifier } from "../src/auth/verifier.ts";
import { asCaller, getCaller, principalKey, requirePrincipal, requireServiceScope, servicePrincipalKey, type ServicePrincipal } from "../src/context.ts";

const ISSUER = "https://auth.aviary.test";
const SCOPE = "user.devices.read";
const INTERNAL = `${UserInternalService.typeName}/BatchGetDevices`;

interface Key {
  privateKey: CryptoKey;
  jwk: JWK;
}
async function makeKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: "ES256" } };
}

let key: Key;
let stranger: Key;
let telemetry: Telemetry;
let optedIn: RunningServer;
let notOptedIn: RunningServer;
const revocationChecks: string[] = [];

function sign(k: Key, typ: string, claims: Record<string, unknown>): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: ISSUER, jti: crypto.randomUUID(), iat: now, exp: now + 300, ...claims })
    .setProtectedHeader({ alg: "ES256", kid: k.jwk.kid ?? "", typ })
    .sign(k.privateKey);
}
const serviceToken = (claims: Record<string, unknown> = {}, k = key) =>
  sign(k, "svc+jwt", { aud: "aviary-internal", sub: "service:notification", scope: `posts.read ${SCOPE}`, ...claims });
const userToken = (claims: Record<string, unknown> = {}) => sign(key, "at+jwt", { aud: "aviary", sub: "user-1", sid: "session-1", ...claims });

// Stubs: BatchGetDevices answers with the ids it was asked for; GetMe needs a
// user; Register is public and reports who it saw.
const internal: Partial<ServiceImpl<typeof UserInternalService>> = {
  batchGetDevices(req, ctx) {
    const caller = requireServiceScope(ctx, SCOPE);
    return { devices: req.userIds.map((userId) => ({ userId, device: { deviceId: caller.clientId } })) };
  },
};
const authStub: Partial<ServiceImpl<typeof AuthService>> = {
  getMe(_req, ctx) {
    return { userId: requirePrincipal(ctx).userId };
  },
  register(_req, ctx) {
    return { userId: getCaller(ctx)?.kind ?? "nobody" };
  },
};

async function serve(withServiceTokens: boolean): Promise<RunningServer> {
  const jwks = () => ({ keys: [key.jwk] });
  return startServer({
    name: "svc-auth-test",
    port: 0,
    logger: createLogger("svc-auth-test", "silent"),
    telemetry,
    readiness: [],
    routes: (router) => {
      router.service(UserInternalService, internal);
      router.service(AuthService, authStub);
    },
    auth: {
      verifier: createTokenVerifier({ issuer: ISSUER, audience: "aviary", jwks, typ: "at+jwt" }),
      publicProcedures: [`${AuthService.typeName}/Register`],
      isSessionRevoked: async (sid) => {
        revocationChecks.push(sid);
        return false;
      },
      ...(withServiceTokens
        ? { serviceTokens: { verifier: createServiceTokenVerifier({ issuer: ISSUER, audience: "aviary-internal", jwks }), procedures: [INTERNAL] } }
        : {}),
    },
  });
}

let internalClient: Client<typeof UserInternalService>;
let authClient: Client<typeof AuthService>;

test.before(async () => {
  key = await makeKey("k1");
  stranger = await makeKey("k1"); // same kid, different key: a forgery
  telemetry = startTelemetry({ serviceName: "svc-auth-test" });
  optedIn = await serve(true);
  notOptedIn = await serve(false);
  internalClient = createClient(UserInternalService, createGrpcTransport({ baseUrl: optedIn.url }));
  authClient = createClient(AuthService, createGrpcTransport({ baseUrl: optedIn.url }));
});
test.after.always(async () => {
  await optedIn?.close();
  await notOptedIn?.close();
  await telemetry?.shutdown();
});

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
async function code(call: Promise<unknown>): Promise<Code> {
  try {
    await call;
  } catch (e) {
    return ConnectError.from(e).code;
  }
  return 0 as Code;
}
const ids = ["8d1f0a4e-6a43-4f6e-9d54-1a2b3c4d5e6f"];

test.serial("a service token with the scope is a service principal; no session check runs for it", async (t) => {
  const before = revocationChecks.length;
  const res = await internalClient.batchGetDevices({ userIds: ids }, bearer(await serviceToken()));
  t.deepEqual(res.devices.map((d) => [d.userId, d.device?.deviceId]), [[ids[0], "notification"]]);
  t.is(revocationChecks.length, before);
});

test("a service token without the scope is PERMISSION_DENIED", async (t) => {
  t.is(await code(internalClient.batchGetDevices({ userIds: ids }, bearer(await serviceToken({ scope: "posts.read" })))), Code.PermissionDenied);
  t.is(await code(internalClient.batchGetDevices({ userIds: ids }, bearer(await serviceToken({ scope: undefined })))), Code.PermissionDenied);
});

test("a user's access token on a service procedure is PERMISSION_DENIED; no token is UNAUTHENTICATED", async (t) => {
  t.is(await code(internalClient.batchGetDevices({ userIds: ids }, bearer(await userToken()))), Code.PermissionDenied);
  t.is(await code(internalClient.batchGetDevices({ userIds: ids })), Code.Unauthenticated);
});

test("a service token on a procedure not listed for services is PERMISSION_DENIED (it never reaches requirePrincipal)", async (t) => {
  t.is(await code(authClient.getMe({}, bearer(await serviceToken()))), Code.PermissionDenied);
  // The same procedure still works for users.
  t.is((await authClient.getMe({}, bearer(await userToken()))).userId, "user-1");
});

test("a public procedure ignores a service token that is not meant for it", async (t) => {
  const res = await authClient.register({ identity: { case: "email", value: "a@example.org" }, password: "violet-harbour-teapot-42" }, bearer(await serviceToken()));
  t.is(res.userId, "nobody");
});

test("a service that did not opt in refuses service tokens as UNAUTHENTICATED", async (t) => {
  const client = createClient(UserInternalService, createGrpcTransport({ baseUrl: notOptedIn.url }));
  t.is(await code(client.batchGetDevices({ userIds: ids }, bearer(await serviceToken()))), Code.Unauthenticated);
});

test("forged, misdirected or mixed-up tokens are UNAUTHENTICATED", async (t) => {
  const now = Math.floor(Date.now() / 1000);
  const cases: Record<string, string> = {
    "signed by another key": await serviceToken({}, stranger),
    "public audience": await serviceToken({ aud: "aviary" }),
    "expired": await serviceToken({ iat: now - 600, exp: now - 300 }),
    "no service: subject": await serviceToken({ sub: "user-1", sid: "session-1" }),
    "service claims under typ at+jwt": await sign(key, "at+jwt", { aud: "aviary-internal", sub: "service:notification", scope: SCOPE }),
    "user token with the internal audience": await userToken({ aud: "aviary-internal" }),
  };
  const good = await serviceToken();
  const [head, body, sig] = good.split(".");
  const claims = JSON.parse(Buffer.from(body ?? "", "base64url").toString()) as Record<string, unknown>;
  cases["payload tampered (scope added)"] = `${head}.${Buffer.from(JSON.stringify({ ...claims, scope: `${SCOPE} admin` })).toString("base64url")}.${sig}`;
  for (const [name, token] of Object.entries(cases)) {
    t.is(await code(internalClient.batchGetDevices({ userIds: ids }, bearer(token))), Code.Unauthenticated, name);
  }
});

test("requirePrincipal means a user: a service principal does not pass it, and asCaller has nothing to forward", (t) => {
  const service: ServicePrincipal = { kind: "service", clientId: "notification", scopes: [SCOPE], tokenId: "t", expiresAt: new Date() };
  const values = createContextValues().set(servicePrincipalKey, service);
  t.is(t.throws(() => requirePrincipal(values), { instanceOf: ConnectError })?.code, Code.Unauthenticated);
  t.is(getCaller(values), service);
  t.is(requireServiceScope(values, SCOPE), service);
  t.is(t.throws(() => requireServiceScope(values, "other.scope"), { instanceOf: ConnectError })?.code, Code.PermissionDenied);
  t.is(t.throws(() => asCaller({ values, signal: new AbortController().signal, timeoutMs: () => undefined }), { instanceOf: ConnectError })?.code, Code.Unauthenticated);

  const user = createContextValues().set(principalKey, { userId: "u", sessionId: "s", tokenId: "t", expiresAt: new Date() });
  t.is(t.throws(() => requireServiceScope(user, SCOPE), { instanceOf: ConnectError })?.code, Code.PermissionDenied);
  t.is(t.throws(() => requireServiceScope(createContextValues(), SCOPE), { instanceOf: ConnectError })?.code, Code.Unauthenticated);
});
