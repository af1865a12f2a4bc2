// The REST contract of the edge: one row per behaviour a client can rely on,
// run in order against a real Envoy in front of the real services (the
// runner test starts both; `make rest-contract BASE_URL=…` runs the same rows
// against any deployment). Rows build on earlier rows through the context
// (tokens captured from Login), so the table is self-contained: it registers
// its own users and needs nothing but the base URL.
import { absent, anyString, uuid, type JsonMatcher } from "./json-match.ts";

export interface Tokens {
  userId: string;
  sessionId: string;
  accessToken: string;
  refreshToken: string;
}

export interface RestContext {
  /** Unique per run, so the table can run repeatedly against one deployment. */
  runId: string;
  password: string;
  /** Filled by the Login rows. */
  users: Partial<Record<"a" | "a2" | "b", Tokens>>;
  /** A token signed by a key the issuer never published (the runner mints it). */
  forgedToken: string;
  /** A token signed with the issuer's real key but expired: only runners with access to the key can mint one. */
  expiredToken?: string;
}

export interface RestCase {
  name: string;
  method: "GET" | "POST" | "DELETE" | "OPTIONS";
  path: string | ((c: RestContext) => string);
  headers?: (c: RestContext) => Record<string, string>;
  /** A string is sent as is (for malformed JSON); anything else as JSON. */
  body?: (c: RestContext) => unknown;
  /** Rows that need a context value some runners cannot provide are skipped without it. */
  needs?: "expiredToken";
  expect: {
    status: number;
    json?: JsonMatcher;
    /** For bodies that depend on earlier rows (ids captured from Login). */
    jsonFor?: (c: RestContext) => JsonMatcher;
    /** Expected response headers: a RegExp to match, or null for "must be absent". */
    headers?: Record<string, RegExp | null>;
  };
  /** Stores what later rows need (tokens, ids). */
  capture?: (json: unknown, c: RestContext) => void;
}

export const PASSWORD = "violet-harbour-teapot-42";
const NEW_PASSWORD = "amber-lantern-walrus-77";
export const ALLOWED_ORIGIN = "http://localhost:5173";

const email = (c: RestContext, who: string) => `${who}.${c.runId}@example.org`;
const bearer = (token: string | undefined) => {
  if (!token) throw new Error("an earlier Login row did not run or failed");
  return { authorization: `Bearer ${token}` };
};
const json = { "content-type": "application/json" };
const as = (who: "a" | "a2" | "b") => (c: RestContext) => ({ ...json, ...bearer(c.users[who]?.accessToken) });
const base64url = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
/** What jwt_authn would forward for user B — sent by a client, it must never count. */
const forgedClaimsFor = (c: RestContext) => base64url({ iss: "aviary-auth", aud: "aviary", sub: c.users.b?.userId, sid: c.users.b?.sessionId, exp: 4102444800 });

