// `make dev` runs the user service on embedded defaults (PGlite, in-process
// bus, in-memory cache), sharing them with the auth service. Profiles must
// arrive from UserRegistered there too, and the RPCs must answer.
import test from "ava";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import { openDatabase } from "@aviary/runtime/db/open";
import { openEventBus } from "@aviary/runtime/bus/open";
import { openCache } from "@aviary/runtime/cache/open";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { authConfigFromEnv, startAuthService } from "@aviary/auth";
import { startUserService, userConfigFromEnv } from "../src/index.ts";
import { eventually } from "../../runtime/test-support/infra.ts";

test("profiles from UserRegistered, follow and search on PGlite, the memory bus and the memory cache", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "aviary-user-embedded-"));
  const database = await openDatabase({});
  const cache = await openCache({});
  const bus = await openEventBus({ clientId: "embedded-test" });
  const auth = await startAuthService(
    authConfigFromEnv({ AUTH_PORT: "0", AUTH_CODE_SINK: join(dir, "codes.jsonl"), AUTH_ARGON2_MEMORY_KIB: "1024", AUTH_ARGON2_PASSES: "1", LOG_LEVEL: "silent" }),
    { database, cache, bus },
  );
  const users = await startUserService(
    userConfigFromEnv({ USER_PORT: "0", AUTH_JWKS_URL: `${auth.url}/.well-known/jwks.json`, LOG_LEVEL: "silent" }),
    { database, cache, bus },
  );
  t.teardown(async () => {
    await users.close();
    await auth.close();
    await bus.close();
    await cache.close();
    await database.close();
    await rm(dir, { recursive: true, force: true });
  });
  t.is(users.database.kind, "pglite");
  t.is(users.cache.kind, "memory");
  t.is(users.bus.kind, "memory");

  const authClient = createClient(AuthService, createConnectTransport({ baseUrl: auth.url, httpVersion: "1.1" }));
  const client = createClient(UserService, createConnectTransport({ baseUrl: users.url, httpVersion: "1.1" }));
  const password = "violet-harbour-teapot-42";
  const signUp = async (identity: { case: "email" | "phone"; value: string }) => {
    const { userId } = await authClient.register({ identity, password } as Parameters<typeof authClient.register>[0]);
    const login = await authClient.login({ identity, password } as Parameters<typeof authClient.login>[0]);
    return { userId, call: { headers: { authorization: `Bearer ${login.tokens?.accessToken}` } } };
  };
  const ada = await signUp({ case: "phone", value: "+447400123456" });
  const bob = await signUp({ case: "email", value: "bob@example.org" });
  await eventually("both profiles", async () => {
    const { profiles } = await client.batchGetProfiles({ userIds: [ada.userId, bob.userId] }, ada.call);
    return profiles.length === 2;
  });
  const own = await client.getProfile({ userId: ada.userId }, ada.call);
  t.is(own.profile?.region, "GB");

  await client.updateProfile({ username: "Ada_Lovelace", displayName: "Ada Lovelace" }, ada.call);
  await client.follow({ userId: ada.userId }, bob.call);
  const seen = await client.getProfile({ userId: ada.userId }, bob.call);
  t.is(seen.profile?.followerCount, 1n);
  t.is(seen.profile?.region, "");
  const found = await client.searchUsers({ query: "love" }, bob.call);
  t.deepEqual(found.profiles.map((p) => p.userId), [ada.userId], "display-name word prefix on PGlite");
  const byName = await client.searchUsers({ query: "ada_" }, bob.call);
  t.deepEqual(byName.profiles.map((p) => p.username), ["Ada_Lovelace"]);
  // The pairs as two unnested arrays, on PGlite too.
  const checked = await client.checkFollows(
    { pairs: [{ followerId: bob.userId, followeeId: ada.userId }, { followerId: ada.userId, followeeId: bob.userId }, { followerId: bob.userId, followeeId: ada.userId }] },
    ada.call,
  );
  t.deepEqual(checked.results.map((r) => r.follows), [true, false, true]);
});
