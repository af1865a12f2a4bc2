// The audit routes through a real Envoy with the generated config: an admin's
// token passes to the service, a moderator's is refused with 403 by the edge
// itself (RBAC on the verified roles claim) before the service sees it.
import test from "ava";
import { startEnvoy, type RunningEnvoy } from "../../runtime/test-support/envoy.ts";
import { startTestAudit, type Account, type TestAudit } from "./harness.ts";

let audit: TestAudit;
let envoy: RunningEnvoy;

test.before(async () => {
  audit = await startTestAudit();
  const { auth, user, service: moderation } = audit.moderation;
  envoy = await startEnvoy({ upstreams: { auth: auth.service.url, user: user.service.url, moderation: moderation.url, audit: audit.service.url } });
});

test.after.always(async () => {
  await envoy?.stop();
  await audit?.close();
});

const call = (method: "GET" | "POST", path: string, account?: Account) =>
  fetch(`${envoy.url}${path}`, {
    method,
    headers: { "content-type": "application/json", ...(account === undefined ? {} : { authorization: `Bearer ${account.token}` }) },
    ...(method === "POST" ? { body: "{}" } : {}),
  });

test("admins read and verify the log through the edge; moderators get 403 from the edge, no token 401", async (t) => {
  const { admin, moderator } = audit.moderation;
  const listed = await call("GET", `/v1/audit/entries?subject=${moderator.userId}&kind=auth.role_granted`, admin);
  t.is(listed.status, 200);
  const verified = await call("POST", "/v1/audit:verify", admin);
  t.is(verified.status, 200);
  t.is(((await verified.json()) as { intact?: boolean }).intact, true);

  for (const [method, path] of [["GET", "/v1/audit/entries"], ["POST", "/v1/audit:verify"]] as const) {
    const refused = await call(method, path, moderator);
    t.is(refused.status, 403, `${method} ${path} as a moderator`);
    // Envoy adds x-envoy-upstream-service-time only to answers that came from a service.
    t.false(refused.headers.has("x-envoy-upstream-service-time"), "refused at the edge");
    t.is((await call(method, path)).status, 401, `${method} ${path} without a token`);
  }
});
