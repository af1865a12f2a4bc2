// The benchmarks' reference edge (startEnvoy's routerOnly): the same
// listener and clusters with every HTTP filter but the router left out, so a
// call crosses the proxy hop and nothing else happens at the edge.
import test from "ava";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { password, startTestAuth, uniqueEmail, type TestAuth } from "../../services/auth/test/harness.ts";
import { startEnvoy, type RunningEnvoy } from "../../services/runtime/test-support/envoy.ts";

let auth: TestAuth;
let bare: RunningEnvoy;
let full: RunningEnvoy;

test.before(async () => {
  auth = await startTestAuth();
  bare = await startEnvoy({ upstreams: { auth: auth.service.url }, routerOnly: true });
  full = await startEnvoy({ upstreams: { auth: auth.service.url } });
});

test.after.always(async () => {
  await bare?.stop();
  await full?.stop();
  await auth?.close();
});

test("only the router: gRPC passes to the service, REST is not transcoded, nothing is logged", async (t) => {
  const direct = createClient(AuthService, createGrpcTransport({ baseUrl: auth.service.url }));
  const email = uniqueEmail("bare");
  await direct.register({ identity: { case: "email", value: email }, password });
  const login = await direct.login({ identity: { case: "email", value: email }, password });
  const headers = { authorization: `Bearer ${login.tokens?.accessToken ?? ""}` };

  const throughBare = createClient(AuthService, createGrpcTransport({ baseUrl: bare.url }));
  t.is((await throughBare.getMe({}, { headers })).userId, login.userId, "the gRPC call crossed the hop");

  const rest = await fetch(`${bare.url}/v1/auth/me`, { headers });
  await rest.body?.cancel();
  t.not(rest.status, 200, "no transcoder: REST is not an API here");
  // The full edge logs the same call; once its line is out, the bare one's (sent first) would be too.
  await createClient(AuthService, createGrpcTransport({ baseUrl: full.url })).getMe({}, { headers });
  const logged = "/aviary.auth.v1.AuthService/GetMe";
  for (let waited = 0; !full.output().includes(logged); waited += 50) {
    if (waited > 20_000) throw new Error("the full edge never logged the call");
    await new Promise((done) => setTimeout(done, 50));
  }
  t.false(bare.output().includes(logged), "no access log");
});
