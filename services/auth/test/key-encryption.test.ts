// Signing keys encrypted at rest, through the real service and process:
// tokens issued under K1 still verify after a restart with K2 (K1 as
// previous) and after one with K2 alone; a process started with the wrong
// KEK exits 1 with one clear configuration record, no stack.
import test from "ava";
import { spawn } from "node:child_process";
import path from "node:path";
import { createLocalJWKSet, jwtVerify, type JWK } from "jose";
import { as, password, startTestAuth, uniqueEmail, uniqueIp } from "./harness.ts";
import { infra, repoRoot, withClient } from "../../runtime/test-support/infra.ts";
import { freshDatabase } from "../../runtime/test-support/database.ts";

const K1 = `k1:${Buffer.alloc(32, 0x11).toString("base64")}`;
const K2 = `k2:${Buffer.alloc(32, 0x22).toString("base64")}`;

test("tokens signed under K1 verify after restarts with K2,K1 and then K2 alone, and the rows are re-wrapped", async (t) => {
  const database = await freshDatabase((await infra()).databaseUrl, "auth_kek_test");
  t.teardown(() => database.drop());
  const start = (keys: string) => startTestAuth({ DATABASE_URL: database.url, AUTH_KEY_ENCRYPTION_KEYS: keys });

  const first = await start(K1);
  const email = uniqueEmail("kek");
  await first.client.register({ identity: { case: "email", value: email }, password });
  const login = await first.client.login({ identity: { case: "email", value: email }, password, deviceName: "d" }, as({ ip: uniqueIp() }));
  const token = login.tokens?.accessToken ?? "";
  await first.stopService();

  for (const keys of [`${K2},${K1}`, K2]) {
    const next = await start(keys);
    try {
      const jwks = await next.client.getJwks({});
      await t.notThrowsAsync(jwtVerify(token, createLocalJWKSet({ keys: jwks.keys.map((k) => ({ ...k }) as JWK) })), `verifies under ${keys.split(":")[0]}…`);
      t.is((await next.client.getMe({}, as({ token }))).sessionId, login.sessionId);
      // The harness' query() reads its own database; the keys are in the shared one of this test.
      const rows = await withClient(database.url, async (pg) => (await pg.query<{ kek_id: string; private_jwk: unknown }>("select kek_id, private_jwk from auth.signing_keys")).rows);
      t.deepEqual(rows.map((row) => [row.kek_id, row.private_jwk]), [["k2", null]]);
      // A fresh login signs with the same (re-wrapped) key.
      t.truthy((await next.client.login({ identity: { case: "email", value: email }, password, deviceName: "d" }, as({ ip: uniqueIp() }))).tokens?.accessToken);
    } finally {
      await next.stopService();
    }
  }
});

test("a process started with the wrong KEK exits 1 with a clear configuration error and no stack", async (t) => {
  const database = await freshDatabase((await infra()).databaseUrl, "auth_kek_test");
  t.teardown(() => database.drop());
  const first = await startTestAuth({ DATABASE_URL: database.url, AUTH_KEY_ENCRYPTION_KEYS: K1 });
  await first.stopService();

  const wrong = `k1:${Buffer.alloc(32, 0x33).toString("base64")}`;
  const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", path.join(repoRoot, "services/auth/src/main.ts")], {
    // Only the database is real: the keys are what is under test.
    env: { PATH: process.env["PATH"] ?? "", DATABASE_URL: database.url, AUTH_PORT: "0", AUTH_KEY_ENCRYPTION_KEYS: wrong, PAGE_TOKEN_SECRET: "test-page-token-secret-0123456789", LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  t.is(code, 1, output);
  const fatal = output
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { level?: number | string; msg?: string; problems?: unknown; err?: unknown })
    .find((record) => record.problems !== undefined);
  t.truthy(fatal, output);
  t.regex(fatal!.msg ?? "", /AUTH_KEY_ENCRYPTION_KEYS: key-encryption key "k1" does not open signing key/);
  t.is(fatal!.err, undefined, "no error object, so no stack");
  t.false(/\n\s+at /.test(output), "no stack anywhere in the output");
  t.false(output.includes(wrong.slice(3)), "the key is not logged");
});
