// Roles at the edge: a real Envoy with the generated config in front of the
// real auth and moderation services. Routes whose RPC declares a required
// role admit tokens carrying it (or admin) and refuse everyone else with 403
// from Envoy itself, before any service sees the call; the services refuse
// them again (moderation.test.ts), and a revoked role's sessions are refused
// by the services, which the edge cannot know about.
import test from "ava";
import { startEnvoy, type RunningEnvoy } from "../../runtime/test-support/envoy.ts";
import { startTestModeration, type Account, type TestModeration } from "./harness.ts";

let mod: TestModeration;
let envoy: RunningEnvoy;
let ana: Account;

test.before(async () => {
  mod = await startTestModeration();
  envoy = await startEnvoy({ upstreams: { auth: mod.auth.service.url, user: mod.user.service.url, moderation: mod.service.url } });
  ana = await mod.signUp("ana");
});

test.after.always(async () => {
  await envoy?.stop();
  await mod?.close();
});

async function rest(method: string, path: string, account: Account | undefined, body?: unknown): Promise<{ status: number; json: Record<string, unknown>; fromUpstream: boolean }> {
  const response = await fetch(`${envoy.url}${path}`, {
    method,
    headers: { "content-type": "application/json", ...(account === undefined ? {} : { authorization: `Bearer ${account.token}` }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  // Envoy adds x-envoy-upstream-service-time only to answers that came from a service.
  return { status: response.status, json: (await response.json()) as Record<string, unknown>, fromUpstream: response.headers.has("x-envoy-upstream-service-time") };
}

test.serial("moderator routes: the moderator passes, others get 403 from the edge itself", async (t) => {
  const listed = await rest("GET", "/v1/moderation/reports", mod.moderator);
  t.is(listed.status, 200);
  t.true(listed.fromUpstream);
  const refused = await rest("GET", "/v1/moderation/reports", ana);
  t.is(refused.status, 403);
  t.is(refused.json["code"], 7);
  t.false(refused.fromUpstream, "refused at the edge");
  // The admin holds every moderator right.
  t.is((await rest("GET", `/v1/moderation/users/${ana.userId}/suspension`, mod.admin)).status, 200);
  // Reporting is for everyone signed in.
  const report = await rest("POST", "/v1/reports", ana, { target: { userId: mod.moderator.userId }, reason: "REPORT_REASON_SPAM" });
  t.is(report.status, 200);
  t.is(await rest("GET", "/v1/moderation/reports", undefined).then((r) => r.status), 401);
});

test.serial("admin routes: only the admin; a revoked moderator's token is refused behind the edge at once", async (t) => {
  const mo = await mod.signUp("mo");
  t.is((await rest("POST", `/v1/users/${mo.userId}/roles`, mod.moderator, { role: "ROLE_MODERATOR" })).status, 403, "a moderator cannot grant");
  const granted = await rest("POST", `/v1/users/${mo.userId}/roles`, mod.admin, { role: "ROLE_MODERATOR" });
  t.is(granted.status, 200);
  t.is((granted.json["grant"] as { role?: string }).role, "ROLE_MODERATOR");
  const moNow = await mod.signIn(mo);
  t.is((await rest("GET", "/v1/moderation/reports", moNow)).status, 200);
  t.is((await rest("DELETE", `/v1/users/${mo.userId}/roles/ROLE_MODERATOR`, mod.admin)).status, 200);
  // The token still carries the claim, so the edge lets it through; the service refuses the ended session.
  const stale = await rest("GET", "/v1/moderation/reports", moNow);
  t.is(stale.status, 401);
  t.true(stale.fromUpstream);
  t.deepEqual((await mod.roles.listUserRoles({ userId: mo.userId }, mod.admin.call)).grants.map((g) => g.role), []);
});
