/**
 * classifyFailure decides whether the bus parks an event (poison), waits an
 * outage out (infrastructure) or spends its retry budget (unknown). The
 * infrastructure cases are the errors the real clients throw at a port
 * nothing listens on, not hand-made look-alikes.
 */
import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { Redis } from "ioredis";
import pg from "pg";
import { classifyFailure } from "../src/bus/failures.ts";
import { connectionOptions } from "../src/cache/redis-connection.ts";
import { EventDecodeError } from "../src/outbox/enqueue.ts";
// A port bound and released: nothing listens there, so connections to it are refused.
import { freePort as closedPort } from "../test-support/envoy.ts";

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

test("poison: undecodable events and peers refusing the event as invalid", (t) => {
  t.is(classifyFailure(new EventDecodeError("event 1 has no post_id")), "poison");
  t.is(classifyFailure(new ConnectError("bad", Code.InvalidArgument)), "poison");
  t.is(classifyFailure(new Error("apply failed", { cause: new EventDecodeError("bad bytes") })), "poison");
});

test("infrastructure: a peer that says not now", (t) => {
  for (const code of [Code.Unavailable, Code.DeadlineExceeded, Code.ResourceExhausted]) t.is(classifyFailure(new ConnectError("later", code)), "infrastructure", Code[code]);
  t.is(classifyFailure(new ConnectError("wrapped", Code.Internal, undefined, undefined, Object.assign(new Error("refused"), { code: "ECONNREFUSED" }))), "infrastructure");
});

test("infrastructure: what ioredis throws while its server is down", async (t) => {
  const redis = new Redis(`redis://127.0.0.1:${await closedPort()}`, connectionOptions());
  redis.on("error", () => undefined);
  try {
    const error = await rejectionOf(redis.zadd("k", 1, "m"));
    t.is(classifyFailure(error), "infrastructure", String(error));
    t.is(classifyFailure(new Error("fan-out failed", { cause: error })), "infrastructure", "also inside the handler's own error");
  } finally {
    redis.disconnect();
  }
});

test("infrastructure: what node-postgres throws when the database refuses connections", async (t) => {
  const client = new pg.Client({ connectionString: `postgres://x:y@127.0.0.1:${await closedPort()}/db`, connectionTimeoutMillis: 2_000 });
  const error = await rejectionOf(client.connect());
  t.is(classifyFailure(error), "infrastructure", String(error));
});

test("infrastructure: a transaction that lost a race or ran out of time (SQLSTATE 40001, 40P01, 55P03, 57014)", (t) => {
  for (const code of ["40001", "40P01", "55P03", "57014"]) t.is(classifyFailure(new Error("Failed query", { cause: Object.assign(new Error("conflict"), { code }) })), "infrastructure", code);
  t.is(classifyFailure(Object.assign(new Error("duplicate key"), { code: "23505" })), "unknown", "a constraint violation is not transient");
});

test("infrastructure: a fetch that could not connect, and one that timed out", async (t) => {
  const refused = await rejectionOf(fetch(`http://127.0.0.1:${await closedPort()}/`));
  t.is(classifyFailure(refused), "infrastructure", String(refused));
  t.is(classifyFailure(new DOMException("The operation was aborted due to timeout", "TimeoutError")), "infrastructure");
});

test("unknown: everything else spends the retry budget", (t) => {
  t.is(classifyFailure(new Error("cannot read properties of undefined")), "unknown");
  t.is(classifyFailure(new ConnectError("who knows", Code.Internal)), "unknown");
  t.is(classifyFailure(new ConnectError("no", Code.PermissionDenied)), "unknown");
  t.is(classifyFailure("a string"), "unknown");
});
