// gRPC-web for real: the browser transport (@connectrpc/connect-web, on
// Node's fetch) through Envoy's grpc_web filter to the auth service — a unary
// flow (Register, Login, GetMe) and a server stream (grpc.health.v1 Watch),
// with jwt_authn in the way exactly as for a browser.
import test from "ava";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { Health, HealthCheckResponse_ServingStatus } from "@aviary/gen/grpc/health/v1/health_pb";
import { password, startTestAuth, uniqueEmail, type TestAuth } from "../../services/auth/test/harness.ts";
import { startEnvoy, type RunningEnvoy } from "../../services/runtime/test-support/envoy.ts";

let auth: TestAuth;
let envoy: RunningEnvoy;

test.before(async () => {
  auth = await startTestAuth();
  envoy = await startEnvoy({ upstreams: { auth: auth.service.url } });
});

test.after.always(async () => {
  await envoy?.stop();
  await auth?.close();
});

const transport = () => createGrpcWebTransport({ baseUrl: envoy.url });
const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

async function signIn(): Promise<{ userId: string; accessToken: string; email: string }> {
  const client = createClient(AuthService, transport());
  const email = uniqueEmail("grpcweb");
  await client.register({ identity: { case: "email", value: email }, password });
  const login = await client.login({ identity: { case: "email", value: email }, password, deviceName: "browser" });
  return { userId: login.userId, accessToken: login.tokens?.accessToken ?? "", email };
}

test("unary over gRPC-web: Register, Login, then GetMe with the token", async (t) => {
  const client = createClient(AuthService, transport());
  const user = await signIn();
  const me = await client.getMe({}, bearer(user.accessToken));
  t.is(me.userId, user.userId);
  t.is(me.email, user.email);
});

test("a service error arrives as a gRPC-web status with its details", async (t) => {
  const client = createClient(AuthService, transport());
  const error = await t.throwsAsync(client.register({ identity: { case: "email", value: "not-an-email" }, password }));
  const connectError = ConnectError.from(error);
  t.is(connectError.code, Code.InvalidArgument);
  t.true(connectError.details.length > 0, "google.rpc.BadRequest travels in grpc-status-details-bin");
});

test("the edge refuses a protected gRPC-web call without a token", async (t) => {
  const client = createClient(AuthService, transport());
  const error = await t.throwsAsync(client.getMe({}));
  t.is(ConnectError.from(error).code, Code.Unauthenticated);
});

test("server streaming over gRPC-web: health Watch sends SERVING, and needs a token", async (t) => {
  const health = createClient(Health, transport());
  const user = await signIn();
  const updates: HealthCheckResponse_ServingStatus[] = [];
  for await (const update of health.watch({ service: "" }, bearer(user.accessToken))) {
    updates.push(update.status);
    break; // the first message is the current status; leaving the loop cancels the stream
  }
  t.deepEqual(updates, [HealthCheckResponse_ServingStatus.SERVING]);

  const refused = await t.throwsAsync(async () => {
    for await (const _ of health.watch({ service: "" })) break;
  });
  t.is(ConnectError.from(refused).code, Code.Unauthenticated);
});