/** A google.rpc.Status JSON (what convert_grpc_status and the edge's own replies produce). */
const status = (code: number, message: JsonMatcher = anyString, details?: JsonMatcher): JsonMatcher => ({ code, message, ...(details === undefined ? {} : { details }) });
const fieldViolation = (field: string) => [
  { "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: (v: unknown) => Array.isArray(v) && v.some((f) => (f as { field?: unknown }).field === field) },
];
const unauthenticated = (message: JsonMatcher = anyString) => status(16, message);

const loginRow = (who: "a" | "a2" | "b", identity: "a" | "b", device: string): RestCase => ({
  name: `Login ${who}`,
  method: "POST",
  path: "/v1/auth/login",
  headers: () => json,
  body: (c) => ({ email: email(c, identity), password: c.password, deviceName: device }),
  expect: { status: 200, json: { userId: uuid, sessionId: uuid, tokens: { accessToken: anyString, tokenType: "Bearer", refreshToken: anyString } } },
  capture: (body, c) => {
    const r = body as { userId: string; sessionId: string; tokens: { accessToken: string; refreshToken: string } };
    c.users[who] = { userId: r.userId, sessionId: r.sessionId, accessToken: r.tokens.accessToken, refreshToken: r.tokens.refreshToken };
  },
});

export const restCases: RestCase[] = [
  // --- every annotated AuthService RPC, happy path ---------------------------------
  ...(["a", "b"] as const).map(
    (who): RestCase => ({
      name: `Register ${who}`,
      method: "POST",
      path: "/v1/auth/register",
      headers: () => json,
      body: (c) => ({ email: email(c, who), password: c.password }),
      expect: { status: 200, jsonFor: (c) => ({ userId: uuid, identity: email(c, who), verificationRequired: true }) },
    }),
  ),
  {
    name: "SendVerificationCode",
    method: "POST",
    path: "/v1/auth/verification:send",
    headers: () => json,
    body: (c) => ({ email: email(c, "a") }),
    expect: { status: 200, json: { expiresInSeconds: (v) => typeof v === "number" && v > 0 } },
  },
  {
    name: "VerifyIdentity with a wrong code: 400 with a field violation on code",
    method: "POST",
    path: "/v1/auth/verification:verify",
    headers: () => json,
    body: (c) => ({ email: email(c, "a"), code: "000000" }),
    expect: { status: 400, json: status(3, anyString, fieldViolation("code")) },
  },
  loginRow("a", "a", "laptop"),
  loginRow("a2", "a", "phone"),
  loginRow("b", "b", "tablet"),
  {
    name: "Refresh rotates the token pair",
    method: "POST",
    path: "/v1/auth/token:refresh",
    headers: () => json,
    body: (c) => ({ refreshToken: c.users.a2?.refreshToken }),
    expect: { status: 200, json: { tokens: { accessToken: anyString, refreshToken: anyString } } },
    capture: (body, c) => {
      const tokens = (body as { tokens: { accessToken: string; refreshToken: string } }).tokens;
      c.users.a2 = { ...c.users.a2!, accessToken: tokens.accessToken, refreshToken: tokens.refreshToken };
    },
  },
  {
    name: "GetMe answers for the token's user",
    method: "GET",
    path: "/v1/auth/me",
    headers: as("a"),
    expect: { status: 200, jsonFor: (c) => ({ userId: c.users.a!.userId, email: email(c, "a"), emailVerified: absent }) },
  },
  {
    name: "ListSessions with a known query parameter",
    method: "GET",
    path: "/v1/auth/sessions?page_size=10",
    headers: as("a"),
    expect: { status: 200, json: { sessions: (v) => Array.isArray(v) && v.length === 2 } },
  },
  {
    name: "RevokeSession ends the second device's session",
    method: "DELETE",
    path: (c) => `/v1/auth/sessions/${c.users.a2?.sessionId}`,
    headers: as("a"),
    expect: { status: 200, json: {} },
  },
  {
    name: "RequestPasswordReset",
    method: "POST",
    path: "/v1/auth/password:requestReset",
    headers: () => json,
    body: (c) => ({ email: email(c, "b") }),
    expect: { status: 200, json: { expiresInSeconds: (v) => typeof v === "number" && v > 0 } },
  },
  {
    name: "ResetPassword with a wrong code: 400 with a field violation on code",
    method: "POST",
    path: "/v1/auth/password:reset",
    headers: () => json,
    body: (c) => ({ email: email(c, "b"), code: "000000", newPassword: NEW_PASSWORD }),
    expect: { status: 400, json: status(3, anyString, fieldViolation("code")) },
  },
  {
    name: "GetJwks through the transcoder (plain JWKS JSON)",
    method: "GET",
    path: "/.well-known/jwks.json",
    expect: { status: 200, json: { keys: (v) => Array.isArray(v) && v.length > 0 && (v[0] as { kty?: unknown }).kty === "EC" } },
  },
  {
    name: "GetOpenIdConfiguration",
    method: "GET",
    path: "/.well-known/openid-configuration",
    expect: { status: 200, json: { issuer: "aviary-auth" } },
  },

  // --- bad input: the transcoder's and the service's answers -------------------------
  {
    name: "malformed JSON: 400 from the transcoder, as a google.rpc.Status JSON",
    method: "POST",
    path: "/v1/auth/login",
    headers: () => json,
    body: () => '{"email": ',
    expect: { status: 400, json: status(3, /Unexpected end of string/), headers: { "content-type": /^application\/json/ } },
  },
  {
    name: "wrong JSON type: 400 naming the field",
    method: "POST",
    path: "/v1/auth/login",
    headers: () => json,
    body: () => ({ email: 5, password: PASSWORD }),
    expect: { status: 400, json: status(3, /email: invalid value 5 for type TYPE_STRING/) },
  },
  {
    name: "unknown JSON field: ignored by the transcoder (proto3 JSON), the call succeeds",
    method: "POST",
    path: "/v1/auth/login",
    headers: () => json,
    body: (c) => ({ email: email(c, "b"), password: c.password, deviceName: "extra", favouriteColour: "teal" }),
    expect: { status: 200, json: { userId: uuid } },
  },
  {
    name: "unknown query parameter: 400, never a silently untranscoded request",
    method: "GET",
    path: "/v1/auth/sessions?page_sise=10",
    headers: as("a"),
    expect: { status: 400, json: status(3, /Could not find field "page_sise"/) },
  },
  {
    name: "path variable that is not a UUID: 400 with a field violation on session_id",
    method: "DELETE",
    path: "/v1/auth/sessions/not-a-uuid",
    headers: as("a"),
    expect: { status: 400, json: status(3, "invalid request", fieldViolation("session_id")) },
  },
  {
    name: "service validation error: 400 with field violations (convert_grpc_status)",
    method: "POST",
    path: "/v1/auth/register",
    headers: () => json,
    body: () => ({ email: "not-an-email", password: "short" }),
    expect: { status: 400, json: status(3, "invalid request", (v) => Array.isArray(v) && v.length === 1) },
  },
  {
    name: "oversized body (1 MiB + 1): 413 at the edge, never reaches the service",
    method: "POST",
    path: "/v1/auth/register",
    headers: () => json,
    body: () => `{"email":"${"x".repeat(1024 * 1024)}"}`,
    expect: { status: 413, json: status(8, "Payload Too Large") },
  },

  // --- authentication at the edge -------------------------------------------------------
  {
    name: "protected route without a token: 401 from jwt_authn, JSON body, www-authenticate",
    method: "GET",
    path: "/v1/auth/me",
    expect: { status: 401, json: unauthenticated("Jwt is missing"), headers: { "www-authenticate": /^Bearer/ } },
  },
  {
    name: "token signed by an unpublished key: 401",
    method: "GET",
    path: "/v1/auth/me",
    headers: (c) => bearer(c.forgedToken),
    expect: { status: 401, json: unauthenticated() },
  },
  {
    name: "expired token: 401",
    method: "GET",
    path: "/v1/auth/me",
    headers: (c) => bearer(c.expiredToken),
    needs: "expiredToken",
    expect: { status: 401, json: unauthenticated("Jwt is expired") },
  },
  {
    name: "not a JWT: 401",
    method: "GET",
    path: "/v1/auth/sessions",
    headers: () => bearer("not-a-jwt"),
    expect: { status: 401, json: unauthenticated() },
  },
  {
    name: "forged x-aviary-claims without a token: 401 (the header grants nothing)",
    method: "GET",
    path: "/v1/auth/me",
    headers: (c) => ({ "x-aviary-claims": forgedClaimsFor(c) }),
    expect: { status: 401, json: unauthenticated("Jwt is missing") },
  },
  {
    name: "token for A plus forged x-aviary-claims for B: answers A",
    method: "GET",
    path: "/v1/auth/me",
    headers: (c) => ({ ...as("a")(c), "x-aviary-claims": forgedClaimsFor(c) }),
    expect: { status: 200, jsonFor: (c) => ({ userId: c.users.a!.userId }) },
  },
  {
    name: "a revoked session's token passes the edge but the service refuses it (defence in depth)",
    method: "GET",
    path: "/v1/auth/me",
    headers: as("a2"),
    // jwt_authn's messages all start with "Jwt"; this one is the service's.
    expect: { status: 401, json: unauthenticated((m: unknown) => typeof m === "string" && !m.startsWith("Jwt")) },
  },
  {
    name: "merge_slashes: //v1/auth//me without a token is /v1/auth/me: 401, not an unprotected route",
    method: "GET",
    path: "//v1/auth//me",
    expect: { status: 401, json: unauthenticated("Jwt is missing") },
  },
  {
    name: "merge_slashes: //v1/auth//me with a token reaches GetMe",
    method: "GET",
    path: "//v1/auth//me",
    headers: as("a"),
    expect: { status: 200, jsonFor: (c) => ({ userId: c.users.a!.userId }) },
  },
  {
    name: "Connect JSON on the gRPC path is routed too (transcoder off there), token required",
    method: "POST",
    path: "/aviary.auth.v1.AuthService/GetMe",
    headers: () => json,
    body: () => ({}),
    expect: { status: 401, json: unauthenticated("Jwt is missing") },
  },
  {
    name: "Connect JSON on the gRPC path with a token",
    method: "POST",
    path: "/aviary.auth.v1.AuthService/GetMe",
    headers: as("a"),
    body: () => ({}),
    expect: { status: 200, jsonFor: (c) => ({ userId: c.users.a!.userId }) },
  },
  {
    name: "Connect JSON public method on the gRPC path: no token needed",
    method: "POST",
    path: "/aviary.auth.v1.AuthService/GetJwks",
    headers: () => json,
    body: () => ({}),
    expect: { status: 200, json: { keys: (v) => Array.isArray(v) } },
  },

  // --- what the edge does not expose -----------------------------------------------------
  ...["/healthz", "/readyz", "/metrics"].map(
    (path): RestCase => ({
      name: `${path} is not exposed (404 with a token)`,
      method: "GET",
      path,
      headers: as("a"),
      expect: { status: 404, json: status(5) },
    }),
  ),
  {
    name: "unrouted path without a token: 401 (the catch-all rule requires a JWT)",
    method: "GET",
    path: "/healthz",
    expect: { status: 401, json: unauthenticated() },
  },
  {
    name: "API reference page at /docs: public, HTML",
    method: "GET",
    path: "/docs",
    expect: { status: 200, headers: { "content-type": /^text\/html/ } },
  },
  {
    name: "OpenAPI document at /openapi.json: public, the generated spec",
    method: "GET",
    path: "/openapi.json",
    expect: { status: 200, headers: { "content-type": /^application\/json/ }, json: { openapi: /^3\.1\./, paths: (v: unknown) => typeof v === "object" && v !== null && "/v1/auth/login" in v } },
  },
  {
    name: "wrong verb for a REST path: 404",
    method: "GET",
    path: "/v1/auth/register",
    headers: as("a"),
    expect: { status: 404, json: status(5) },
  },

  // --- CORS ------------------------------------------------------------------------------------
  {
    name: "CORS preflight from an allowed origin: 200 from Envoy with the allow headers",
    method: "OPTIONS",
    path: "/v1/auth/login",
    headers: () => ({ origin: ALLOWED_ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "content-type,authorization" }),
    expect: {
      status: 200,
      headers: {
        "access-control-allow-origin": new RegExp(`^${ALLOWED_ORIGIN}$`),
        "access-control-allow-headers": /authorization/,
        "access-control-expose-headers": /grpc-status, grpc-message, grpc-status-details-bin/,
      },
    },
  },
  {
    name: "CORS preflight for a gRPC-web call from an allowed origin",
    method: "OPTIONS",
    path: "/aviary.auth.v1.AuthService/Login",
    headers: () => ({ origin: ALLOWED_ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "content-type,x-grpc-web,x-user-agent" }),
    expect: { status: 200, headers: { "access-control-allow-origin": new RegExp(`^${ALLOWED_ORIGIN}$`), "access-control-allow-headers": /x-grpc-web/ } },
  },
  {
    name: "CORS preflight from an unlisted origin: no allow-origin header",
    method: "OPTIONS",
    path: "/v1/auth/login",
    headers: () => ({ origin: "https://evil.example", "access-control-request-method": "POST" }),
    expect: { status: 404, headers: { "access-control-allow-origin": null } },
  },
  {
    name: "actual request from an allowed origin exposes grpc-status",
    method: "GET",
    path: "/.well-known/jwks.json",
    headers: () => ({ origin: ALLOWED_ORIGIN }),
    expect: { status: 200, headers: { "access-control-allow-origin": new RegExp(`^${ALLOWED_ORIGIN}$`), "access-control-expose-headers": /grpc-status/ } },
  },

  // --- last: rows that end sessions ---------------------------------------------------------
  {
    name: "ChangePassword",
    method: "POST",
    path: "/v1/auth/password:change",
    headers: as("b"),
    body: (c) => ({ currentPassword: c.password, newPassword: NEW_PASSWORD }),
    expect: { status: 200, json: {} },
  },
  {
    name: "Logout",
    method: "POST",
    path: "/v1/auth/logout",
    headers: as("a"),
    body: () => ({}),
    expect: { status: 200, json: {} },
  },
];
