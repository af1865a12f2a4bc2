// The calling side of service identity: the token source against a stub
// ServiceAuthService (on a fake clock), and the client interceptor against a
// stub callee that refuses tokens it no longer accepts.
import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ServiceAuthService } from "@aviary/gen/aviary/auth/v1/service_auth_pb";
import { UserInternalService } from "@aviary/gen/aviary/user/v1/user_internal_pb";
import { createLogger } from "../src/log.ts";
import { startTelemetry, type Telemetry } from "../src/telemetry.ts";
import { startServer, type RunningServer } from "../src/server.ts";
import { createServiceClient } from "../src/interceptors/client.ts";
import { createServiceTokenSource, serviceTokenInterceptor, type ServiceTokenSource } from "../src/auth/service-token.ts";

const TTL_SECONDS = 300;
const ANYONE = "0b0e0f3a-7c1d-4e2f-8a9b-0c1d2e3f4a5b";
const FORBIDDEN = "ffffffff-7c1d-4e2f-8a9b-0c1d2e3f4a5b";
const SECRET = "the-right-secret";

/** The issuer's state; each test file's issuer numbers its tokens 1, 2, 3… */
interface Issuer {
  issued: number;
  failing: boolean;
  clock: { now: number };
}

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
/** JWT-shaped (the source reads iat/exp from it); the stubs never verify signatures. */
function stubToken(n: number, issuedAtMs: number): string {
  const iat = Math.floor(issuedAtMs / 1000);
  return `${b64({ alg: "ES256", typ: "svc+jwt" })}.${b64({ n, iat, exp: iat + TTL_SECONDS })}.sig`;
}
const numberOf = (token: string) => (JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as { n: number }).n;

function issuerImpl(issuer: Issuer): Partial<ServiceImpl<typeof ServiceAuthService>> {
  return {
    async issueServiceToken(req) {
      if (issuer.failing) throw new ConnectError("auth is down", Code.Unavailable);
      if (req.clientSecret !== SECRET) throw new ConnectError("invalid client credentials", Code.Unauthenticated);
      issuer.issued += 1;
      return {
        accessToken: stubToken(issuer.issued, issuer.clock.now),
        expiresAt: timestampFromDate(new Date(issuer.clock.now + TTL_SECONDS * 1000)),
        scopes: ["user.devices.read"],
      };
    },
  };
}

// The callee accepts tokens numbered at least `minAccepted` (as if older ones
// were signed by a key it no longer trusts) and counts the calls it sees.
const callee = { minAccepted: 1, calls: 0 };
const calleeImpl: Partial<ServiceImpl<typeof UserInternalService>> = {
  batchGetDevices(req, ctx) {
    callee.calls += 1;
    const token = /^Bearer (.+)$/.exec(ctx.requestHeader.get("authorization") ?? "")?.[1];
    if (token === undefined || numberOf(token) < callee.minAccepted) throw new ConnectError("invalid access token", Code.Unauthenticated);
    if (req.userIds.includes(FORBIDDEN)) throw new ConnectError("no", Code.PermissionDenied);
    return { devices: [{ userId: String(numberOf(token)) }] };
  },
};

let telemetry: Telemetry;
let server: RunningServer;
const issuers = new Map<string, Issuer>();

test.before(async () => {
  telemetry = startTelemetry({ serviceName: "svc-token-test" });
  // One server; each test gets its own issuer through a client id (no shared counters between tests).
  server = await startServer({
    name: "svc-token-test",
    port: 0,
    logger: createLogger("svc-token-test", "silent"),
    telemetry,
    readiness: [],
    routes: (router) => {
      router.service(ServiceAuthService, {
        issueServiceToken: (req, ctx) => {
          const issuer = issuers.get(req.clientId);
          if (issuer === undefined) throw new ConnectError("invalid client credentials", Code.Unauthenticated);
          return issuerImpl(issuer).issueServiceToken!(req, ctx);
        },
      });
      router.service(UserInternalService, calleeImpl);
    },
  });
});
test.after.always(async () => {
  await server?.close();
  await telemetry?.shutdown();
});

