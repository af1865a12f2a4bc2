// `make dev` mode: PGlite, the in-process bus and the in-memory cache, shared
// with an auth service the way the dev launcher shares them. The same rules
// hold (one open report, the moderator role), and a suspension reaches the
// auth service through the in-process bus: the session ends, sign-in is
// refused, and unsuspending lets the user back in.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { RoleService } from "@aviary/gen/aviary/auth/v1/roles_pb";
import { ModerationService, ReportReason } from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import { openDatabase } from "@aviary/runtime/db/open";
import { openEventBus } from "@aviary/runtime/bus/open";
import { openCache } from "@aviary/runtime/cache/open";
import { Role } from "@aviary/runtime/auth/roles";
import { authConfigFromEnv, startAuthService } from "@aviary/auth";
import { eventually } from "../../runtime/test-support/infra.ts";
import { password, uniqueEmail } from "../../auth/test/harness.ts";
import { rejection } from "./harness.ts";
import { moderationConfigFromEnv, startModerationService } from "../src/index.ts";

test("reports, roles and a suspension on embedded adapters", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "aviary-moderation-embedded-"));
  const database = await openDatabase({});
  const cache = await openCache({});
  const bus = await openEventBus({ clientId: "moderation-embedded-test" });
  const adminEmail = uniqueEmail("admin");
  const auth = await startAuthService(
    authConfigFromEnv({ AUTH_PORT: "0", AUTH_CODE_SINK: join(dir, "codes.jsonl"), AUTH_ARGON2_MEMORY_KIB: "1024", AUTH_ARGON2_PASSES: "1", AUTH_BOOTSTRAP_ADMINS: adminEmail, LOG_LEVEL: "silent" }),
    { database, cache, bus },
  );
  const moderation = await startModerationService(moderationConfigFromEnv({ MODERATION_PORT: "0", AUTH_JWKS_URL: `${auth.url}/.well-known/jwks.json`, LOG_LEVEL: "silent" }), { database, cache, bus });
  t.teardown(async () => {
    await moderation.close();
    await auth.close();
    await bus.close();
    await cache.close();
    await database.close();
    await rm(dir, { recursive: true, force: true });
  });
  t.is(moderation.database.kind, "pglite");
  t.is(moderation.bus.kind, "memory");
  const authClient = createClient(AuthService, createConnectTransport({ baseUrl: auth.url, httpVersion: "1.1" }));
  const roles = createClient(RoleService, createConnectTransport({ baseUrl: auth.url, httpVersion: "1.1" }));
  const client = createClient(ModerationService, createConnectTransport({ baseUrl: moderation.url, httpVersion: "1.1" }));
  const register = async (email: string) => (await authClient.register({ identity: { case: "email", value: email }, password })).userId;
  const signIn = async (email: string) => {
    const login = await authClient.login({ identity: { case: "email", value: email }, password });
    return { headers: { authorization: `Bearer ${login.tokens?.accessToken}` } };
  };

  await register(adminEmail);
  await auth.applyBootstrapAdmins();
  const [moEmail, benEmail] = [uniqueEmail("mo"), uniqueEmail("ben")];
  const [moId, benId] = [await register(moEmail), await register(benEmail)];
  await roles.grantRole({ userId: moId, role: Role.MODERATOR }, await signIn(adminEmail));
  const mo = await signIn(moEmail);
  const ben = await signIn(benEmail);

  const target = { kind: { case: "postId" as const, value: crypto.randomUUID() } };
  const first = await client.createReport({ target, reason: ReportReason.SPAM }, ben);
  t.true(first.created);
  t.false((await client.createReport({ target, reason: ReportReason.SPAM }, ben)).created, "one open report per reporter and target");
  t.is((await rejection(client.listReports({}, ben))).code, Code.PermissionDenied);
  t.is((await client.listReports({}, mo)).reports.length, 1);

  await client.suspendUser({ userId: benId, reason: "spam" }, mo);
  await eventually("Ben's session ended", async () => (await rejection(authClient.getMe({}, ben)).catch(() => undefined))?.code === Code.Unauthenticated);
  t.is((await rejection(signIn(benEmail))).code, Code.FailedPrecondition);
  await client.unsuspendUser({ userId: benId, reason: "appeal" }, mo);
  await eventually("Ben signs in again", async () => (await signIn(benEmail).then(() => true, () => false)));
});
