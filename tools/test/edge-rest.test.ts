// The REST contract table (tools/edge/rest-cases.ts) through a real Envoy in
// front of the whole real mesh (services/runtime/test-support/mesh.ts),
// one ava test per row, in order; plus the
// cases a table against a black box cannot show: what the service actually
// receives in x-aviary-claims, and the edge while the auth service is down.
import test from "ava";
import { createServer, type IncomingHttpHeaders } from "node:http2";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import type { AddressInfo } from "node:net";
import { startTestAuth, uniqueEmail, password, type TestAuth } from "../../services/auth/test/harness.ts";
import { startEnvoy, type RunningEnvoy } from "../../services/runtime/test-support/envoy.ts";
import { startTestMesh, type TestMesh } from "../../services/runtime/test-support/mesh.ts";
import { AUDIENCE, ISSUER, signAsIssuer } from "../../services/runtime/test-support/token-forgeries.ts";
import { restCases } from "../edge/rest-cases.ts";
import { newRestContext, runRestCases } from "../edge/rest-runner.ts";
import type { RestContext } from "../edge/rest-cases.ts";

let mesh: TestMesh | undefined;
let auth: TestAuth;
let envoy: RunningEnvoy;
let context: RestContext;

test.before(async () => {
  mesh = await startTestMesh();
  ({ auth, envoy } = mesh);
  context = await newRestContext(envoy.url, { expiredToken: await mintExpiredToken(auth) });
});

test.after.always(async () => {
  await mesh?.close();
});

for (const row of restCases) {
  test.serial(`REST contract: ${row.name}`, async (t) => {
    const [result] = await runRestCases(envoy.url, context, [row]);
    if (result?.outcome === "skipped") t.fail(`skipped: ${result.problems.join("; ")}`);
    t.deepEqual(result?.problems, [], envoy.output().split("\n").slice(-5).join("\n"));
  });
}

test.serial("REST, gRPC and gRPC-web reach a service's internal grpc-js listener; Connect its main port", async (t) => {
  /** Requests Envoy has sent to the auth service's two clusters, from its admin stats. */
  const sent = async (): Promise<{ auth: number; auth_internal: number }> => {
    const text = await (await fetch(`${envoy.adminUrl}/stats?filter=^cluster\\.auth(_internal)?\\.upstream_rq_total$`)).text();
    const of = (cluster: string) => Number(new RegExp(`^cluster\\.${cluster}\\.upstream_rq_total: (\\d+)$`, "m").exec(text)?.[1] ?? 0);
    return { auth: of("auth"), auth_internal: of("auth_internal") };
  };
  const { accessToken } = await login(envoy.url, uniqueEmail());
  const headers = { authorization: `Bearer ${accessToken}` };
  const grpc = createClient(AuthService, createGrpcTransport({ baseUrl: envoy.url }));
  const grpcWeb = createClient(AuthService, createGrpcWebTransport({ baseUrl: envoy.url, httpVersion: "1.1" }));
  const ok = async (response: Response) => {
    if (response.status !== 200) throw new Error(`status ${response.status}`);
    await response.arrayBuffer();
  };
  const protocols: Array<[string, () => Promise<unknown>, "auth" | "auth_internal"]> = [
    ["REST", () => fetch(`${envoy.url}/v1/auth/me`, { headers }).then(ok), "auth_internal"],
    ["gRPC", () => grpc.getMe({}, { headers }), "auth_internal"],
    ["Connect JSON", () => fetch(`${envoy.url}/aviary.auth.v1.AuthService/GetMe`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: "{}" }).then(ok), "auth"],
    ["gRPC-web", () => grpcWeb.getMe({}, { headers }), "auth_internal"],
  ];
  // Several calls each: the other cluster may see a health check meanwhile, never this many requests.
  const CALLS = 5;
  for (const [name, call, cluster] of protocols) {
    const before = await sent();
    for (let i = 0; i < CALLS; i++) await call();
    const after = await sent();
    const other = cluster === "auth" ? "auth_internal" : "auth";
    t.true(after[cluster] - before[cluster] >= CALLS, `${name}: ${after[cluster] - before[cluster]} requests to ${cluster}`);
    t.true(after[other] - before[other] < CALLS, `${name}: ${after[other] - before[other]} requests to ${other}`);
  }
});

