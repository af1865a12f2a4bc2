import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { createPageTokens, pageSize } from "../src/pagination.ts";

interface Cursor {
  createdAt: string;
  id: string;
}
const parseCursor = (v: unknown): Cursor => {
  const o = v as Partial<Cursor> | null;
  if (typeof o?.createdAt !== "string" || typeof o.id !== "string") throw new Error("bad cursor shape");
  return { createdAt: o.createdAt, id: o.id };
};

const SECRET = "0123456789abcdef0123456789abcdef";
const tokens = createPageTokens(SECRET, "aviary.auth.v1.AuthService/ListSessions");
const cursor: Cursor = { createdAt: "2025-01-02T03:04:05.000Z", id: "7d1e0c52-3c2b-4a57-9d8e-0e8f6f1c9a10" };

function assertBadToken(t: import("ava").ExecutionContext, fn: () => unknown) {
  const error = t.throws(fn);
  t.true(error instanceof ConnectError, String(error));
  const ce = error as ConnectError;
  t.is(ce.code, Code.InvalidArgument);
  const violations = ce.findDetails(BadRequestSchema)[0]?.fieldViolations ?? [];
  t.deepEqual(
    violations.map((v) => v.field),
    ["page_token"],
  );
}

test("a token round-trips and is opaque (not the raw JSON)", (t) => {
  const token = tokens.encode(cursor);
  t.false(token.includes("createdAt"));
  t.regex(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
  t.deepEqual(tokens.decode(token, parseCursor), cursor);
});

test("a tampered payload is rejected", (t) => {
  const token = tokens.encode(cursor);
  const [body, mac] = token.split(".") as [string, string];
  const forged = Buffer.from(JSON.stringify({ ...cursor, id: "00000000-0000-0000-0000-000000000000" })).toString("base64url");
  assertBadToken(t, () => tokens.decode(`${forged}.${mac}`, parseCursor));
  // Flip one character of the original body.
  const flipped = (body[0] === "A" ? "B" : "A") + body.slice(1);
  assertBadToken(t, () => tokens.decode(`${flipped}.${mac}`, parseCursor));
});

test("a tampered or truncated MAC is rejected", (t) => {
  const token = tokens.encode(cursor);
  assertBadToken(t, () => tokens.decode(token.slice(0, -1), parseCursor));
  assertBadToken(t, () => tokens.decode(token.slice(0, -1) + (token.endsWith("A") ? "B" : "A"), parseCursor));
  assertBadToken(t, () => tokens.decode(token.slice(0, token.indexOf(".")), parseCursor));
  assertBadToken(t, () => tokens.decode(`${token}x`, parseCursor));
});

test("tokens from another secret or another method are foreign", (t) => {
  const other = createPageTokens("another-secret-another-secret-xx", "aviary.auth.v1.AuthService/ListSessions");
  assertBadToken(t, () => tokens.decode(other.encode(cursor), parseCursor));
  const otherMethod = createPageTokens(SECRET, "aviary.post.v1.PostService/ListPosts");
  assertBadToken(t, () => tokens.decode(otherMethod.encode(cursor), parseCursor));
});

test("garbage and valid-MAC-but-wrong-shape payloads are rejected", (t) => {
  for (const junk of ["", ".", "abc", "a.b.c", "!!!.???", "x".repeat(5000)]) {
    assertBadToken(t, () => tokens.decode(junk, parseCursor));
  }
  // Correctly signed, but not a cursor: the parse function's error is mapped too.
  assertBadToken(t, () => tokens.decode(tokens.encode({ something: "else" }), parseCursor));
});

test("short secrets are refused at construction", (t) => {
  t.throws(() => createPageTokens("short"), { message: /at least 16 bytes/ });
});

test("pageSize: default when unset, clamp to max, reject negatives", (t) => {
  t.is(pageSize(undefined), 20);
  t.is(pageSize(0, { default: 20, max: 100 }), 20);
  t.is(pageSize(7, { default: 20, max: 100 }), 7);
  t.is(pageSize(1000, { default: 20, max: 100 }), 100);
  const error = t.throws(() => pageSize(-1, { default: 20, max: 100 }));
  t.is((error as ConnectError).code, Code.InvalidArgument);
  t.is((error as ConnectError).findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field, "page_size");
});
