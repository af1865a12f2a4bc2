// `make dev` runs the auth service on embedded defaults (PGlite, in-process
// bus, in-memory cache). The same flows must work there as on the real stack.
import test from "ava";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { decodeEvent } from "@aviary/runtime/outbox/enqueue";
import type { DeliveredEvent } from "@aviary/runtime/bus/bus";
import { UserRegisteredSchema } from "@aviary/gen/aviary/events/v1/auth_events_pb";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { authConfigFromEnv, authEventsTopic, startAuthService } from "../src/index.ts";
import { eventually } from "../../runtime/test-support/infra.ts";

test("register, verify, login and events on PGlite, the memory bus and the memory cache", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "aviary-embedded-"));
  const sink = join(dir, "codes.jsonl");
  const service = await startAuthService(
    authConfigFromEnv({ AUTH_PORT: "0", AUTH_CODE_SINK: sink, AUTH_ARGON2_MEMORY_KIB: "1024", AUTH_ARGON2_PASSES: "1", LOG_LEVEL: "silent" }),
  );
  t.teardown(async () => {
    await service.close();
    await rm(dir, { recursive: true, force: true });
  });
  t.is(service.database.kind, "pglite");
  t.is(service.cache.kind, "memory");
  t.is(service.bus.kind, "memory");

  const received: DeliveredEvent[] = [];
  const subscription = await service.bus.subscribe({ groupId: "embedded-test", topics: [authEventsTopic], handle: async (event) => void received.push(event) });
  t.teardown(() => subscription.stop());

  // Connect JSON over HTTP/1.1, as curl would call it in `make dev`.
  const client = createClient(AuthService, createConnectTransport({ baseUrl: service.url, httpVersion: "1.1" }));
  const password = "violet-harbour-teapot-42";
  const registered = await client.register({ identity: { case: "email", value: "ada@example.org" }, password });
  // The code goes out through the outbox and the sender role (here on the memory bus): wait for it.
  let line: { code?: string } = {};
  await eventually("the verification code in the sink", async () => {
    line = JSON.parse((await readFile(sink, "utf8").catch(() => "")).trim().split("\n").at(-1) || "{}") as { code?: string };
    return line.code !== undefined;
  });
  await client.verifyIdentity({ identity: { case: "email", value: "ada@example.org" }, code: line.code ?? "" });
  const login = await client.login({ identity: { case: "email", value: "ada@example.org" }, password });
  const me = await client.getMe({}, { headers: { authorization: `Bearer ${login.tokens?.accessToken}` } });
  t.is(me.userId, registered.userId);
  t.true(me.emailVerified);

  // The account's events, beside the first signing key's rotation (made at start-up, for the audit log).
  const keyRotated = "aviary.events.v1.SigningKeyRotated";
  const accountEvents = () => received.filter((e) => e.headers["event-type"] !== keyRotated);
  await eventually("two account events on the memory bus", () => accountEvents().length >= 2);
  const first = accountEvents()[0];
  t.truthy(first);
  if (first) t.is(decodeEvent(UserRegisteredSchema, first).userId, registered.userId);
  t.deepEqual(accountEvents().map((e) => e.headers["event-type"]), ["aviary.events.v1.UserRegistered", "aviary.events.v1.UserLoggedIn"]);
  t.true(received.some((e) => e.headers["event-type"] === keyRotated));
});