/** A token genuinely signed with the issuer's key, expired an hour ago. */
async function mintExpiredToken(service: TestAuth): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: ISSUER, aud: AUDIENCE, sub: crypto.randomUUID(), sid: crypto.randomUUID(), jti: crypto.randomUUID() };
  return signAsIssuer(service, { ...claims, iat: now - 7200, nbf: now - 7200, exp: now - 3600 });
}

async function login(baseUrl: string, email: string): Promise<{ userId: string; accessToken: string }> {
  const json = { "content-type": "application/json" };
  await fetch(`${baseUrl}/v1/auth/register`, { method: "POST", headers: json, body: JSON.stringify({ email, password }) });
  const response = await fetch(`${baseUrl}/v1/auth/login`, { method: "POST", headers: json, body: JSON.stringify({ email, password }) });
  const body = (await response.json()) as { userId: string; tokens: { accessToken: string } };
  return { userId: body.userId, accessToken: body.tokens.accessToken };
}

/**
 * A gRPC upstream that records the headers it receives, behind the edge in
 * place of the auth service (the JWKS still comes from the real one). It
 * answers health checks SERVING and every other call with an empty message.
 */
async function startRecorder(): Promise<{ url: string; seen: IncomingHttpHeaders[]; close(): Promise<void> }> {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    const health = req.url === "/grpc.health.v1.Health/Check";
    if (!health) seen.push(req.headers);
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/grpc" });
      // One length-prefixed frame: HealthCheckResponse{status: SERVING} (field 1 = 1), or an empty message.
      res.write(Buffer.from(health ? [0, 0, 0, 0, 2, 0x08, 0x01] : [0, 0, 0, 0, 0]));
      res.addTrailers({ "grpc-status": "0" });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

test.serial("x-aviary-claims: a client's copy never reaches the service; the verified payload does", async (t) => {
  const recorder = await startRecorder();
  const edge = await startEnvoy({ upstreams: { auth: recorder.url, auth_jwks: auth.service.url } });
  t.teardown(async () => {
    await edge.stop();
    await recorder.close();
  });
  const user = await login(envoy.url, uniqueEmail("claims"));
  const forged = Buffer.from(JSON.stringify({ sub: "00000000-0000-4000-8000-000000000000" })).toString("base64url");

  // Protected route, valid token plus a forged header: exactly the verified payload arrives.
  const me = await fetch(`${edge.url}/v1/auth/me`, { headers: { authorization: `Bearer ${user.accessToken}`, "x-aviary-claims": forged } });
  t.is(me.status, 200);
  const protectedCall = recorder.seen.at(-1);
  const claims = protectedCall?.["x-aviary-claims"];
  t.is(typeof claims, "string", "exactly one x-aviary-claims value");
  t.is((JSON.parse(Buffer.from(String(claims), "base64url").toString("utf8")) as { sub: string }).sub, user.userId);
  t.is(protectedCall?.[":path"], "/aviary.auth.v1.AuthService/GetMe");

  // Public route (no JWT verified): the forged header is removed, nothing replaces it.
  const publicCall = await fetch(`${edge.url}/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-aviary-claims": forged },
    body: JSON.stringify({ email: "x@example.org", password }),
  });
  t.is(publicCall.status, 200);
  t.is(recorder.seen.at(-1)?.["x-aviary-claims"], undefined);
  t.is(recorder.seen.at(-1)?.[":path"], "/aviary.auth.v1.AuthService/Login");
});

test.serial("auth service down: public routes answer 503 JSON; valid tokens still pass jwt_authn from the cached JWKS", async (t) => {
  const second = await startTestAuth();
  const edge = await startEnvoy({ upstreams: { auth: second.service.url } });
  t.teardown(async () => {
    await edge.stop();
    await second.close();
  });
  const user = await login(edge.url, uniqueEmail("outage"));
  await second.stopService();

  const loginDown = await fetch(`${edge.url}/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "x@example.org", password }),
  });
  t.is(loginDown.status, 503);
  t.like(await loginDown.json(), { code: 14 });

  // 503, not 401: the token was verified against the cached keys and the request went on to the (dead) upstream.
  const meDown = await fetch(`${edge.url}/v1/auth/me`, { headers: { authorization: `Bearer ${user.accessToken}` } });
  t.is(meDown.status, 503);
  t.like(await meDown.json(), { code: 14 });

  // Verification itself still works: a bad token is still refused at the edge.
  const bad = await fetch(`${edge.url}/v1/auth/me`, { headers: { authorization: `Bearer ${context.forgedToken}` } });
  t.is(bad.status, 401);
});
