// `make dev` runs the audit service on embedded defaults (PGlite, the
// in-process bus, the memory cache) beside auth: the chain, the append-only
// trigger, VerifyChain and the anchors (on disk) must work there too.
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { sql } from "drizzle-orm";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { AuditService } from "@aviary/gen/aviary/audit/v1/audit_pb";
import { openDatabase } from "@aviary/runtime/db/open";
import { openEventBus } from "@aviary/runtime/bus/open";
import { openCache } from "@aviary/runtime/cache/open";
import { authConfigFromEnv, startAuthService } from "@aviary/auth";
import { as, password } from "../../auth/test/harness.ts";
import { eventually } from "../../runtime/test-support/infra.ts";
import { auditConfigFromEnv, startAuditService } from "../src/index.ts";

test("registrations, sign-ins and their failures are chained on PGlite and the memory bus; the trigger refuses edits; the head is anchored on disk", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "aviary-audit-embedded-"));
  const database = await openDatabase({});
  const cache = await openCache({});
  const bus = await openEventBus({ clientId: "embedded-test" });
  const admin = "admin@example.org";
  const auth = await startAuthService(
    authConfigFromEnv({ AUTH_PORT: "0", AUTH_CODE_SINK: join(dir, "codes.jsonl"), AUTH_ARGON2_MEMORY_KIB: "1024", AUTH_ARGON2_PASSES: "1", AUTH_BOOTSTRAP_ADMINS: admin, LOG_LEVEL: "silent" }),
    { database, cache, bus },
  );
  const audit = await startAuditService(auditConfigFromEnv({ AUDIT_PORT: "0", AUTH_JWKS_URL: `${auth.url}/.well-known/jwks.json`, AUDIT_ANCHOR_DISK_DIR: join(dir, "anchors"), LOG_LEVEL: "silent" }), { database, cache, bus });
  t.teardown(async () => {
    await audit.close();
    await auth.close();
    await bus.close();
    await cache.close();
    await database.close();
    await rm(dir, { recursive: true, force: true });
  });
  const authClient = createClient(AuthService, createConnectTransport({ baseUrl: auth.url, httpVersion: "2" }));
  const client = createClient(AuditService, createConnectTransport({ baseUrl: audit.url, httpVersion: "2" }));

  const { userId } = await authClient.register({ identity: { case: "email", value: admin }, password });
  await auth.applyBootstrapAdmins();
  await t.throwsAsync(authClient.login({ identity: { case: "email", value: admin }, password: "wrong-password-entirely" }, as({ ip: "203.0.113.9" })));
  const login = await authClient.login({ identity: { case: "email", value: admin }, password }, as({ ip: "203.0.113.9" }));
  const call = as({ token: login.tokens?.accessToken ?? "" });

  const kinds = async () => (await client.listAuditEntries({ subject: userId }, call)).entries.map((e) => e.kind).reverse();
  await eventually("the admin's events", async () => (await kinds()).includes("auth.login_succeeded"), 20_000);
  t.deepEqual(await kinds(), ["auth.user_registered", "auth.role_granted", "auth.login_failed", "auth.login_succeeded"]);
  t.true((await client.verifyChain({}, call)).intact);
  const anchored = await audit.anchorNow();
  if (anchored.kind !== "anchored") return t.fail(`anchoring: ${anchored.kind}`);
  t.true((await stat(join(dir, "anchors", "anchors", "latest.json"))).isFile(), "the anchor is a file outside the database");
  const verified = await client.verifyChain({}, call);
  t.true(verified.intact);
  t.true(verified.anchorChecked);
  t.is(verified.anchorSeq, BigInt(anchored.anchor.seq));
  const refused = await t.throwsAsync(database.db.execute(sql`update audit.entries set subject = 'x'`));
  // drizzle wraps the database's error: the trigger's message is the cause's.
  t.regex(String((refused?.cause as Error | undefined)?.message ?? refused?.message), /append-only/);
});
