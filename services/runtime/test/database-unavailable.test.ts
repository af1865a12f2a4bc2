// Which errors mean "the database cannot be reached right now" (UNAVAILABLE
// to the caller) rather than a bug (INTERNAL).
import test from "ava";
import pg from "pg";
import { isDatabaseUnavailable } from "../src/db/unavailable.ts";

const coded = (message: string, code: string) => Object.assign(new Error(message), { code });

test("refused, reset and timed-out connections, pool timeouts and server shutdowns are unavailable, also when wrapped", (t) => {
  t.true(isDatabaseUnavailable(coded("connect ECONNREFUSED 127.0.0.1:5432", "ECONNREFUSED")));
  t.true(isDatabaseUnavailable(coded("read ECONNRESET", "ECONNRESET")));
  t.true(isDatabaseUnavailable(new Error("timeout exceeded when trying to connect")));
  t.true(isDatabaseUnavailable(new Error("Connection terminated unexpectedly")));
  t.true(isDatabaseUnavailable(new Error("Client has encountered a connection error and is not queryable")));
  t.true(isDatabaseUnavailable(coded("terminating connection due to administrator command", "57P01")));
  t.true(isDatabaseUnavailable(coded("sorry, too many clients already", "53300")));
  t.true(isDatabaseUnavailable(coded("connection failure", "08006")));
  // drizzle wraps driver errors: the cause decides.
  t.true(isDatabaseUnavailable(new Error("Failed query: select 1", { cause: coded("connect ECONNREFUSED", "ECONNREFUSED") })));
});

test("query errors, constraint violations and plain bugs are not", (t) => {
  t.false(isDatabaseUnavailable(coded('duplicate key value violates unique constraint "x"', "23505")));
  t.false(isDatabaseUnavailable(coded("syntax error at or near", "42601")));
  t.false(isDatabaseUnavailable(new TypeError("cannot read properties of undefined")));
  t.false(isDatabaseUnavailable("not an error"));
  t.false(isDatabaseUnavailable(undefined));
});

test("a real pool against a port nobody listens on fails as unavailable", async (t) => {
  const pool = new pg.Pool({ host: "127.0.0.1", port: 9, connectionTimeoutMillis: 2_000 });
  t.teardown(() => pool.end());
  const error = await t.throwsAsync(pool.query("select 1"));
  t.true(isDatabaseUnavailable(error), String(error));
});
