// Service tokens (client credentials) from the real auth service: what a token
// says, that unknown clients and wrong secrets look alike, bad input, the
// per-client failure limit, and the configuration format.
import test from "ava";
import { createHash } from "node:crypto";
import { Code, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { ServiceAuthService } from "@aviary/gen/aviary/auth/v1/service_auth_pb";
import { BadRequestSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { ConfigError } from "@aviary/runtime/config";
import { createServiceTokenVerifier, createTokenVerifier } from "@aviary/runtime/auth/verifier";
import { as, rejection, startTestAuth, uniqueIp, type TestAuth } from "./harness.ts";
import { authConfigFromEnv } from "../src/index.ts";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const NOTIFICATION_SECRET = "notification-secret-4f0c1e2d9b8a7766";
const FEED_SECRET = "feed-secret-0a1b2c3d4e5f60718293";
const CLIENTS = `notification:user.devices.read+posts.read:${sha256(NOTIFICATION_SECRET)}, feed:posts.read:${sha256(FEED_SECRET).toUpperCase()}`;

let auth: TestAuth;
let client: Client<typeof ServiceAuthService>;
test.before(async () => {
  auth = await startTestAuth({ AUTH_SERVICE_CLIENTS: CLIENTS });
  client = createClient(ServiceAuthService, createGrpcTransport({ baseUrl: auth.service.url }));
});
test.after.always(async () => {
  await auth?.close();
});

const jwks = () => new URL(`${auth.service.url}/.well-known/jwks.json`);

test("a configured client gets a signed svc+jwt for the internal audience with its scopes", async (t) => {
  const before = Math.floor(Date.now() / 1000);
  const res = await client.issueServiceToken({ clientId: "notification", clientSecret: NOTIFICATION_SECRET }, as({ ip: uniqueIp() }));
  t.deepEqual(res.scopes, ["user.devices.read", "posts.read"]);

  const header = decodeProtectedHeader(res.accessToken);
  t.is(header.typ, "svc+jwt");
  t.is(header.alg, "ES256");
  const claims = decodeJwt(res.accessToken);
  t.is(claims.iss, "aviary-auth");
  t.is(claims.aud, "aviary-internal");
  t.is(claims.sub, "service:notification");
  t.is(claims.scope, "user.devices.read posts.read");
  t.is(claims.sid, undefined);
  t.is(typeof claims.jti, "string");
  t.is((claims.exp ?? 0) - (claims.iat ?? 0), 300, "AUTH_SERVICE_TOKEN_TTL defaults to 5m");
  t.true((claims.iat ?? 0) >= before - 1);
  t.is(timestampDate(res.expiresAt!).getTime(), (claims.exp ?? 0) * 1000);

  // Verifies against the published key set as a service principal…
  const principal = await createServiceTokenVerifier({ issuer: "aviary-auth", audience: "aviary-internal", jwks: jwks() }).verify(res.accessToken);
  t.like(principal, { kind: "service", clientId: "notification", scopes: ["user.devices.read", "posts.read"] });
  // …and never as a user's access token (what the edge and every client-facing service check).
  const userVerifier = createTokenVerifier({ issuer: "aviary-auth", audience: "aviary", jwks: jwks(), typ: "at+jwt" });
  t.is((await rejection(userVerifier.verify(res.accessToken))).code, Code.Unauthenticated);
});

test("each token is distinct (own jti) and a second client gets only its own scopes", async (t) => {
  const ip = uniqueIp();
  const a = await client.issueServiceToken({ clientId: "feed", clientSecret: FEED_SECRET }, as({ ip }));
  const b = await client.issueServiceToken({ clientId: "feed", clientSecret: FEED_SECRET }, as({ ip }));
  t.deepEqual(a.scopes, ["posts.read"]);
  t.is(decodeJwt(a.accessToken).sub, "service:feed");
  t.not(decodeJwt(a.accessToken).jti, decodeJwt(b.accessToken).jti);
});

test("the auth service itself does not take service tokens (it did not opt in)", async (t) => {
  const { accessToken } = await client.issueServiceToken({ clientId: "notification", clientSecret: NOTIFICATION_SECRET }, as({ ip: uniqueIp() }));
  const error = await rejection(auth.client.getMe({}, as({ token: accessToken })));
  t.is(error.code, Code.Unauthenticated);
});

test("unknown client and wrong secret are both UNAUTHENTICATED with the same message", async (t) => {
  const wrongSecret = await rejection(client.issueServiceToken({ clientId: "notification", clientSecret: FEED_SECRET }, as({ ip: uniqueIp() })));
  const unknown = await rejection(client.issueServiceToken({ clientId: "nobody", clientSecret: NOTIFICATION_SECRET }, as({ ip: uniqueIp() })));
  const otherClientsSecret = await rejection(client.issueServiceToken({ clientId: "feed", clientSecret: NOTIFICATION_SECRET }, as({ ip: uniqueIp() })));
  for (const error of [wrongSecret, unknown, otherClientsSecret]) t.is(error.code, Code.Unauthenticated);
  t.is(wrongSecret.rawMessage, unknown.rawMessage);
  t.is(otherClientsSecret.rawMessage, unknown.rawMessage);
});

test("bad input is INVALID_ARGUMENT naming the field", async (t) => {
  const cases: Array<[{ clientId: string; clientSecret: string }, string[]]> = [
    [{ clientId: "Notification", clientSecret: NOTIFICATION_SECRET }, ["client_id"]],
    [{ clientId: "notification service", clientSecret: NOTIFICATION_SECRET }, ["client_id"]],
    [{ clientId: "9lives", clientSecret: NOTIFICATION_SECRET }, ["client_id"]],
    [{ clientId: "n".repeat(65), clientSecret: NOTIFICATION_SECRET }, ["client_id"]],
    [{ clientId: "notification", clientSecret: "" }, ["client_secret"]],
    [{ clientId: "notification", clientSecret: "x".repeat(257) }, ["client_secret"]],
    [{ clientId: "", clientSecret: "" }, ["client_id", "client_secret"]],
  ];
  for (const [request, expected] of cases) {
    const error = await rejection(client.issueServiceToken(request, as({ ip: uniqueIp() })));
    t.is(error.code, Code.InvalidArgument, JSON.stringify(request).slice(0, 80));
    const fields = error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
    t.deepEqual([...new Set(fields)].sort(), expected);
  }
});

test("failures are limited per client and address: the guesser's address is blocked, the real service's is not", async (t) => {
  const guesser = uniqueIp();
  for (let i = 0; i < 5; i++) {
    const error = await rejection(client.issueServiceToken({ clientId: "notification", clientSecret: `guess-${i}` }, as({ ip: guesser })));
    t.is(error.code, Code.Unauthenticated);
  }
  const blocked = await rejection(client.issueServiceToken({ clientId: "notification", clientSecret: NOTIFICATION_SECRET }, as({ ip: guesser })));
  t.is(blocked.code, Code.ResourceExhausted);
  const real = await client.issueServiceToken({ clientId: "notification", clientSecret: NOTIFICATION_SECRET }, as({ ip: uniqueIp() }));
  t.true(real.accessToken.length > 0);
});

test("AUTH_SERVICE_CLIENTS: malformed entries are a ConfigError that never echoes a digest", (t) => {
  const digest = sha256("x");
  const bad = [
    `notification:user.devices.read`,
    `Notification:user.devices.read:${digest}`,
    `notification::${digest}`,
    `notification:User Devices:${digest}`,
    `notification:user.devices.read:abc123`,
    `notification:a:${digest},notification:b:${digest}`,
  ];
  for (const value of bad) {
    const error = t.throws(() => authConfigFromEnv({ AUTH_SERVICE_CLIENTS: value }), { instanceOf: ConfigError }, value);
    t.true((error as ConfigError).problems.every((p) => p.variable === "AUTH_SERVICE_CLIENTS"));
    t.false(error!.message.includes(digest), value);
  }
  t.deepEqual(authConfigFromEnv({}).serviceClients, []);
});

test("a service token may not outlive an access token, and the audiences must differ", (t) => {
  t.throws(() => authConfigFromEnv({ AUTH_SERVICE_TOKEN_TTL: "20m", AUTH_ACCESS_TOKEN_TTL: "15m" }), { message: /AUTH_SERVICE_TOKEN_TTL/ });
  t.throws(() => authConfigFromEnv({ AUTH_INTERNAL_AUDIENCE: "aviary" }), { message: /AUTH_INTERNAL_AUDIENCE/ });
  t.is(authConfigFromEnv({ AUTH_SERVICE_TOKEN_TTL: "1m" }).serviceTokenTtlMs, 60_000);
});