function setup(clientId: string, secret = SECRET): { issuer: Issuer; source: ServiceTokenSource } {
  const issuer: Issuer = { issued: 0, failing: false, clock: { now: Date.UTC(2030, 0, 1) } };
  issuers.set(clientId, issuer);
  const source = createServiceTokenSource({ authUrl: server.url, clientId, clientSecret: secret, now: () => issuer.clock.now });
  return { issuer, source };
}

test("caches the token and shares one fetch between concurrent callers", async (t) => {
  const { issuer, source } = setup("cache");
  const tokens = await Promise.all(Array.from({ length: 5 }, () => source.token()));
  t.is(issuer.issued, 1);
  t.true(tokens.every((token) => numberOf(token) === 1));
  issuer.clock.now += 200_000; // 67% of the life
  t.is(numberOf(await source.token()), 1);
  t.is(issuer.issued, 1);
});

test("refreshes once 80% of the life has passed, before expiry", async (t) => {
  const { issuer, source } = setup("refresh");
  t.is(numberOf(await source.token()), 1);
  issuer.clock.now += 241_000; // past 80% (240 s), well before expiry (300 s)
  const refreshed = await Promise.all([source.token(), source.token(), source.token()]);
  t.deepEqual(refreshed.map(numberOf), [2, 2, 2]);
  t.is(issuer.issued, 2);
  issuer.clock.now += 100_000; // 100 s into token 2's life: still fresh
  t.is(numberOf(await source.token()), 2);
});

test("a failed early refresh keeps using the still-valid token; once expired the failure surfaces", async (t) => {
  const { issuer, source } = setup("outage");
  await source.token();
  issuer.failing = true;
  issuer.clock.now += 250_000;
  t.is(numberOf(await source.token()), 1);
  issuer.clock.now += 60_000; // past expiry
  const error = await t.throwsAsync(source.token(), { instanceOf: ConnectError });
  t.is(error?.code, Code.Unavailable);
  issuer.failing = false;
  t.is(numberOf(await source.token()), 2);
});

test("wrong credentials are the auth service's UNAUTHENTICATED, not a cached success", async (t) => {
  const { source } = setup("wrong", "not-the-secret");
  const error = await t.throwsAsync(source.token(), { instanceOf: ConnectError });
  t.is(error?.code, Code.Unauthenticated);
});

test.serial("the interceptor sends the token, and on UNAUTHENTICATED drops it and retries once with a fresh one", async (t) => {
  const { issuer, source } = setup("retry");
  const client = createServiceClient(UserInternalService, server.url, { interceptors: [serviceTokenInterceptor(source)] });
  callee.minAccepted = 1;
  callee.calls = 0;
  t.deepEqual((await client.batchGetDevices({ userIds: [ANYONE] })).devices.map((d) => d.userId), ["1"]);
  t.is(callee.calls, 1);

  // The callee stops accepting token 1: one refusal, one fetch, one retry.
  callee.minAccepted = 2;
  t.deepEqual((await client.batchGetDevices({ userIds: [ANYONE] })).devices.map((d) => d.userId), ["2"]);
  t.is(callee.calls, 3);
  t.is(issuer.issued, 2);

  // A callee that refuses every token: exactly one retry, then the caller sees the error.
  callee.minAccepted = 1_000;
  const error = await t.throwsAsync(client.batchGetDevices({ userIds: [ANYONE] }), { instanceOf: ConnectError });
  t.is(error?.code, Code.Unauthenticated);
  t.is(callee.calls, 5);
  t.is(issuer.issued, 3);

  // Other errors are not retried and keep the token.
  callee.minAccepted = 1;
  const denied = await t.throwsAsync(client.batchGetDevices({ userIds: [FORBIDDEN] }), { instanceOf: ConnectError });
  t.is(denied?.code, Code.PermissionDenied);
  t.is(callee.calls, 6);
  t.is(issuer.issued, 3);
});
