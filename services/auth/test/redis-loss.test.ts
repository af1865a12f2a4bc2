// Losing Redis must cost speed, never correctness: a revoked session stays
// revoked when the cache is down or comes back empty, and the denylist other
// services read is rebuilt from the sessions table.
import test from "ava";
import { Code } from "@connectrpc/connect";
import { openCache } from "@aviary/runtime/cache/open";
import { privateServer, type PrivateServer } from "../../runtime/test-support/infra.ts";
import { revokedSessionKey } from "../src/domain/denylist.ts";
import { as, password, rejection, startTestAuth, uniqueEmail, uniqueIp, type TestAuth } from "./harness.ts";

let redis: PrivateServer;
let auth: TestAuth;
test.before(async () => {
  redis = await privateServer("redis", "auth-redis-loss");
  auth = await startTestAuth({ REDIS_URL: redis.url, AUTH_DENYLIST_SYNC_INTERVAL: "500ms" });
});
test.after.always(async () => {
  await auth?.close();
  await redis?.down();
});

test.serial("revocation survives a Redis outage and a Redis that comes back empty", async (t) => {
  const email = uniqueEmail("redisloss");
  await auth.client.register({ identity: { case: "email", value: email }, password });
  const keep = await auth.client.login({ identity: { case: "email", value: email }, password, deviceName: "keep" }, as({ ip: uniqueIp() }));
  const lost = await auth.client.login({ identity: { case: "email", value: email }, password, deviceName: "lost" }, as({ ip: uniqueIp() }));
  const keepToken = keep.tokens?.accessToken ?? "";
  const lostToken = lost.tokens?.accessToken ?? "";
  await auth.client.revokeSession({ sessionId: lost.sessionId }, as({ token: keepToken }));

  const cache = await openCache({ url: redis.url });
  t.teardown(() => cache.close());
  t.true(await cache.exists(revokedSessionKey(lost.sessionId)), "denylisted on revoke");

  // Redis down: the auth service decides from its sessions table.
  await redis.stop();
  t.is((await auth.client.getMe({}, as({ token: keepToken }))).sessionId, keep.sessionId, "valid sessions keep working");
  t.is((await rejection(auth.client.getMe({}, as({ token: lostToken })))).code, Code.Unauthenticated, "revoked stays revoked");

  // Redis back, empty (no persistence): still denied, and the denylist is rebuilt.
  await redis.start();
  t.is((await rejection(auth.client.getMe({}, as({ token: lostToken })))).code, Code.Unauthenticated);
  const deadline = Date.now() + 10_000;
  while (!(await cache.exists(revokedSessionKey(lost.sessionId)).catch(() => false)) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.true(await cache.exists(revokedSessionKey(lost.sessionId)), "the sync re-published the revocation for other services");
  t.false(await cache.exists(revokedSessionKey(keep.sessionId)));
});
