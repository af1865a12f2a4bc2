// The REST contract of the edge: one row per behaviour a client can rely on,
// run in order against a real Envoy in front of the real services (the
// runner test starts both; `make rest-contract BASE_URL=…` runs the same rows
// against any deployment). Rows build on earlier rows through the context
// (tokens captured from Login), so the table is self-contained: it registers
// its own users and needs nothing but the base URL. The user and media rows
// build on the same Login rows and capture the ids they create (media, devices,
// page tokens) in `captured`. Files never go through the edge (clients POST
// them straight to object storage with the presigned form): a row's `before`
// step does that upload, between the CreateUpload row that captured the form
// and the ConfirmUpload row that checks what arrived. The notification rows
// use a fresh user (d) whose only notification is a like the table causes;
// the chat rows are c and d's conversations (a is the outsider).
import { absent, anyString, uuid, type JsonMatcher } from "./json-match.ts";
import { base32Decode, totpCode } from "../../services/auth/src/domain/totp.ts";

export interface Tokens {
  userId: string;
  sessionId: string;
  accessToken: string;
  refreshToken: string;
}

export type Who = "a" | "a2" | "b" | "c" | "d" | "e" | "x";
/** What rows capture for later rows (beyond tokens). */
export type Captured = "mediaId" | "deviceId" | "followersPageToken" | "avatarMediaId" | "postId" | "commentId" | "likedPostId" | "notificationGroupId" | "chatClientMessageId" | "chatMessageId" | "chatConversationId" | "chatGroupId" | "totpSecret" | "recoveryCode" | "challengeToken" | "dataExportId";
/** Presigned upload forms captured from CreateUpload rows, by what they are for. */
export type UploadName = "avatar";

export interface UploadForm {
  url: string;
  fields: Record<string, string>;
}

export interface RestContext {
  /** Unique per run, so the table can run repeatedly against one deployment. */
  runId: string;
  password: string;
  /** Filled by the Login rows. */
  users: Partial<Record<Who, Tokens>>;
  /** Filled by rows that create things later rows refer to. */
  captured: Partial<Record<Captured, string>>;
  /** Filled by CreateUpload rows; `before` steps POST files with them. */
  uploads: Partial<Record<UploadName, UploadForm>>;
  /** A token signed by a key the issuer never published (the runner mints it). */
  forgedToken: string;
  /** A token signed with the issuer's real key but expired: only runners with access to the key can mint one. */
  expiredToken?: string;
}

export interface RestCase {
  name: string;
  method: "GET" | "POST" | "PATCH" | "DELETE" | "OPTIONS";
  path: string | ((c: RestContext) => string);
  headers?: (c: RestContext) => Record<string, string>;
  /** A string is sent as is (for malformed JSON); anything else as JSON. */
  body?: (c: RestContext) => unknown;
  /**
   * A step outside the edge that must happen before the request (uploading a
   * file to object storage with a captured form); run once, not retried. A
   * throw fails the row.
   */
  before?: (c: RestContext) => Promise<void>;
  /** Rows that need a context value some runners cannot provide are skipped without it. */
  needs?: "expiredToken";
  /**
   * For eventually consistent answers (a profile created from a Kafka event):
   * the row is retried until it matches or this many milliseconds pass.
   */
  eventuallyMs?: number;
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
const as = (who: Who) => (c: RestContext) => ({ ...json, ...bearer(c.users[who]?.accessToken) });
const base64url = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
/** What jwt_authn would forward for user B — sent by a client, it must never count. */
const forgedClaimsFor = (c: RestContext) => base64url({ iss: "aviary-auth", aud: "aviary", sub: c.users.b?.userId, sid: c.users.b?.sessionId, exp: 4102444800 });

/** A google.rpc.Status JSON (what convert_grpc_status and the edge's own replies produce). */
const status = (code: number, message: JsonMatcher = anyString, details?: JsonMatcher): JsonMatcher => ({ code, message, ...(details === undefined ? {} : { details }) });
const fieldViolation = (field: string) => [
  { "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: (v: unknown) => Array.isArray(v) && v.some((f) => (f as { field?: unknown }).field === field) },
];
const unauthenticated = (message: JsonMatcher = anyString) => status(16, message);

const loginRow = (who: Who, identity: "a" | "b" | "c" | "d" | "e" | "x", device: string): RestCase => ({
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

// --- user and media services: helpers ---------------------------------------------------------

/** A user id captured by a Login row. */
const idOf = (c: RestContext, who: Who): string => {
  const id = c.users[who]?.userId;
  if (!id) throw new Error(`the Login ${who} row did not run or failed`);
  return id;
};
const captured = (c: RestContext, key: Captured): string => {
  const value = c.captured[key];
  if (!value) throw new Error(`an earlier row did not capture ${key}`);
  return value;
};
/** Unique per run (the run id is lower-case base36 and hex, so a valid username of at most 30). */
const usernameOf = (c: RestContext, who: "a" | "b") => `${who}_${c.runId}`;
/** A canonical UUID no profile, device or media item has. */
const NOBODY = "00000000-0000-4000-8000-000000000001";
const empty = (v: unknown) => v === undefined || (typeof v === "object" && v !== null && Object.keys(v).length === 0);
const notFound = status(5);
/** Exactly these user ids, in any order. */
const profilesOf = (...ids: string[]) => (v: unknown) =>
  Array.isArray(v) && v.length === ids.length && ids.every((id) => v.some((p) => (p as { userId?: unknown }).userId === id));
/** One page of a follow list: exactly these users, in this order. */
const entriesOf = (...ids: string[]): JsonMatcher => ids.map((userId) => ({ profile: { userId }, followedAt: anyString }));
/** Changes one character in the middle of a token: the signature no longer matches. */
const tamper = (token: string) => {
  const i = Math.floor(token.length / 2);
  return `${token.slice(0, i)}${token[i] === "A" ? "B" : "A"}${token.slice(i + 1)}`;
};
const follow = (who: Who, whom: Who, name: string, expect: RestCase["expect"]): RestCase => ({
  name,
  method: "POST",
  path: (c) => `/v1/users/${idOf(c, whom)}:follow`,
  headers: as(who),
  body: () => ({}),
  expect,
});
const getProfile = (viewer: Who, whom: Who, name: string, expect: RestCase["expect"], extra: Partial<RestCase> = {}): RestCase => ({
  name,
  method: "GET",
  path: (c) => `/v1/users/${idOf(c, whom)}`,
  headers: as(viewer),
  expect,
  ...extra,
});

// --- every annotated UserService RPC, and its errors -----------------------------------------
const userCases: RestCase[] = [
  {
    name: "Register c",
    method: "POST",
    path: "/v1/auth/register",
    headers: () => json,
    body: (c) => ({ email: email(c, "c"), password: c.password }),
    expect: { status: 200, json: { userId: uuid } },
  },
  loginRow("c", "c", "desktop"),
  getProfile("a", "a", "GetProfile of oneself works at once (the first call creates the profile)", {
    status: 200,
    jsonFor: (c) => ({ profile: { userId: idOf(c, "a"), username: absent, followerCount: absent, createdAt: anyString } }),
  }),
  getProfile("a", "b", "GetProfile of another registered user: the profile appears from UserRegistered (waits for the consumer)", {
    status: 200,
    jsonFor: (c) => ({ profile: { userId: idOf(c, "b") } }),
  }, { eventuallyMs: 60_000 }),
  getProfile("c", "c", "GetProfile of oneself for c", { status: 200, jsonFor: (c) => ({ profile: { userId: idOf(c, "c") } }) }),
  {
    name: "UpdateProfile (PATCH /v1/users/me) sets username and display name",
    method: "PATCH",
    path: "/v1/users/me",
    headers: as("a"),
    body: (c) => ({ username: usernameOf(c, "a"), displayName: "Ada Aviary" }),
    expect: { status: 200, jsonFor: (c) => ({ profile: { userId: idOf(c, "a"), username: usernameOf(c, "a"), displayName: "Ada Aviary", updatedAt: anyString } }) },
  },
  {
    name: "UpdateProfile with an invalid username: 400 with a field violation on username",
    method: "PATCH",
    path: "/v1/users/me",
    headers: as("a"),
    body: () => ({ username: "no spaces!" }),
    expect: { status: 400, json: status(3, anyString, fieldViolation("username")) },
  },
  {
    name: "UpdateProfile with a reserved username: 400 with a field violation on username",
    method: "PATCH",
    path: "/v1/users/me",
    headers: as("a"),
    body: () => ({ username: "Admin" }),
    expect: { status: 400, json: status(3, anyString, fieldViolation("username")) },
  },
  {
    name: "UpdateProfile with another user's username (other case): 409 ALREADY_EXISTS",
    method: "PATCH",
    path: "/v1/users/me",
    headers: as("b"),
    body: (c) => ({ username: usernameOf(c, "a").toUpperCase() }),
    expect: { status: 409, json: status(6) },
  },
  {
    name: "UpdateProfile with a bio over 300 characters: 400 with a field violation on bio",
    method: "PATCH",
    path: "/v1/users/me",
    headers: as("a"),
    body: () => ({ bio: "b".repeat(301) }),
    expect: { status: 400, json: status(3, anyString, fieldViolation("bio")) },
  },
  {
    name: "UpdateProfile with an unknown JSON field is ignored; a bio of exactly 300 is fine",
    method: "PATCH",
    path: "/v1/users/me",
    headers: as("b"),
    body: (c) => ({ username: usernameOf(c, "b"), bio: "b".repeat(300), favouriteColour: "teal" }),
    expect: { status: 200, jsonFor: (c) => ({ profile: { userId: idOf(c, "b"), username: usernameOf(c, "b"), bio: (v: unknown) => typeof v === "string" && v.length === 300 } }) },
  },
  getProfile("b", "a", "GetProfile by id of another user: their profile, without the private region", {
    status: 200,
    jsonFor: (c) => ({ profile: { userId: idOf(c, "a"), username: usernameOf(c, "a"), displayName: "Ada Aviary", region: absent } }),
  }),
  {
    name: "GetProfile with a path variable that is not a UUID: 400 with a field violation on user_id",
    method: "GET",
    path: "/v1/users/not-a-uuid",
    headers: as("a"),
    expect: { status: 400, json: status(3, anyString, fieldViolation("user_id")) },
  },
  {
    name: "GetProfile of an unknown user: 404",
    method: "GET",
    path: `/v1/users/${NOBODY}`,
    headers: as("a"),
    expect: { status: 404, json: notFound },
  },
  {
    name: "GetProfileByUsername (case-insensitive, /v1/users:lookup)",
    method: "GET",
    path: (c) => `/v1/users:lookup?username=${encodeURIComponent(usernameOf(c, "a").toUpperCase())}`,
    headers: as("c"),
    expect: { status: 200, jsonFor: (c) => ({ profile: { userId: idOf(c, "a"), username: usernameOf(c, "a") } }) },
  },
  {
    name: "GetProfileByUsername of an unknown name: 404",
    method: "GET",
    path: (c) => `/v1/users:lookup?username=nobody_${c.runId}`,
    headers: as("c"),
    expect: { status: 404, json: notFound },
  },
  {
    name: "BatchGetProfiles (repeated user_ids): a list of the known ones, unknown ids absent",
    method: "GET",
    path: (c) => `/v1/users:batchGet?user_ids=${idOf(c, "a")}&user_ids=${idOf(c, "b")}&user_ids=${NOBODY}`,
    headers: as("c"),
    expect: { status: 200, jsonFor: (c) => ({ profiles: profilesOf(idOf(c, "a"), idOf(c, "b")) }) },
  },
  {
    name: "SearchUsers finds the user by username",
    method: "GET",
    path: (c) => `/v1/users:search?query=${encodeURIComponent(`@${usernameOf(c, "a")}`)}&page_size=5`,
    headers: as("c"),
    expect: { status: 200, jsonFor: (c) => ({ profiles: (v: unknown) => Array.isArray(v) && (v[0] as { userId?: unknown } | undefined)?.userId === idOf(c, "a") }) },
  },
  follow("a", "b", "Follow", { status: 200, json: {} }),
  follow("a", "b", "Follow again: idempotent, 200", { status: 200, json: {} }),
  follow("a", "c", "Follow a second user", { status: 200, json: {} }),
  follow("c", "b", "Follow by a second follower", { status: 200, json: {} }),
  follow("a", "a", "Follow oneself: 400 with a field violation on user_id", { status: 400, json: status(3, anyString, fieldViolation("user_id")) }),
  {
    name: "Follow an unknown user: 404",
    method: "POST",
    path: `/v1/users/${NOBODY}:follow`,
    headers: as("a"),
    body: () => ({}),
    expect: { status: 404, json: notFound },
  },
  {
    name: "ListFollowers with page_size=1: newest first, with a next_page_token",
    method: "GET",
    path: (c) => `/v1/users/${idOf(c, "b")}/followers?page_size=1`,
    headers: as("a"),
    expect: { status: 200, jsonFor: (c) => ({ followers: entriesOf(idOf(c, "c")), nextPageToken: anyString }) },
    capture: (body, c) => {
      c.captured.followersPageToken = (body as { nextPageToken: string }).nextPageToken;
    },
  },
  {
    name: "ListFollowers second page: the last follower, no next_page_token",
    method: "GET",
    path: (c) => `/v1/users/${idOf(c, "b")}/followers?page_size=1&page_token=${encodeURIComponent(captured(c, "followersPageToken"))}`,
    headers: as("a"),
    expect: { status: 200, jsonFor: (c) => ({ followers: entriesOf(idOf(c, "a")), nextPageToken: absent }) },
  },
  {
    name: "ListFollowers with a tampered page_token: 400 with a field violation on page_token",
    method: "GET",
    path: (c) => `/v1/users/${idOf(c, "b")}/followers?page_size=1&page_token=${encodeURIComponent(tamper(captured(c, "followersPageToken")))}`,
    headers: as("a"),
    expect: { status: 400, json: status(3, anyString, fieldViolation("page_token")) },
  },
  {
    name: "ListFollowing with page_size=1: newest first, with a next_page_token",
    method: "GET",
    path: (c) => `/v1/users/${idOf(c, "a")}/following?page_size=1`,
    headers: as("b"),
    expect: { status: 200, jsonFor: (c) => ({ following: entriesOf(idOf(c, "c")), nextPageToken: anyString }) },
  },
  {
    name: "CheckFollows (POST /v1/follows:check): one result per pair, in order",
    method: "POST",
    path: "/v1/follows:check",
    headers: as("c"),
    body: (c) => ({ pairs: [{ followerId: idOf(c, "a"), followeeId: idOf(c, "b") }, { followerId: idOf(c, "b"), followeeId: idOf(c, "a") }] }),
    expect: {
      status: 200,
      jsonFor: (c) => ({
        results: [
          { followerId: idOf(c, "a"), followeeId: idOf(c, "b"), follows: true },
          { followerId: idOf(c, "b"), followeeId: idOf(c, "a"), follows: absent },
        ],
      }),
    },
  },
  {
    name: "Unfollow",
    method: "POST",
    path: (c) => `/v1/users/${idOf(c, "c")}:unfollow`,
    headers: as("a"),
    body: () => ({}),
    expect: { status: 200, json: {} },
  },
  {
    name: "ListFollowing after Unfollow: only the remaining followee",
    method: "GET",
    path: (c) => `/v1/users/${idOf(c, "a")}/following`,
    headers: as("a"),
    expect: { status: 200, jsonFor: (c) => ({ following: entriesOf(idOf(c, "b")), nextPageToken: absent }) },
  },
  {
    name: "Block",
    method: "POST",
    path: (c) => `/v1/users/${idOf(c, "a")}:block`,
    headers: as("b"),
    body: () => ({}),
    expect: { status: 200, json: {} },
  },
  getProfile("a", "b", "the blocked user cannot see the blocker: GetProfile 404", { status: 404, json: notFound }),
  follow("a", "b", "the blocked user cannot follow the blocker: 404 (same as an unknown user)", { status: 404, json: notFound }),
  // FAILED_PRECONDITION is 400 through the transcoder (the standard gRPC→HTTP mapping), not 412.
  follow("b", "a", "the blocker cannot follow the blocked user: 400 FAILED_PRECONDITION (unblock first)", { status: 400, json: status(9) }),
  {
    name: "Block ended the follow between the two",
    method: "POST",
    path: "/v1/follows:check",
    headers: as("c"),
    body: (c) => ({ pairs: [{ followerId: idOf(c, "a"), followeeId: idOf(c, "b") }] }),
    expect: { status: 200, jsonFor: (c) => ({ results: [{ followerId: idOf(c, "a"), followeeId: idOf(c, "b"), follows: absent }] }) },
  },
  {
    name: "Unblock",
    method: "POST",
    path: (c) => `/v1/users/${idOf(c, "a")}:unblock`,
    headers: as("b"),
    body: () => ({}),
    expect: { status: 200, json: {} },
  },
  getProfile("a", "b", "after Unblock the blocker is visible again", { status: 200, jsonFor: (c) => ({ profile: { userId: idOf(c, "b") } }) }),
  ...[1, 2].map(
    (attempt): RestCase => ({
      name: attempt === 1 ? "RegisterDevice" : "RegisterDevice again with the same token: the same device",
      method: "POST",
      path: "/v1/devices",
      headers: as("a"),
      body: (c) => ({ platform: "PLATFORM_WEB", token: `web-push-${c.runId}` }),
      expect: {
        status: 200,
        jsonFor: (c) => ({ device: { deviceId: attempt === 1 ? uuid : captured(c, "deviceId"), platform: "PLATFORM_WEB", token: `web-push-${c.runId}`, createdAt: anyString } }),
      },
      capture: (body, c) => {
        c.captured.deviceId = (body as { device: { deviceId: string } }).device.deviceId;
      },
    }),
  ),
  {
    name: "RegisterDevice without a platform: 400 with a field violation on platform",
    method: "POST",
    path: "/v1/devices",
    headers: as("a"),
    body: (c) => ({ token: `web-push-${c.runId}-2` }),
    expect: { status: 400, json: status(3, anyString, fieldViolation("platform")) },
  },
  {
    name: "ListDevices",
    method: "GET",
    path: "/v1/devices?page_size=10",
    headers: as("a"),
    expect: { status: 200, jsonFor: (c) => ({ devices: [{ deviceId: captured(c, "deviceId"), platform: "PLATFORM_WEB" }], nextPageToken: absent }) },
  },
  {
    name: "RemoveDevice of someone else's device: 404",
    method: "DELETE",
    path: (c) => `/v1/devices/${captured(c, "deviceId")}`,
    headers: as("b"),
    expect: { status: 404, json: notFound },
  },
  {
    name: "RemoveDevice",
    method: "DELETE",
    path: (c) => `/v1/devices/${captured(c, "deviceId")}`,
    headers: as("a"),
    expect: { status: 200, json: {} },
  },
  {
    name: "ListDevices after RemoveDevice: none",
    method: "GET",
    path: "/v1/devices",
    headers: as("a"),
    expect: { status: 200, json: { devices: absent } },
  },
  {
    name: "user route without a token: 401 from jwt_authn",
    method: "GET",
    path: `/v1/users/${NOBODY}`,
    expect: { status: 401, json: unauthenticated("Jwt is missing") },
  },
  {
    name: "PATCH /v1/users/me without a token: 401",
    method: "PATCH",
    path: "/v1/users/me",
    headers: () => json,
    body: () => ({ displayName: "x" }),
    expect: { status: 401, json: unauthenticated("Jwt is missing") },
  },
];

// --- every annotated MediaService RPC, and its errors (no upload: that goes to S3, not the edge) --
const createUpload = (name: string, request: Record<string, unknown>, expect: RestCase["expect"], capture?: RestCase["capture"]): RestCase => ({
  name,
  method: "POST",
  path: "/v1/media/uploads",
  headers: as("a"),
  body: () => request,
  expect,
  ...(capture ? { capture } : {}),
});
/** A small PNG (its magic number, then filler): what ConfirmUpload's sniffing accepts as image/png. */
const PNG = (() => {
  const bytes = new Uint8Array(1024).fill(7);
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return bytes;
})();

/** POSTs `bytes` with a captured presigned form, as a browser would (multipart/form-data, the file part last). */
const uploadWith = (name: UploadName, bytes: Uint8Array) => async (c: RestContext): Promise<void> => {
  const upload = c.uploads[name];
  if (!upload) throw new Error(`an earlier CreateUpload row did not capture the ${name} form`);
  const form = new FormData();
  for (const [field, value] of Object.entries(upload.fields)) form.append(field, value);
  form.append("file", new Blob([bytes as Uint8Array<ArrayBuffer>], { type: upload.fields["Content-Type"] ?? "application/octet-stream" }), "upload.bin");
  const response = await fetch(upload.url, { method: "POST", body: form });
  if (response.status >= 300) throw new Error(`the presigned POST to ${upload.url} answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
};

const mediaCases: RestCase[] = [
  createUpload(
    "CreateUpload: a pending media item and a presigned POST form (shape only)",
    { contentType: "image/png", sizeBytes: "2048", purpose: "MEDIA_PURPOSE_POST" },
    {
      status: 200,
      json: {
        mediaId: uuid,
        url: /^https?:\/\//,
        fields: (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length > 0,
        expiresAt: anyString,
        // int64 is a JSON string.
        maxSizeBytes: /^[1-9][0-9]*$/,
      },
    },
    (body, c) => {
      c.captured.mediaId = (body as { mediaId: string }).mediaId;
    },
  ),
  createUpload(
    "CreateUpload of a forbidden content type: 400 with a field violation on content_type",
    { contentType: "application/pdf", sizeBytes: "2048", purpose: "MEDIA_PURPOSE_POST" },
    { status: 400, json: status(3, anyString, fieldViolation("content_type")) },
  ),
  createUpload(
    "CreateUpload of a video as an avatar: 400 with a field violation on content_type",
    { contentType: "video/mp4", sizeBytes: "2048", purpose: "MEDIA_PURPOSE_AVATAR" },
    { status: 400, json: status(3, anyString, fieldViolation("content_type")) },
  ),
  createUpload(
    "CreateUpload declaring more than the type's limit: 400 with a field violation on size_bytes",
    { contentType: "image/png", sizeBytes: String(512 * 1024 * 1024), purpose: "MEDIA_PURPOSE_POST" },
    { status: 400, json: status(3, anyString, fieldViolation("size_bytes")) },
  ),
  {
    name: "ConfirmUpload before anything was uploaded: 400 FAILED_PRECONDITION (code 9, a PreconditionFailure)",
    method: "POST",
    path: (c) => `/v1/media/${captured(c, "mediaId")}:confirm`,
    headers: as("a"),
    body: () => ({}),
    expect: {
      status: 400,
      json: status(9, anyString, [{ "@type": "type.googleapis.com/google.rpc.PreconditionFailure", violations: [{ type: "UPLOAD", subject: anyString, description: anyString }] }]),
    },
  },
  {
    name: "ConfirmUpload of someone else's media: 404 (indistinguishable from none)",
    method: "POST",
    path: (c) => `/v1/media/${captured(c, "mediaId")}:confirm`,
    headers: as("b"),
    body: () => ({}),
    expect: { status: 404, json: notFound },
  },
  {
    name: "GetMedia of an unknown id: 404",
    method: "GET",
    path: `/v1/media/${NOBODY}`,
    headers: as("a"),
    expect: { status: 404, json: notFound },
  },
  {
    name: "GetMedia of a pending (unconfirmed) item: 404",
    method: "GET",
    path: (c) => `/v1/media/${captured(c, "mediaId")}`,
    headers: as("a"),
    expect: { status: 404, json: notFound },
  },
  {
    name: "GetMedia with a path variable that is not a UUID: 400 with a field violation on media_id",
    method: "GET",
    path: "/v1/media/not-a-uuid",
    headers: as("a"),
    expect: { status: 400, json: status(3, anyString, fieldViolation("media_id")) },
  },
  {
    name: "BatchGetMedia (repeated media_ids): a map of ready items; pending and unknown ids absent",
    method: "GET",
    path: (c) => `/v1/media:batchGet?media_ids=${captured(c, "mediaId")}&media_ids=${NOBODY}`,
    headers: as("b"),
    expect: { status: 200, json: { media: empty } },
  },
  {
    name: "media route without a token: 401 from jwt_authn",
    method: "POST",
    path: "/v1/media/uploads",
    headers: () => json,
    body: () => ({ contentType: "image/png", sizeBytes: "2048", purpose: "MEDIA_PURPOSE_POST" }),
    expect: { status: 401, json: unauthenticated("Jwt is missing") },
  },
  // A real upload: CreateUpload → the file POSTed to object storage → ConfirmUpload → use it as an avatar.
  createUpload(
    "CreateUpload of an avatar image",
    { contentType: "image/png", sizeBytes: String(PNG.length), purpose: "MEDIA_PURPOSE_AVATAR" },
    { status: 200, json: { mediaId: uuid, url: /^https?:\/\//, fields: (v: unknown) => typeof v === "object" && v !== null } },
    (body, c) => {
      const r = body as { mediaId: string; url: string; fields: Record<string, string> };
      c.captured.avatarMediaId = r.mediaId;
      c.uploads.avatar = { url: r.url, fields: r.fields };
    },
  ),
  {
    name: "ConfirmUpload after the file was POSTed to object storage: 200, the ready media item",
    before: uploadWith("avatar", PNG),
    method: "POST",
    path: (c) => `/v1/media/${captured(c, "avatarMediaId")}:confirm`,
    headers: as("a"),
    body: () => ({}),
    expect: {
      status: 200,
      jsonFor: (c) => ({
        media: {
          mediaId: captured(c, "avatarMediaId"),
          ownerId: idOf(c, "a"),
          purpose: "MEDIA_PURPOSE_AVATAR",
          // Sniffed from the bytes; int64 is a JSON string.
          contentType: "image/png",
          sizeBytes: String(PNG.length),
          url: /^https?:\/\//,
          createdAt: anyString,
        },
      }),
    },
  },
  {
    name: "GetMedia of a ready item (by another signed-in user): 200 with a read URL",
    method: "GET",
    path: (c) => `/v1/media/${captured(c, "avatarMediaId")}`,
    headers: as("b"),
    expect: { status: 200, jsonFor: (c) => ({ media: { mediaId: captured(c, "avatarMediaId"), ownerId: idOf(c, "a"), contentType: "image/png", url: /^https?:\/\// } }) },
  },
  {
    name: "UpdateProfile with one's own confirmed avatar image: 200, the profile names it",
    method: "PATCH",
    path: "/v1/users/me",
    headers: as("a"),
    body: (c) => ({ avatarMediaId: captured(c, "avatarMediaId") }),
    expect: { status: 200, jsonFor: (c) => ({ profile: { userId: idOf(c, "a"), avatarMediaId: captured(c, "avatarMediaId") } }) },
  },
  {
    name: "UpdateProfile with another user's media as avatar: 400 with a field violation on avatar_media_id",
    method: "PATCH",
    path: "/v1/users/me",
    headers: as("b"),
    body: (c) => ({ avatarMediaId: captured(c, "avatarMediaId") }),
    expect: { status: 400, json: status(3, anyString, fieldViolation("avatar_media_id")) },
  },
  getProfile("c", "b", "the rejected avatar changed nothing", { status: 200, json: { profile: { avatarMediaId: absent } } }),
];

// --- every annotated PostService, FeedService and BffService RPC, and their errors ---------------
// State from the user rows: c follows b (and nobody follows c); a and b no
// longer follow each other (the block ended it). So b's posts reach c's feed.
/** Every post in the table is b's. */
const createPost = (name: string, body: (c: RestContext) => unknown, expect: RestCase["expect"], capture?: RestCase["capture"]): RestCase => ({
  name,
  method: "POST",
  path: "/v1/posts",
  headers: as("b"),
  body,
  expect,
  ...(capture ? { capture } : {}),
});
const postPath = (suffix = "") => (c: RestContext) => `/v1/posts/${captured(c, "postId")}${suffix}`;
/** A feed or home answer holding (or not) the captured post, by b. */
const feedHolds = (present: boolean) => (c: RestContext) => (items: unknown) => {
  const list = Array.isArray(items) ? (items as Array<{ post?: { postId?: string }; author?: { userId?: string } }>) : [];
  const hit = list.find((item) => item.post?.postId === c.captured.postId);
  return present ? hit !== undefined && hit.author?.userId === idOf(c, "b") : items === undefined || hit === undefined;
};

const postCases: RestCase[] = [
  createPost(
    "CreatePost: text with a mention and a hashtag, parsed",
    (c) => ({ text: `hello @${usernameOf(c, "a").toUpperCase()} and #Aviary` }),
    {
      status: 200,
      jsonFor: (c) => ({
        post: { postId: uuid, authorId: idOf(c, "b"), text: anyString, mentions: [usernameOf(c, "a")], hashtags: ["aviary"], likeCount: absent, createdAt: anyString },
      }),
    },
    (body, c) => {
      c.captured.postId = (body as { post: { postId: string } }).post.postId;
    },
  ),
  createPost("CreatePost with no text and no media: 400 with a field violation on text", () => ({ text: "   " }), {
    status: 400,
    json: status(3, anyString, fieldViolation("text")),
  }),
  createPost("CreatePost with 501 characters: 400 with a field violation on text", () => ({ text: "x".repeat(501) }), {
    status: 400,
    json: status(3, anyString, fieldViolation("text")),
  }),
  createPost("CreatePost with five media ids: 400 with a field violation on media_ids", () => ({ text: "hi", mediaIds: [1, 2, 3, 4, 5].map((i) => `00000000-0000-4000-8000-00000000000${i}`) }), {
    status: 400,
    json: status(3, anyString, fieldViolation("media_ids")),
  }),
  createPost("CreatePost with someone else's (unconfirmed) media: 400 with a field violation on media_ids", (c) => ({ text: "hi", mediaIds: [captured(c, "mediaId")] }), {
    status: 400,
    json: status(3, anyString, fieldViolation("media_ids")),
  }),
  createPost("CreatePost replying to an unknown post: 400 with a field violation on reply_to_post_id", () => ({ text: "hi", replyToPostId: NOBODY }), {
    status: 400,
    json: status(3, anyString, fieldViolation("reply_to_post_id")),
  }),
  {
    name: "GetPost",
    method: "GET",
    path: postPath(),
    headers: as("c"),
    expect: { status: 200, jsonFor: (c) => ({ post: { postId: captured(c, "postId"), authorId: idOf(c, "b"), likedByViewer: absent } }) },
  },
  {
    name: "GetPost with a path variable that is not a UUID: 400 with a field violation on post_id",
    method: "GET",
    path: "/v1/posts/not-a-uuid",
    headers: as("c"),
    expect: { status: 400, json: status(3, anyString, fieldViolation("post_id")) },
  },
  {
    name: "ListPostsByAuthor (GET /v1/users/{author_id}/posts)",
    method: "GET",
    path: (c) => `/v1/users/${idOf(c, "b")}/posts?page_size=10`,
    headers: as("c"),
    expect: { status: 200, jsonFor: (c) => ({ posts: [{ postId: captured(c, "postId") }], nextPageToken: absent }) },
  },
  {
    name: "SearchPosts by hashtag, best match (GET /v1/posts:search): the post is found",
    method: "GET",
    path: "/v1/posts:search?query=%23Aviary&order=SEARCH_ORDER_BEST_MATCH&page_size=100",
    headers: as("c"),
    expect: { status: 200, jsonFor: (c) => ({ posts: (v: unknown) => Array.isArray(v) && v.some((p) => (p as { postId?: unknown }).postId === captured(c, "postId")) }) },
  },
  {
    name: "SearchPosts with a lone #: 400 with a field violation on query",
    method: "GET",
    path: "/v1/posts:search?query=%23",
    headers: as("c"),
    expect: { status: 400, json: status(3, anyString, fieldViolation("query")) },
  },
  {
    name: "BatchGetPosts (repeated post_ids): a map of visible posts; unknown ids absent",
    method: "GET",
    path: (c) => `/v1/posts:batchGet?post_ids=${captured(c, "postId")}&post_ids=${NOBODY}`,
    headers: as("c"),
    expect: { status: 200, jsonFor: (c) => ({ posts: (v: unknown) => typeof v === "object" && v !== null && Object.keys(v).join() === captured(c, "postId") }) },
  },
  ...[1, 2].map(
    (attempt): RestCase => ({
      name: attempt === 1 ? "LikePost" : "LikePost again: idempotent, still one like",
      method: "POST",
      path: postPath(":like"),
      headers: as("c"),
      body: () => ({}),
      expect: { status: 200, json: { likeCount: "1" } },
    }),
  ),
  {
    name: "GetPost after the like: the count and liked_by_viewer",
    method: "GET",
    path: postPath(),
    headers: as("c"),
    expect: { status: 200, json: { post: { likeCount: "1", likedByViewer: true } } },
  },
  {
    name: "UnlikePost",
    method: "POST",
    path: postPath(":unlike"),
    headers: as("c"),
    body: () => ({}),
    expect: { status: 200, json: { likeCount: absent } },
  },
  {
    name: "CreateComment",
    method: "POST",
    path: postPath("/comments"),
    headers: as("c"),
    body: () => ({ text: "nice one" }),
    expect: { status: 200, jsonFor: (c) => ({ comment: { commentId: uuid, postId: captured(c, "postId"), authorId: idOf(c, "c"), text: "nice one" } }) },
    capture: (body, c) => {
      c.captured.commentId = (body as { comment: { commentId: string } }).comment.commentId;
    },
  },
  {
    name: "CreateComment without text: 400 with a field violation on text",
    method: "POST",
    path: postPath("/comments"),
    headers: as("c"),
    body: () => ({}),
    expect: { status: 400, json: status(3, anyString, fieldViolation("text")) },
  },
  {
    name: "ListComments",
    method: "GET",
    path: postPath("/comments"),
    headers: as("b"),
    expect: { status: 200, jsonFor: (c) => ({ comments: [{ commentId: captured(c, "commentId"), text: "nice one" }] }) },
  },
  {
    name: "DeleteComment by someone else (the post's author): 403",
    method: "DELETE",
    path: (c) => `/v1/posts/${captured(c, "postId")}/comments/${captured(c, "commentId")}`,
    headers: as("b"),
    expect: { status: 403, json: status(7) },
  },
  {
    name: "DeleteComment by its author",
    method: "DELETE",
    path: (c) => `/v1/posts/${captured(c, "postId")}/comments/${captured(c, "commentId")}`,
    headers: as("c"),
    expect: { status: 200, json: {} },
  },
  {
    name: "DeletePost by someone else: 403",
    method: "DELETE",
    path: postPath(),
    headers: as("c"),
    expect: { status: 403, json: status(7) },
  },
  {
    name: "GetHomeFeed: a followee's post arrives through Kafka, hydrated with its author",
    method: "GET",
    path: "/v1/feed?page_size=10",
    headers: as("c"),
    eventuallyMs: 60_000,
    expect: { status: 200, jsonFor: (c) => ({ items: feedHolds(true)(c) }) },
  },
  {
    name: "GetHomeFeed with a tampered page_token: 400 with a field violation on page_token",
    method: "GET",
    path: "/v1/feed?page_token=bm90LWEtdG9rZW4",
    headers: as("c"),
    expect: { status: 400, json: status(3, anyString, fieldViolation("page_token")) },
  },
  {
    name: "GetHomeFeed without a token: 401 from jwt_authn",
    method: "GET",
    path: "/v1/feed",
    expect: { status: 401, json: unauthenticated("Jwt is missing") },
  },
  {
    name: "GetHome: the caller's profile, the first feed page and unread counts in one call",
    method: "GET",
    path: "/v1/home",
    headers: as("c"),
    expect: { status: 200, jsonFor: (c) => ({ profile: { userId: idOf(c, "c") }, feed: feedHolds(true)(c), unread: (v: unknown) => v !== undefined, errors: absent }) },
  },
  {
    name: "DeletePost by its author",
    method: "DELETE",
    path: postPath(),
    headers: as("b"),
    expect: { status: 200, json: {} },
  },
  {
    name: "DeletePost again: idempotent for the author",
    method: "DELETE",
    path: postPath(),
    headers: as("b"),
    expect: { status: 200, json: {} },
  },
  {
    name: "GetPost of a deleted post: 404",
    method: "GET",
    path: postPath(),
    headers: as("c"),
    expect: { status: 404, json: notFound },
  },
  {
    name: "LikePost on a deleted post: 404",
    method: "POST",
    path: postPath(":like"),
    headers: as("c"),
    body: () => ({}),
    expect: { status: 404, json: notFound },
  },
  {
    name: "GetHomeFeed after the deletion: the post is gone",
    method: "GET",
    path: "/v1/feed?page_size=10",
    headers: as("c"),
    eventuallyMs: 60_000,
    expect: { status: 200, jsonFor: (c) => ({ items: feedHolds(false)(c) }) },
  },
];

// Realtime: presence over REST (the stream itself is tested in tools/test/edge-realtime.test.ts,
// since a row here reads one whole answer). b hints away; c, who is not blocked, sees it.
const realtimeCases: RestCase[] = [
  {
    name: "SetPresence: the caller's device is away",
    method: "POST",
    path: "/v1/realtime/presence",
    headers: as("b"),
    body: () => ({ hint: "HINT_AWAY" }),
    expect: { status: 200, jsonFor: (c) => ({ presence: { userId: c.users.b!.userId, state: "PRESENCE_STATE_OFFLINE" } }) },
  },
  {
    name: "SetPresence with HINT_UNSPECIFIED: 400 with a field violation on hint, nothing written",
    method: "POST",
    path: "/v1/realtime/presence",
    headers: as("b"),
    body: () => ({ hint: "HINT_UNSPECIFIED" }),
    expect: { status: 400, json: status(3, anyString, fieldViolation("hint")) },
  },
  {
    name: "GetPresence: another user's state (offline: no live stream)",
    method: "GET",
    path: (c) => `/v1/realtime/presence?user_ids=${c.users.b!.userId}`,
    headers: as("c"),
    expect: { status: 200, jsonFor: (c) => ({ presences: [{ userId: c.users.b!.userId, state: "PRESENCE_STATE_OFFLINE" }] }) },
  },
  {
    name: "GetPresence with a malformed id: 400 with a field violation on user_ids",
    method: "GET",
    path: "/v1/realtime/presence?user_ids=bob",
    headers: as("c"),
    expect: { status: 400, json: status(3, anyString, fieldViolation("user_ids[0]")) },
  },
  {
    name: "GetPresence without a token: 401 from jwt_authn",
    method: "GET",
    path: "/v1/realtime/presence?user_ids=00000000-0000-4000-8000-000000000000",
    expect: { status: 401, json: unauthenticated("Jwt is missing") },
  },
  {
    name: "Subscribe with a malformed resume epoch: 400 as one JSON status",
    method: "GET",
    path: "/v1/realtime/stream?since.epoch=not%20valid&since.offset=1",
    headers: as("c"),
    // A refusal before the first frame is a trailers-only gRPC response, which the transcoder maps to the HTTP status.
    expect: { status: 400, json: status(3, anyString, fieldViolation("since.epoch")) },
  },
];

// --- every annotated NotificationService RPC, and its errors ------------------------------------
// d is a fresh user (no follows, no posts, no notifications before these rows).
// c likes d's post; the like reaches the notification service through Kafka
// (the post service's outbox, then the notification consumer), so the first
// row that expects it waits like the feed rows do.
const NOTIFICATION_WAIT_MS = 90_000;
/** Preferences as GetPreferences presents them: one entry per kind, in kind order; false is absent. */
const preferencesWith = (like: { inApp: boolean; push: boolean }): JsonMatcher => ({
  kinds: [
    { kind: "KIND_FOLLOW", inApp: true, push: true },
    { kind: "KIND_LIKE", inApp: like.inApp ? true : absent, push: like.push ? true : absent },
    { kind: "KIND_COMMENT", inApp: true, push: true },
    { kind: "KIND_REPLY", inApp: true, push: true },
    { kind: "KIND_MENTION", inApp: true, push: true },
    // Messages are push only: never listed, so in_app reads false.
    { kind: "KIND_MESSAGE", inApp: absent, push: true },
  ],
  onlyFromFollowing: absent,
});
/** d's one like group from c, read (unread absent) or not. */
const likeGroupOf = (c: RestContext, unread: boolean): JsonMatcher => ({
  groupId: uuid,
  kind: "KIND_LIKE",
  postId: captured(c, "likedPostId"),
  // int32 is a JSON number.
  notificationCount: 1,
  actorCount: 1,
  sampleActorIds: [idOf(c, "c")],
  sampleActors: [{ userId: idOf(c, "c") }],
  latestAt: anyString,
  unread: unread ? true : absent,
});
const listNotifications = (name: string, query: string, expect: RestCase["expect"], extra: Partial<RestCase> = {}): RestCase => ({
  name,
  method: "GET",
  path: `/v1/notifications${query}`,
  headers: as("d"),
  expect,
  ...extra,
});
const markSeen = (name: string, who: Who, body: (c: RestContext) => unknown, expect: RestCase["expect"]): RestCase => ({
  name,
  method: "POST",
  path: "/v1/notifications/seen",
  headers: as(who),
  body,
  expect,
});
const updatePreferences = (name: string, body: (c: RestContext) => unknown, expect: RestCase["expect"]): RestCase => ({
  name,
  method: "PATCH",
  path: "/v1/notifications/preferences",
  headers: as("d"),
  body,
  expect,
});

const notificationCases: RestCase[] = [
  {
    name: "Register d",
    method: "POST",
    path: "/v1/auth/register",
    headers: () => json,
    body: (c) => ({ email: email(c, "d"), password: c.password }),
    expect: { status: 200, json: { userId: uuid } },
  },
  loginRow("d", "d", "phone"),
  getProfile("d", "d", "GetProfile of oneself for d", { status: 200, jsonFor: (c) => ({ profile: { userId: idOf(c, "d") } }) }),
  listNotifications("ListNotifications for a new user: 200, no groups, nothing unread, no next page", "", {
    status: 200,
    json: { groups: absent, unreadCount: absent, nextPageToken: absent },
  }),
  {
    name: "GetUnreadCount for a new user: 0 (absent in JSON)",
    method: "GET",
    path: "/v1/notifications/unread-count",
    headers: as("d"),
    expect: { status: 200, json: { unreadCount: absent } },
  },
  {
    name: "GetPreferences for a new user: the defaults (everything on, from anyone; messages push only)",
    method: "GET",
    path: "/v1/notifications/preferences",
    headers: as("d"),
    expect: { status: 200, json: { preferences: preferencesWith({ inApp: true, push: true }) } },
  },
  {
    name: "CreatePost by d (for the notification rows)",
    method: "POST",
    path: "/v1/posts",
    headers: as("d"),
    body: () => ({ text: "like this one" }),
    expect: { status: 200, jsonFor: (c) => ({ post: { postId: uuid, authorId: idOf(c, "d") } }) },
    capture: (body, c) => {
      c.captured.likedPostId = (body as { post: { postId: string } }).post.postId;
    },
  },
  {
    name: "LikePost by c on d's post",
    method: "POST",
    path: (c) => `/v1/posts/${captured(c, "likedPostId")}:like`,
    headers: as("c"),
    body: () => ({}),
    expect: { status: 200, json: { likeCount: "1" } },
  },
  listNotifications(
    "ListNotifications: c's like arrives (through Kafka) as one unread KIND_LIKE group, c's profile hydrated; unread_count 1",
    "",
    { status: 200, jsonFor: (c) => ({ groups: [likeGroupOf(c, true)], unreadCount: "1", nextPageToken: absent }) },
    {
      eventuallyMs: NOTIFICATION_WAIT_MS,
      capture: (body, c) => {
        c.captured.notificationGroupId = (body as { groups: Array<{ groupId: string }> }).groups[0]!.groupId;
      },
    },
  ),
  listNotifications("ListNotifications?kinds=KIND_LIKE: the same group", "?kinds=KIND_LIKE&page_size=10", {
    status: 200,
    jsonFor: (c) => ({ groups: [{ ...(likeGroupOf(c, true) as object), groupId: captured(c, "notificationGroupId") }], unreadCount: "1" }),
  }),
  listNotifications("ListNotifications?kinds=KIND_FOLLOW: none, and nothing unread under that filter", "?kinds=KIND_FOLLOW", {
    status: 200,
    json: { groups: absent, unreadCount: absent },
  }),
  listNotifications("ListNotifications?kinds=KIND_UNSPECIFIED: 400 with a field violation on kinds[0]", "?kinds=KIND_UNSPECIFIED", {
    status: 400,
    json: status(3, anyString, fieldViolation("kinds[0]")),
  }),
  listNotifications("ListNotifications with a malformed page_token: 400 with a field violation on page_token", "?page_token=bm90LWEtdG9rZW4", {
    status: 400,
    json: status(3, anyString, fieldViolation("page_token")),
  }),
  listNotifications("ListNotifications with page_size=-1: 400 with a field violation on page_size", "?page_size=-1", {
    status: 400,
    json: status(3, anyString, fieldViolation("page_size")),
  }),
  {
    name: "GetUnreadCount: 1 (int64 as a JSON string)",
    method: "GET",
    path: "/v1/notifications/unread-count",
    headers: as("d"),
    expect: { status: 200, json: { unreadCount: "1" } },
  },
  {
    name: "GetUnreadCount?kinds=KIND_FOLLOW: 0 under that filter",
    method: "GET",
    path: "/v1/notifications/unread-count?kinds=KIND_FOLLOW",
    headers: as("d"),
    expect: { status: 200, json: { unreadCount: absent } },
  },
  {
    name: "GetHome: the unread section comes from the notification and chat services (as the caller); no conversation yet, chats 0",
    method: "GET",
    path: "/v1/home",
    headers: as("d"),
    expect: { status: 200, jsonFor: (c) => ({ profile: { userId: idOf(c, "d") }, unread: { notifications: "1", chats: absent }, errors: absent }) },
  },
  markSeen("MarkSeen with an empty body: 400 naming up_to (one of group_id, time is required)", "d", () => ({}), {
    status: 400,
    json: status(3, anyString, fieldViolation("up_to")),
  }),
  markSeen("MarkSeen with a group_id that is not a UUID: 400 with a field violation on group_id", "d", () => ({ groupId: "not-a-uuid" }), {
    status: 400,
    json: status(3, anyString, fieldViolation("group_id")),
  }),
  markSeen("MarkSeen up to an unknown group: 404", "d", () => ({ groupId: crypto.randomUUID() }), { status: 404, json: notFound }),
  markSeen("MarkSeen up to another user's group: 404 (the same as an unknown one)", "c", (c) => ({ groupId: captured(c, "notificationGroupId") }), {
    status: 404,
    json: notFound,
  }),
  {
    name: "GetUnreadCount after the rejected MarkSeen calls: still 1 (nothing written)",
    method: "GET",
    path: "/v1/notifications/unread-count",
    headers: as("d"),
    expect: { status: 200, json: { unreadCount: "1" } },
  },
  markSeen("MarkSeen up to now (time): 200, advanced, nothing unread", "d", () => ({ time: new Date().toISOString() }), {
    status: 200,
    json: { advanced: true, unreadCount: absent },
  }),
  markSeen("MarkSeen up to the group already seen: 200, not advanced (the watermark never moves back)", "d", (c) => ({ groupId: captured(c, "notificationGroupId") }), {
    status: 200,
    json: { advanced: absent, unreadCount: absent },
  }),
  listNotifications("ListNotifications after MarkSeen: the group is read, unread_count 0", "", {
    status: 200,
    jsonFor: (c) => ({ groups: [likeGroupOf(c, false)], unreadCount: absent }),
  }),
  updatePreferences("UpdatePreferences (PATCH): likes off in-app, still pushed; every other kind unchanged", () => ({ kinds: [{ kind: "KIND_LIKE", inApp: false, push: true }] }), {
    status: 200,
    json: { preferences: preferencesWith({ inApp: false, push: true }) },
  }),
  listNotifications("ListNotifications with likes off in-app: the like group is no longer listed", "", {
    status: 200,
    json: { groups: absent, unreadCount: absent },
  }),
  updatePreferences(
    "UpdatePreferences with a kind listed twice: 400 with a field violation on kinds[1].kind",
    () => ({ kinds: [{ kind: "KIND_FOLLOW", inApp: false }, { kind: "KIND_FOLLOW", push: false }] }),
    { status: 400, json: status(3, anyString, fieldViolation("kinds[1].kind")) },
  ),
  updatePreferences("UpdatePreferences with KIND_UNSPECIFIED: 400 with a field violation on kinds[0].kind", () => ({ kinds: [{ kind: "KIND_UNSPECIFIED", inApp: false }] }), {
    status: 400,
    json: status(3, anyString, fieldViolation("kinds[0].kind")),
  }),
  {
    name: "GetPreferences: only the accepted change (the rejected ones wrote nothing)",
    method: "GET",
    path: "/v1/notifications/preferences",
    headers: as("d"),
    expect: { status: 200, json: { preferences: preferencesWith({ inApp: false, push: true }) } },
  },
  {
    name: "ListNotifications without a token: 401 from jwt_authn",
    method: "GET",
    path: "/v1/notifications",
    expect: { status: 401, json: unauthenticated("Jwt is missing") },
  },
  {
    name: "UpdatePreferences without a token: 401 from jwt_authn",
    method: "PATCH",
    path: "/v1/notifications/preferences",
    headers: () => json,
    body: () => ({ kinds: [{ kind: "KIND_LIKE", inApp: false }] }),
    expect: { status: 401, json: unauthenticated("Jwt is missing") },
  },
];

// --- every annotated ChatService RPC, and its errors ------------------------------------------------
// c writes to d directly (the direct conversation starts with the first
// message), d answers, c creates a group with d; a is in neither, and a
// conversation a is not in answers exactly like one that does not exist.
const chatMessage = (who: Who, seq: string, text: string): ((c: RestContext) => JsonMatcher) => (c) => ({
  conversationId: uuid,
  seq,
  messageId: uuid,
  senderId: idOf(c, who),
  clientMessageId: uuid,
  text,
  createdAt: anyString,
});
/** Exactly these members (any order), with these roles. */
const membersOf = (c: RestContext, roles: Partial<Record<Who, string>>) => (v: unknown) =>
  Array.isArray(v) &&
  v.length === Object.keys(roles).length &&
  Object.entries(roles).every(([who, role]) => v.some((m) => (m as { userId?: unknown }).userId === idOf(c, who as Who) && (m as { role?: unknown }).role === role));
const sendMessage = (name: string, who: Who, body: (c: RestContext) => unknown, expect: RestCase["expect"], extra: Partial<RestCase> = {}): RestCase => ({
  name,
  method: "POST",
  path: "/v1/messages",
  headers: as(who),
  body,
  expect,
  ...extra,
});
const chatConversation = (c: RestContext) => captured(c, "chatConversationId");
const chatGroup = (c: RestContext) => captured(c, "chatGroupId");

// --- moderation and roles: reports are for everyone; the rest needs the moderator or admin role, and the edge
// refuses tokens without it (403, RBAC on the verified `roles` claim) before any service sees the call.
// The table's users hold no roles, so only the refusals and reporting run here; moderator calls are covered
// behind a real Envoy by services/moderation/test/edge.test.ts.
const someId = "0190a9b0-0000-7000-8000-000000000001";
const refusedToUsers: Array<{ name: string; method: RestCase["method"]; path: (c: RestContext) => string; body?: () => unknown }> = [
  { name: "ListReports", method: "GET", path: () => "/v1/moderation/reports" },
  { name: "ResolveReport", method: "POST", path: () => `/v1/moderation/reports/${someId}:resolve`, body: () => ({ action: "RESOLUTION_ACTION_DISMISS" }) },
  { name: "SuspendUser", method: "POST", path: (c) => `/v1/moderation/users/${idOf(c, "b")}:suspend`, body: () => ({ reason: "spam" }) },
  { name: "UnsuspendUser", method: "POST", path: (c) => `/v1/moderation/users/${idOf(c, "b")}:unsuspend`, body: () => ({ reason: "appeal" }) },
  { name: "GetSuspension", method: "GET", path: (c) => `/v1/moderation/users/${idOf(c, "b")}/suspension` },
  { name: "RemoveContent", method: "POST", path: () => "/v1/moderation/content:remove", body: () => ({ target: { postId: someId }, reason: "spam" }) },
  { name: "RestoreContent", method: "POST", path: () => "/v1/moderation/content:restore", body: () => ({ target: { postId: someId }, reason: "appeal" }) },
  { name: "GrantRole", method: "POST", path: (c) => `/v1/users/${idOf(c, "c")}/roles`, body: () => ({ role: "ROLE_ADMIN" }) },
  { name: "RevokeRole", method: "DELETE", path: (c) => `/v1/users/${idOf(c, "c")}/roles/ROLE_MODERATOR` },
  { name: "ListUserRoles", method: "GET", path: (c) => `/v1/users/${idOf(c, "c")}/roles` },
  // The audit log: admins only (services/audit/test/audit.test.ts calls it as one).
  { name: "ListAuditEntries", method: "GET", path: (c) => `/v1/audit/entries?actor_id=${idOf(c, "a")}` },
  { name: "VerifyChain", method: "POST", path: () => "/v1/audit:verify", body: () => ({}) },
];

const moderationCases: RestCase[] = [
  {
    name: "CreateReport of a post",
    method: "POST",
    path: "/v1/reports",
    headers: as("b"),
    body: (c) => ({ target: { postId: captured(c, "postId") }, reason: "REPORT_REASON_SPAM", note: "link farm" }),
    expect: {
      status: 200,
      jsonFor: (c) => ({ report: { reportId: uuid, reporterId: idOf(c, "b"), target: { postId: captured(c, "postId") }, reason: "REPORT_REASON_SPAM", status: "REPORT_STATUS_OPEN" }, created: true }),
    },
  },
  {
    name: "CreateReport again while it is open: the open report, created false",
    method: "POST",
    path: "/v1/reports",
    headers: as("b"),
    body: (c) => ({ target: { postId: captured(c, "postId") }, reason: "REPORT_REASON_HATE" }),
    expect: { status: 200, jsonFor: (c) => ({ report: { reporterId: idOf(c, "b"), reason: "REPORT_REASON_SPAM" }, created: absent }) },
  },
  {
    name: "CreateReport with a bad target and no reason: 400 naming both",
    method: "POST",
    path: "/v1/reports",
    headers: as("b"),
    body: () => ({ target: { userId: "ben" } }),
    expect: {
      status: 400,
      json: status(3, anyString, [
        {
          "@type": "type.googleapis.com/google.rpc.BadRequest",
          fieldViolations: (v: unknown) => Array.isArray(v) && ["target.user_id", "reason"].every((field) => v.some((f) => (f as { field?: unknown }).field === field)),
        },
      ]),
    },
  },
  {
    name: "CreateReport without a token: 401",
    method: "POST",
    path: "/v1/reports",
    body: () => ({ target: { userId: someId }, reason: "REPORT_REASON_SPAM" }),
    expect: { status: 401, json: unauthenticated() },
  },
  ...refusedToUsers.map(
    (row): RestCase => ({
      name: `${row.name} by a user without the role: 403 at the edge`,
      method: row.method,
      path: row.path,
      headers: as("a"),
      ...(row.body === undefined ? {} : { body: row.body }),
      expect: { status: 403, json: status(7) },
    }),
  ),
];

const chatCases: RestCase[] = [
  sendMessage(
    "SendMessage to a user (direct_user_id): 200, the direct conversation starts at seq 1, created",
    "c",
    (c) => ({ directUserId: idOf(c, "d"), clientMessageId: captured(c, "chatClientMessageId"), text: "hi d" }),
    { status: 200, jsonFor: (c) => ({ message: chatMessage("c", "1", "hi d")(c), created: true }) },
    {
      before: async (c) => {
        c.captured.chatClientMessageId = crypto.randomUUID();
      },
      capture: (body, c) => {
        const { message } = body as { message: { conversationId: string; messageId: string } };
        c.captured.chatConversationId = message.conversationId;
        c.captured.chatMessageId = message.messageId;
      },
    },
  ),
  sendMessage(
    "SendMessage retried with the same client_message_id: 200, the original message, created false (absent)",
    "c",
    (c) => ({ directUserId: idOf(c, "d"), clientMessageId: captured(c, "chatClientMessageId"), text: "hi d" }),
    {
      status: 200,
      jsonFor: (c) => ({
        message: { ...(chatMessage("c", "1", "hi d")(c) as object), conversationId: chatConversation(c), messageId: captured(c, "chatMessageId"), clientMessageId: captured(c, "chatClientMessageId") },
        created: absent,
      }),
    },
  ),
  sendMessage("SendMessage by d into the conversation (conversation_id): seq 2", "d", (c) => ({ conversationId: chatConversation(c), clientMessageId: crypto.randomUUID(), text: "hello back" }), {
    status: 200,
    jsonFor: (c) => ({ message: { ...(chatMessage("d", "2", "hello back")(c) as object), conversationId: chatConversation(c) }, created: true }),
  }),
  {
    name: "ListConversations for c: the direct conversation, d's answer unread (unread_count 1), the last message",
    method: "GET",
    path: "/v1/conversations",
    headers: as("c"),
    expect: {
      status: 200,
      jsonFor: (c) => ({
        conversations: [
          {
            conversationId: chatConversation(c),
            kind: "CONVERSATION_KIND_DIRECT",
            title: absent,
            members: membersOf(c, { c: "MEMBER_ROLE_MEMBER", d: "MEMBER_ROLE_MEMBER" }),
            lastSeq: "2",
            unreadCount: "1",
            lastMessage: { seq: "2", senderId: idOf(c, "d"), text: "hello back" },
            createdAt: anyString,
            lastActivityAt: anyString,
          },
        ],
        nextPageToken: absent,
      }),
    },
  },
  {
    name: "ListConversations for d: their own send moved their watermark (nothing unread)",
    method: "GET",
    path: "/v1/conversations",
    headers: as("d"),
    expect: { status: 200, jsonFor: (c) => ({ conversations: [{ conversationId: chatConversation(c), lastSeq: "2", unreadCount: absent }] }) },
  },
  {
    name: "GetUnreadCount (chat) for c: one conversation, one message unread (int64 as JSON strings)",
    method: "GET",
    path: "/v1/chat/unread-count",
    headers: as("c"),
    expect: { status: 200, json: { unreadConversations: "1", unreadMessages: "1" } },
  },
  {
    name: "GetUnreadCount (chat) for d: nothing unread (zero values absent)",
    method: "GET",
    path: "/v1/chat/unread-count",
    headers: as("d"),
    expect: { status: 200, json: { unreadConversations: absent, unreadMessages: absent } },
  },
  {
    name: "GetUnreadCount (chat) without a token: 401 at the edge",
    method: "GET",
    path: "/v1/chat/unread-count",
    expect: { status: 401, json: unauthenticated("Jwt is missing") },
  },
  {
    name: "GetConversation for d: the same conversation",
    method: "GET",
    path: (c) => `/v1/conversations/${chatConversation(c)}`,
    headers: as("d"),
    expect: { status: 200, jsonFor: (c) => ({ conversation: { conversationId: chatConversation(c), kind: "CONVERSATION_KIND_DIRECT", lastSeq: "2" } }) },
  },
  {
    name: "ListMessages (DIRECTION_BEFORE, the default): newest first, no more",
    method: "GET",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages`,
    headers: as("c"),
    expect: { status: 200, jsonFor: (c) => ({ messages: [chatMessage("d", "2", "hello back")(c), chatMessage("c", "1", "hi d")(c)], hasMore: absent }) },
  },
  {
    name: "ListMessages BEFORE with page_size=1: the newest, has_more",
    method: "GET",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages?direction=DIRECTION_BEFORE&page_size=1`,
    headers: as("c"),
    expect: { status: 200, json: { messages: [{ seq: "2" }], hasMore: true } },
  },
  {
    name: "ListMessages BEFORE anchor_seq=2: the older one",
    method: "GET",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages?direction=DIRECTION_BEFORE&anchor_seq=2`,
    headers: as("c"),
    expect: { status: 200, json: { messages: [{ seq: "1", text: "hi d" }], hasMore: absent } },
  },
  {
    name: "ListMessages DIRECTION_AFTER from the start: oldest first",
    method: "GET",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages?direction=DIRECTION_AFTER`,
    headers: as("d"),
    expect: { status: 200, json: { messages: [{ seq: "1" }, { seq: "2" }], hasMore: absent } },
  },
  {
    name: "ListMessages AFTER anchor_seq=1: only the newer one",
    method: "GET",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages?direction=DIRECTION_AFTER&anchor_seq=1`,
    headers: as("d"),
    expect: { status: 200, json: { messages: [{ seq: "2", text: "hello back" }], hasMore: absent } },
  },
  {
    name: "MarkRead by c up to seq 2: read and delivered move, nothing unread",
    method: "POST",
    path: (c) => `/v1/conversations/${chatConversation(c)}:markRead`,
    headers: as("c"),
    body: () => ({ readSeq: "2" }),
    expect: { status: 200, jsonFor: (c) => ({ member: { userId: idOf(c, "c"), readSeq: "2", deliveredSeq: "2" }, unreadCount: absent }) },
  },
  {
    name: "MarkRead back to seq 1 and past the newest: the watermark never moves back nor beyond the last message",
    method: "POST",
    path: (c) => `/v1/conversations/${chatConversation(c)}:markRead`,
    headers: as("c"),
    body: () => ({ readSeq: "1", deliveredSeq: "99" }),
    expect: { status: 200, jsonFor: (c) => ({ member: { userId: idOf(c, "c"), readSeq: "2", deliveredSeq: "2" }, unreadCount: absent }) },
  },
  {
    name: "ListConversations for c after MarkRead: unread_count 0 (absent)",
    method: "GET",
    path: "/v1/conversations",
    headers: as("c"),
    expect: { status: 200, jsonFor: (c) => ({ conversations: [{ conversationId: chatConversation(c), unreadCount: absent }] }) },
  },
  {
    name: "SetTyping by d: 200 with how long the indicator lasts",
    method: "POST",
    path: (c) => `/v1/conversations/${chatConversation(c)}:typing`,
    headers: as("d"),
    body: () => ({}),
    expect: { status: 200, json: { expiresInSeconds: (v) => typeof v === "number" && v > 0 } },
  },
  {
    name: "CreateGroup by c with d: c owner, d member, entry 1 records the creation",
    method: "POST",
    path: "/v1/conversations",
    headers: as("c"),
    body: (c) => ({ title: "Weekend", memberIds: [idOf(c, "d")] }),
    expect: {
      status: 200,
      jsonFor: (c) => ({
        conversation: {
          conversationId: uuid,
          kind: "CONVERSATION_KIND_GROUP",
          title: "Weekend",
          members: membersOf(c, { c: "MEMBER_ROLE_OWNER", d: "MEMBER_ROLE_MEMBER" }),
          lastSeq: "1",
          unreadCount: absent,
          lastMessage: { seq: "1", text: absent, membership: { actorId: idOf(c, "c"), addedUserIds: (v: unknown) => Array.isArray(v) && v.length === 2 } },
        },
      }),
    },
    capture: (body, c) => {
      c.captured.chatGroupId = (body as { conversation: { conversationId: string } }).conversation.conversationId;
    },
  },
  sendMessage("SendMessage by d into the group: seq 2", "d", (c) => ({ conversationId: chatGroup(c), clientMessageId: crypto.randomUUID(), text: "dinner at 8?" }), {
    status: 200,
    jsonFor: (c) => ({ message: { ...(chatMessage("d", "2", "dinner at 8?")(c) as object), conversationId: chatGroup(c) }, created: true }),
  }),
  {
    name: "ListConversations for c: most recent activity first, the group's message unread (the creation entry never counts)",
    method: "GET",
    path: "/v1/conversations",
    headers: as("c"),
    expect: {
      status: 200,
      jsonFor: (c): JsonMatcher => ({
        conversations: [
          { conversationId: chatGroup(c), kind: "CONVERSATION_KIND_GROUP", unreadCount: "1", lastMessage: { text: "dinner at 8?" } },
          { conversationId: chatConversation(c), kind: "CONVERSATION_KIND_DIRECT", unreadCount: absent },
        ],
        nextPageToken: absent,
      }),
    },
  },
  {
    name: "GetUnreadCount (chat) for c: only the group's message (the direct conversation was read; the creation entry never counts)",
    method: "GET",
    path: "/v1/chat/unread-count",
    headers: as("c"),
    expect: { status: 200, json: { unreadConversations: "1", unreadMessages: "1" } },
  },
  {
    name: "GetHome for c: unread.chats is the chat service's unread_conversations",
    method: "GET",
    path: "/v1/home",
    headers: as("c"),
    expect: { status: 200, jsonFor: (c) => ({ profile: { userId: idOf(c, "c") }, unread: { chats: "1" }, errors: absent }) },
  },
  {
    name: "ListConversations for d with page_size=1: the group, and a next page token",
    method: "GET",
    path: "/v1/conversations?page_size=1",
    headers: as("d"),
    expect: { status: 200, jsonFor: (c) => ({ conversations: [{ conversationId: chatGroup(c) }], nextPageToken: anyString }) },
  },
  {
    name: "ListMessages of the group for d: the message, then the membership entry (no text)",
    method: "GET",
    path: (c) => `/v1/conversations/${chatGroup(c)}/messages`,
    headers: as("d"),
    expect: { status: 200, jsonFor: (c): JsonMatcher => ({ messages: [{ seq: "2", text: "dinner at 8?" }, { seq: "1", text: absent, membership: { actorId: idOf(c, "c") } }] }) },
  },
  // a is in neither conversation: each answers 404, the same as an id that never existed.
  {
    name: "GetConversation of a conversation a is not in: 404",
    method: "GET",
    path: (c) => `/v1/conversations/${chatConversation(c)}`,
    headers: as("a"),
    expect: { status: 404, json: status(5, "no such conversation") },
  },
  {
    name: "GetConversation of an id that never existed: the same 404",
    method: "GET",
    path: `/v1/conversations/${NOBODY}`,
    headers: as("a"),
    expect: { status: 404, json: status(5, "no such conversation") },
  },
  {
    name: "ListMessages of a group a is not in: 404",
    method: "GET",
    path: (c) => `/v1/conversations/${chatGroup(c)}/messages`,
    headers: as("a"),
    expect: { status: 404, json: status(5, "no such conversation") },
  },
  sendMessage("SendMessage by a into a conversation a is not in: 404", "a", (c) => ({ conversationId: chatConversation(c), clientMessageId: crypto.randomUUID(), text: "let me in" }), {
    status: 404,
    json: status(5, "no such conversation"),
  }),
  {
    name: "MarkRead by a: 404",
    method: "POST",
    path: (c) => `/v1/conversations/${chatGroup(c)}:markRead`,
    headers: as("a"),
    body: () => ({ readSeq: "1" }),
    expect: { status: 404, json: status(5, "no such conversation") },
  },
  {
    name: "SetTyping by a: 404",
    method: "POST",
    path: (c) => `/v1/conversations/${chatGroup(c)}:typing`,
    headers: as("a"),
    body: () => ({}),
    expect: { status: 404, json: status(5, "no such conversation") },
  },
  {
    name: "ListConversations for a: none",
    method: "GET",
    path: "/v1/conversations",
    headers: as("a"),
    expect: { status: 200, json: { conversations: absent, nextPageToken: absent } },
  },
  sendMessage("SendMessage to a user who does not exist: 404", "c", () => ({ directUserId: NOBODY, clientMessageId: crypto.randomUUID(), text: "anyone?" }), { status: 404, json: notFound }),
  // Bad input: 400 naming the field; nothing is written.
  sendMessage("SendMessage without client_message_id: 400 naming client_message_id", "c", (c) => ({ conversationId: chatConversation(c), text: "x" }), {
    status: 400,
    json: status(3, anyString, fieldViolation("client_message_id")),
  }),
  sendMessage("SendMessage with neither conversation_id nor direct_user_id: 400 naming target", "c", () => ({ clientMessageId: crypto.randomUUID(), text: "x" }), {
    status: 400,
    json: status(3, anyString, fieldViolation("target")),
  }),
  sendMessage("SendMessage with a blank text: 400 naming text", "c", (c) => ({ conversationId: chatConversation(c), clientMessageId: crypto.randomUUID(), text: "   " }), {
    status: 400,
    json: status(3, anyString, fieldViolation("text")),
  }),
  sendMessage("SendMessage with 4001 characters: 400 naming text", "c", (c) => ({ conversationId: chatConversation(c), clientMessageId: crypto.randomUUID(), text: "x".repeat(4001) }), {
    status: 400,
    json: status(3, anyString, fieldViolation("text")),
  }),
  sendMessage("SendMessage with a direct_user_id that is not a UUID: 400 naming direct_user_id", "c", () => ({ directUserId: "not-a-uuid", clientMessageId: crypto.randomUUID(), text: "x" }), {
    status: 400,
    json: status(3, anyString, fieldViolation("direct_user_id")),
  }),
  sendMessage("SendMessage to oneself: 400 naming direct_user_id", "c", (c) => ({ directUserId: idOf(c, "c"), clientMessageId: crypto.randomUUID(), text: "me" }), {
    status: 400,
    json: status(3, anyString, fieldViolation("direct_user_id")),
  }),
  {
    name: "CreateGroup without a title: 400 naming title",
    method: "POST",
    path: "/v1/conversations",
    headers: as("c"),
    body: (c) => ({ memberIds: [idOf(c, "d")] }),
    expect: { status: 400, json: status(3, anyString, fieldViolation("title")) },
  },
  {
    name: "CreateGroup with a member id that is not a UUID: 400 naming member_ids[0]",
    method: "POST",
    path: "/v1/conversations",
    headers: as("c"),
    body: () => ({ title: "Bad", memberIds: ["nope"] }),
    expect: { status: 400, json: status(3, anyString, fieldViolation("member_ids[0]")) },
  },
  {
    name: "GetConversation with an id that is not a UUID: 400 naming conversation_id",
    method: "GET",
    path: "/v1/conversations/not-a-uuid",
    headers: as("c"),
    expect: { status: 400, json: status(3, anyString, fieldViolation("conversation_id")) },
  },
  {
    name: "ListConversations with page_size=51: 400 naming page_size",
    method: "GET",
    path: "/v1/conversations?page_size=51",
    headers: as("c"),
    expect: { status: 400, json: status(3, anyString, fieldViolation("page_size")) },
  },
  {
    name: "ListConversations with a malformed page_token: 400 naming page_token",
    method: "GET",
    path: "/v1/conversations?page_token=bm90LWEtdG9rZW4",
    headers: as("c"),
    expect: { status: 400, json: status(3, anyString, fieldViolation("page_token")) },
  },
  {
    name: "ListMessages with page_size=101: 400 naming page_size",
    method: "GET",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages?page_size=101`,
    headers: as("c"),
    expect: { status: 400, json: status(3, anyString, fieldViolation("page_size")) },
  },
  {
    name: "ListMessages after the rejected sends: still two messages (nothing written)",
    method: "GET",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages`,
    headers: as("c"),
    expect: { status: 200, json: { messages: [{ seq: "2" }, { seq: "1" }] } },
  },
  // After the send: c edits and reacts to messages of the direct conversation, d deletes theirs (seq 2).
  {
    name: "EditMessage by c of their seq 1: 200, same seq, the new text, edited_at",
    method: "PATCH",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages/1`,
    headers: as("c"),
    body: () => ({ text: "hi d!" }),
    expect: { status: 200, jsonFor: (c) => ({ message: { seq: "1", senderId: idOf(c, "c"), text: "hi d!", editedAt: anyString, deletedAt: absent } }) },
  },
  {
    name: "EditMessage by d of c's message: 403",
    method: "PATCH",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages/1`,
    headers: as("d"),
    body: () => ({ text: "mine now" }),
    expect: { status: 403, json: status(7) },
  },
  {
    name: "EditMessage with a blank text: 400 naming text",
    method: "PATCH",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages/1`,
    headers: as("c"),
    body: () => ({ text: "   " }),
    expect: { status: 400, json: status(3, anyString, fieldViolation("text")) },
  },
  {
    name: "EditMessage of seq 0: 400 naming seq",
    method: "PATCH",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages/0`,
    headers: as("c"),
    body: () => ({ text: "x" }),
    expect: { status: 400, json: status(3, anyString, fieldViolation("seq")) },
  },
  {
    name: "EditMessage by a (not in the conversation): 404, as for any conversation a is not in",
    method: "PATCH",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages/1`,
    headers: as("a"),
    body: () => ({ text: "x" }),
    expect: { status: 404, json: status(5, "no such conversation") },
  },
  {
    name: "AddReaction by d to seq 1: 200, the counts with d's own",
    method: "POST",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages/1/reactions`,
    headers: as("d"),
    body: () => ({ reaction: "👍" }),
    expect: { status: 200, json: { message: { seq: "1", reactions: [{ reaction: "👍", count: 1, reacted: true }] } } },
  },
  {
    name: "AddReaction with a reaction outside the allowed set: 400 naming reaction",
    method: "POST",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages/1/reactions`,
    headers: as("d"),
    body: () => ({ reaction: "🦄" }),
    expect: { status: 400, json: status(3, anyString, fieldViolation("reaction")) },
  },
  {
    name: "AddReaction by a: 404",
    method: "POST",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages/1/reactions`,
    headers: as("a"),
    body: () => ({ reaction: "👍" }),
    expect: { status: 404, json: status(5, "no such conversation") },
  },
  {
    name: "ListMessages for c: seq 1 edited, with d's reaction (not c's: reacted absent)",
    method: "GET",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages`,
    headers: as("c"),
    expect: { status: 200, json: { messages: [{ seq: "2", reactions: absent }, { seq: "1", text: "hi d!", editedAt: anyString, reactions: [{ reaction: "👍", count: 1, reacted: absent }] }] } },
  },
  {
    name: "RemoveReaction by d (the emoji percent-encoded in the path): 200, no reactions left",
    method: "DELETE",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages/1/reactions/${encodeURIComponent("👍")}`,
    headers: as("d"),
    expect: { status: 200, json: { message: { seq: "1", reactions: absent } } },
  },
  {
    name: "RemoveReaction with a reaction outside the allowed set: 400 naming reaction",
    method: "DELETE",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages/1/reactions/heart`,
    headers: as("d"),
    expect: { status: 400, json: status(3, anyString, fieldViolation("reaction")) },
  },
  {
    name: "DeleteMessage by c of d's seq 2: 403",
    method: "DELETE",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages/2`,
    headers: as("c"),
    expect: { status: 403, json: status(7) },
  },
  {
    name: "DeleteMessage by d of their seq 2: 200, the tombstone (same seq, no text, deleted_at)",
    method: "DELETE",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages/2`,
    headers: as("d"),
    expect: { status: 200, jsonFor: (c) => ({ message: { seq: "2", senderId: idOf(c, "d"), text: absent, deletedAt: anyString } }) },
  },
  {
    name: "DeleteMessage again: 200, the same tombstone",
    method: "DELETE",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages/2`,
    headers: as("d"),
    expect: { status: 200, json: { message: { seq: "2", text: absent, deletedAt: anyString } } },
  },
  {
    name: "AddReaction to the deleted message: 400 FAILED_PRECONDITION",
    method: "POST",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages/2/reactions`,
    headers: as("c"),
    body: () => ({ reaction: "👍" }),
    expect: { status: 400, json: status(9) },
  },
  {
    name: "DeleteMessage of a seq with no message: 404",
    method: "DELETE",
    path: (c) => `/v1/conversations/${chatConversation(c)}/messages/99`,
    headers: as("d"),
    expect: { status: 404, json: status(5, "no such message") },
  },
  {
    name: "GetConversation for c: the last message is the tombstone",
    method: "GET",
    path: (c) => `/v1/conversations/${chatConversation(c)}`,
    headers: as("c"),
    expect: { status: 200, json: { conversation: { lastSeq: "2", lastMessage: { seq: "2", text: absent, deletedAt: anyString } } } },
  },
  sendMessage("SendMessage with an attachment that is no confirmed upload: 400 naming attachment_media_ids[0]", "c", (c) => ({ conversationId: chatConversation(c), clientMessageId: crypto.randomUUID(), text: "look", attachmentMediaIds: [NOBODY] }), {
    status: 400,
    json: status(3, anyString, fieldViolation("attachment_media_ids[0]")),
  }),
  sendMessage("SendMessage with an attachment id that is not a UUID: 400 naming attachment_media_ids[0]", "c", (c) => ({ conversationId: chatConversation(c), clientMessageId: crypto.randomUUID(), text: "look", attachmentMediaIds: ["nope"] }), {
    status: 400,
    json: status(3, anyString, fieldViolation("attachment_media_ids[0]")),
  }),
  {
    name: "CreateGroup with an avatar that is no confirmed upload: 400 naming avatar_media_id",
    method: "POST",
    path: "/v1/conversations",
    headers: as("c"),
    body: (c) => ({ title: "Faces", memberIds: [idOf(c, "d")], avatarMediaId: NOBODY }),
    expect: { status: 400, json: status(3, anyString, fieldViolation("avatar_media_id")) },
  },
  // Group changes after creation (the group is c's, with d): each one entry of its sequence.
  {
    name: "AddMembers by d (a plain member): 403",
    method: "POST",
    path: (c) => `/v1/conversations/${chatGroup(c)}/members`,
    headers: as("d"),
    body: (c) => ({ userIds: [idOf(c, "a")] }),
    expect: { status: 403, json: status(7) },
  },
  {
    name: "AddMembers by c (owner) of a: 200, entry 3 lists a as added",
    method: "POST",
    path: (c) => `/v1/conversations/${chatGroup(c)}/members`,
    headers: as("c"),
    body: (c) => ({ userIds: [idOf(c, "a")] }),
    expect: {
      status: 200,
      jsonFor: (c) => ({
        conversation: {
          conversationId: chatGroup(c),
          members: membersOf(c, { c: "MEMBER_ROLE_OWNER", d: "MEMBER_ROLE_MEMBER", a: "MEMBER_ROLE_MEMBER" }),
          lastSeq: "3",
          lastMessage: { seq: "3", membership: { actorId: idOf(c, "c"), addedUserIds: [idOf(c, "a")] } },
        },
      }),
    },
  },
  {
    name: "AddMembers of someone already in the group: 400 naming user_ids[0]",
    method: "POST",
    path: (c) => `/v1/conversations/${chatGroup(c)}/members`,
    headers: as("c"),
    body: (c) => ({ userIds: [idOf(c, "d")] }),
    expect: { status: 400, json: status(3, anyString, fieldViolation("user_ids[0]")) },
  },
  {
    name: "UpdateConversation by c: 200, renamed in entry 4",
    method: "PATCH",
    path: (c) => `/v1/conversations/${chatGroup(c)}`,
    headers: as("c"),
    body: () => ({ title: "Weekend plans" }),
    expect: { status: 200, jsonFor: (c) => ({ conversation: { conversationId: chatGroup(c), title: "Weekend plans", lastSeq: "4", lastMessage: { membership: { title: "Weekend plans" } } } }) },
  },
  {
    name: "UpdateConversation with a blank title: 400 naming title",
    method: "PATCH",
    path: (c) => `/v1/conversations/${chatGroup(c)}`,
    headers: as("c"),
    body: () => ({ title: "  " }),
    expect: { status: 400, json: status(3, anyString, fieldViolation("title")) },
  },
  {
    name: "SetMemberRole by c: d becomes an admin (entry 5)",
    method: "POST",
    path: (c) => `/v1/conversations/${chatGroup(c)}/members/${idOf(c, "d")}:setRole`,
    headers: as("c"),
    body: () => ({ role: "MEMBER_ROLE_ADMIN" }),
    expect: {
      status: 200,
      jsonFor: (c) => ({
        conversation: { members: membersOf(c, { c: "MEMBER_ROLE_OWNER", d: "MEMBER_ROLE_ADMIN", a: "MEMBER_ROLE_MEMBER" }), lastSeq: "5", lastMessage: { membership: { roleChanges: [{ userId: idOf(c, "d"), role: "MEMBER_ROLE_ADMIN" }] } } },
      }),
    },
  },
  {
    name: "SetMemberRole by d (an admin, not the owner): 403",
    method: "POST",
    path: (c) => `/v1/conversations/${chatGroup(c)}/members/${idOf(c, "a")}:setRole`,
    headers: as("d"),
    body: () => ({ role: "MEMBER_ROLE_ADMIN" }),
    expect: { status: 403, json: status(7) },
  },
  {
    name: "RemoveMember by d (admin) of the owner: 403",
    method: "DELETE",
    path: (c) => `/v1/conversations/${chatGroup(c)}/members/${idOf(c, "c")}`,
    headers: as("d"),
    expect: { status: 403, json: status(7) },
  },
  {
    name: "RemoveMember by d (admin) of a: 200, entry 6 lists a as removed",
    method: "DELETE",
    path: (c) => `/v1/conversations/${chatGroup(c)}/members/${idOf(c, "a")}`,
    headers: as("d"),
    expect: {
      status: 200,
      jsonFor: (c) => ({ conversation: { members: membersOf(c, { c: "MEMBER_ROLE_OWNER", d: "MEMBER_ROLE_ADMIN" }), lastSeq: "6", lastMessage: { membership: { removedUserIds: [idOf(c, "a")] } } } }),
    },
  },
  {
    name: "GetConversation by a after the removal: 404, as for any conversation a is not in",
    method: "GET",
    path: (c) => `/v1/conversations/${chatGroup(c)}`,
    headers: as("a"),
    expect: { status: 404, json: status(5, "no such conversation") },
  },
  {
    name: "LeaveConversation of the direct conversation: 400 FAILED_PRECONDITION",
    method: "POST",
    path: (c) => `/v1/conversations/${chatConversation(c)}:leave`,
    headers: as("c"),
    body: () => ({}),
    expect: { status: 400, json: status(9) },
  },
  {
    name: "LeaveConversation by d: 200, empty",
    method: "POST",
    path: (c) => `/v1/conversations/${chatGroup(c)}:leave`,
    headers: as("d"),
    body: () => ({}),
    expect: { status: 200, json: {} },
  },
  {
    name: "GetConversation by c after d left: c alone, entry 7",
    method: "GET",
    path: (c) => `/v1/conversations/${chatGroup(c)}`,
    headers: as("c"),
    expect: { status: 200, jsonFor: (c) => ({ conversation: { members: membersOf(c, { c: "MEMBER_ROLE_OWNER" }), lastSeq: "7", lastMessage: { membership: { removedUserIds: [idOf(c, "d")] } } } }) },
  },
  {
    name: "UpdateConversation by c: history visibility FULL, recorded in entry 8",
    method: "PATCH",
    path: (c) => `/v1/conversations/${chatGroup(c)}`,
    headers: as("c"),
    body: () => ({ historyVisibility: "HISTORY_VISIBILITY_FULL" }),
    expect: {
      status: 200,
      jsonFor: (c) => ({
        conversation: { conversationId: chatGroup(c), title: "Weekend plans", historyVisibility: "HISTORY_VISIBILITY_FULL", lastSeq: "8", lastMessage: { membership: { historyVisibility: "HISTORY_VISIBILITY_FULL" } } },
      }),
    },
  },
  {
    name: "UpdateConversation with nothing to change: 400 naming title",
    method: "PATCH",
    path: (c) => `/v1/conversations/${chatGroup(c)}`,
    headers: as("c"),
    body: () => ({}),
    expect: { status: 400, json: status(3, anyString, fieldViolation("title")) },
  },
  {
    name: "UpdateConversation with an avatar that is no confirmed upload: 400 naming avatar_media_id",
    method: "PATCH",
    path: (c) => `/v1/conversations/${chatGroup(c)}`,
    headers: as("c"),
    body: () => ({ avatarMediaId: NOBODY }),
    expect: { status: 400, json: status(3, anyString, fieldViolation("avatar_media_id")) },
  },
  // No token: refused at the edge.
  {
    name: "SendMessage without a token: 401 from jwt_authn",
    method: "POST",
    path: "/v1/messages",
    headers: () => json,
    body: () => ({ directUserId: NOBODY, clientMessageId: crypto.randomUUID(), text: "x" }),
    expect: { status: 401, json: unauthenticated("Jwt is missing") },
  },
  {
    name: "ListConversations without a token: 401 from jwt_authn",
    method: "GET",
    path: "/v1/conversations",
    expect: { status: 401, json: unauthenticated("Jwt is missing") },
  },
];

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

  // --- account deletion (user x): refused without fresh proof or for others, scheduled, cancelled ---
  {
    name: "Register x (to delete)",
    method: "POST",
    path: "/v1/auth/register",
    headers: () => json,
    body: (c) => ({ email: email(c, "x"), password: c.password }),
    expect: { status: 200, jsonFor: (c) => ({ userId: uuid, identity: email(c, "x") }) },
  },
  loginRow("x", "x", "doomed phone"),
  {
    name: "DeleteAccount without a token: 401 from jwt_authn",
    method: "POST",
    path: "/v1/auth/account:delete",
    headers: () => json,
    body: (c) => ({ password: c.password }),
    expect: { status: 401, json: unauthenticated("Jwt is missing") },
  },
  {
    name: "DeleteAccount with a wrong password: 400 on password, nothing scheduled",
    method: "POST",
    path: "/v1/auth/account:delete",
    headers: as("x"),
    body: () => ({ password: "not-the-password" }),
    expect: { status: 400, json: status(3, "invalid request", fieldViolation("password")) },
  },
  {
    name: "DeleteAccount without any proof: 400 on proof",
    method: "POST",
    path: "/v1/auth/account:delete",
    headers: as("x"),
    body: () => ({}),
    expect: { status: 400, json: status(3, "invalid request", fieldViolation("proof")) },
  },
  {
    name: "DeleteAccount with a code while two-factor is off: 400 on code",
    method: "POST",
    path: "/v1/auth/account:delete",
    headers: as("x"),
    body: () => ({ code: "123456" }),
    expect: { status: 400, json: status(3, "invalid request", fieldViolation("code")) },
  },
  {
    name: "GetAccountDeletion: nothing scheduled",
    method: "GET",
    path: "/v1/auth/account/deletion",
    headers: as("x"),
    expect: { status: 200, json: { deletion: absent } },
  },
  {
    name: "GetAccountDeletion of another account: 403",
    method: "GET",
    path: (c) => `/v1/auth/account/deletion?userId=${idOf(c, "a")}`,
    headers: as("x"),
    expect: { status: 403, json: status(7) },
  },
  {
    name: "GetAccountDeletion with a user_id that is not a UUID: 400 on user_id",
    method: "GET",
    path: "/v1/auth/account/deletion?userId=nope",
    headers: as("x"),
    expect: { status: 400, json: status(3, "invalid request", fieldViolation("user_id")) },
  },
  {
    name: "CancelAccountDeletion with nothing scheduled: 400 FAILED_PRECONDITION",
    method: "POST",
    path: "/v1/auth/account/deletion:cancel",
    headers: as("x"),
    body: () => ({}),
    expect: { status: 400, json: status(9) },
  },
  {
    name: "DeleteAccount with the password: scheduled, with the time everything goes",
    method: "POST",
    path: "/v1/auth/account:delete",
    headers: as("x"),
    body: (c) => ({ password: c.password }),
    expect: { status: 200, json: { deletion: { requestedAt: anyString, purgeAt: anyString } } },
  },
  {
    name: "The token of the session that asked no longer works: every session ended",
    method: "GET",
    path: "/v1/auth/me",
    headers: as("x"),
    expect: { status: 401, json: unauthenticated() },
  },
  {
    name: "Login x during the grace period: a session, and the pending deletion",
    method: "POST",
    path: "/v1/auth/login",
    headers: () => json,
    body: (c) => ({ email: email(c, "x"), password: c.password, deviceName: "doomed phone" }),
    expect: { status: 200, json: { userId: uuid, tokens: { accessToken: anyString }, pendingDeletion: { requestedAt: anyString, purgeAt: anyString } } },
    capture: (body, c) => {
      const r = body as { userId: string; sessionId: string; tokens: { accessToken: string; refreshToken: string } };
      c.users.x = { userId: r.userId, sessionId: r.sessionId, accessToken: r.tokens.accessToken, refreshToken: r.tokens.refreshToken };
    },
  },
  {
    name: "CancelAccountDeletion of another account: 403",
    method: "POST",
    path: "/v1/auth/account/deletion:cancel",
    headers: as("a"),
    body: (c) => ({ userId: idOf(c, "x") }),
    expect: { status: 403, json: status(7) },
  },
  {
    name: "CancelAccountDeletion by the holder: the account stays",
    method: "POST",
    path: "/v1/auth/account/deletion:cancel",
    headers: as("x"),
    body: (c) => ({ userId: idOf(c, "x") }),
    expect: { status: 200, json: {} },
  },
  {
    name: "GetAccountDeletion after the cancel: nothing scheduled",
    method: "GET",
    path: "/v1/auth/account/deletion",
    headers: as("x"),
    expect: { status: 200, json: { deletion: absent } },
  },

  // --- data exports (user a; b is the outsider) -------------------------------------------
  // Whether the build has finished by the next row depends on the deployment (the exporter
  // role builds in the background), so these rows hold for any state.
  {
    name: "RequestDataExport without a token: 401",
    method: "POST",
    path: "/v1/auth/account/data-exports",
    headers: () => json,
    body: () => ({}),
    expect: { status: 401, json: unauthenticated() },
  },
  {
    name: "RequestDataExport: a new export for the caller",
    method: "POST",
    path: "/v1/auth/account/data-exports",
    headers: as("a"),
    body: () => ({}),
    expect: { status: 200, json: { export: { exportId: uuid, state: /^DATA_EXPORT_STATE_/, requestedAt: anyString }, created: true } },
    capture: (body, c) => {
      c.captured.dataExportId = (body as { export: { exportId: string } }).export.exportId;
    },
  },
  {
    name: "GetDataExport by its owner",
    method: "GET",
    path: (c) => `/v1/auth/account/data-exports/${captured(c, "dataExportId")}`,
    headers: as("a"),
    expect: { status: 200, jsonFor: (c) => ({ export: { exportId: captured(c, "dataExportId"), state: /^DATA_EXPORT_STATE_/ } }) },
  },
  {
    name: "GetDataExport of someone else's export: 404, as if there were none",
    method: "GET",
    path: (c) => `/v1/auth/account/data-exports/${captured(c, "dataExportId")}`,
    headers: as("b"),
    expect: { status: 404, json: notFound },
  },
  {
    name: "GetDataExport with an id that is not a UUID: 400 on export_id",
    method: "GET",
    path: "/v1/auth/account/data-exports/nope",
    headers: as("a"),
    expect: { status: 400, json: status(3, "invalid request", fieldViolation("export_id")) },
  },
  {
    name: "ListDataExports: the caller's own",
    method: "GET",
    path: "/v1/auth/account/data-exports?pageSize=10",
    headers: as("a"),
    expect: { status: 200, jsonFor: (c) => ({ exports: [{ exportId: captured(c, "dataExportId") }] }) },
  },
  {
    name: "ListDataExports of another user: only their own (none)",
    method: "GET",
    path: "/v1/auth/account/data-exports",
    headers: as("b"),
    expect: { status: 200, json: { exports: absent } },
  },
  {
    name: "ListDataExports with page_size over 50: 400 on page_size",
    method: "GET",
    path: "/v1/auth/account/data-exports?pageSize=51",
    headers: as("a"),
    expect: { status: 400, json: status(3, "invalid request", fieldViolation("page_size")) },
  },

  // --- two-factor sign-in (user e): enrol, sign in with a recovery code, disable --------------
  {
    name: "Register e (codes in German)",
    method: "POST",
    path: "/v1/auth/register",
    headers: () => json,
    body: (c) => ({ email: email(c, "e"), password: c.password, locale: "de" }),
    expect: { status: 200, jsonFor: (c) => ({ userId: uuid, identity: email(c, "e") }) },
  },
  {
    name: "Register with a locale that is not a language tag: 400 on locale",
    method: "POST",
    path: "/v1/auth/register",
    headers: () => json,
    body: (c) => ({ email: `locale.${c.runId}@example.org`, password: c.password, locale: "english please" }),
    expect: { status: 400, json: status(3, "invalid request", fieldViolation("locale")) },
  },
  loginRow("e", "e", "authenticator"),
  {
    name: "StartTotpEnrollment without a token: 401 from jwt_authn",
    method: "POST",
    path: "/v1/auth/two-factor/totp:start",
    headers: () => json,
    body: (c) => ({ password: c.password }),
    expect: { status: 401, json: unauthenticated("Jwt is missing") },
  },
  {
    name: "StartTotpEnrollment with a wrong password: 400 on password",
    method: "POST",
    path: "/v1/auth/two-factor/totp:start",
    headers: as("e"),
    body: () => ({ password: "not-the-password" }),
    expect: { status: 400, json: status(3, "invalid request", fieldViolation("password")) },
  },
  {
    name: "StartTotpEnrollment answers the secret and a QR-ready otpauth URI",
    method: "POST",
    path: "/v1/auth/two-factor/totp:start",
    headers: as("e"),
    body: (c) => ({ password: c.password }),
    expect: { status: 200, json: { secret: /^[A-Z2-7]{32}$/, otpauthUri: /^otpauth:\/\/totp\/Aviary:.+\?secret=[A-Z2-7]{32}&issuer=Aviary/, digits: 6, periodSeconds: 30 } },
    capture: (body, c) => void (c.captured.totpSecret = (body as { secret: string }).secret),
  },
  {
    name: "ConfirmTotpEnrollment with a code that is not six digits: 400 on code",
    method: "POST",
    path: "/v1/auth/two-factor/totp:confirm",
    headers: as("e"),
    body: () => ({ code: "12a4" }),
    expect: { status: 400, json: status(3, "invalid request", fieldViolation("code")) },
  },
  {
    name: "ConfirmTotpEnrollment with the app's current code: ten recovery codes, once",
    method: "POST",
    path: "/v1/auth/two-factor/totp:confirm",
    headers: as("e"),
    body: (c) => ({ code: totpCode(base32Decode(c.captured.totpSecret ?? ""), Date.now()) }),
    expect: { status: 200, json: { recoveryCodes: (v) => Array.isArray(v) && v.length === 10 && v.every((code) => /^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/.test(String(code))) } },
    capture: (body, c) => void (c.captured.recoveryCode = (body as { recoveryCodes: string[] }).recoveryCodes[0]),
  },
  {
    name: "GetMe says two-factor sign-in is on",
    method: "GET",
    path: "/v1/auth/me",
    headers: as("e"),
    expect: { status: 200, json: { twoFactorEnabled: true } },
  },
  {
    name: "Login e with two-factor on: a challenge instead of tokens",
    method: "POST",
    path: "/v1/auth/login",
    headers: () => json,
    body: (c) => ({ email: email(c, "e"), password: c.password, deviceName: "second device" }),
    expect: { status: 200, json: { secondFactorRequired: true, challengeToken: anyString, challengeExpiresInSeconds: (v) => typeof v === "number" && v > 0, tokens: absent, userId: absent } },
    capture: (body, c) => void (c.captured.challengeToken = (body as { challengeToken: string }).challengeToken),
  },
  {
    name: "VerifySecondFactor with a code that is not six digits: 400 on code",
    method: "POST",
    path: "/v1/auth/login:verifySecondFactor",
    headers: () => json,
    body: (c) => ({ challengeToken: c.captured.challengeToken, code: "12ab56" }),
    expect: { status: 400, json: status(3, "invalid request", fieldViolation("code")) },
  },
  {
    name: "VerifySecondFactor without a factor: 400 on factor",
    method: "POST",
    path: "/v1/auth/login:verifySecondFactor",
    headers: () => json,
    body: (c) => ({ challengeToken: c.captured.challengeToken }),
    expect: { status: 400, json: status(3, "invalid request", fieldViolation("factor")) },
  },
  {
    name: "VerifySecondFactor with an unknown challenge: 401",
    method: "POST",
    path: "/v1/auth/login:verifySecondFactor",
    headers: () => json,
    body: (c) => ({ challengeToken: "not-a-challenge", recoveryCode: c.captured.recoveryCode }),
    expect: { status: 401, json: unauthenticated() },
  },
  {
    name: "VerifySecondFactor with a recovery code: the session's tokens",
    method: "POST",
    path: "/v1/auth/login:verifySecondFactor",
    headers: () => json,
    body: (c) => ({ challengeToken: c.captured.challengeToken, recoveryCode: c.captured.recoveryCode }),
    expect: { status: 200, jsonFor: (c) => ({ userId: c.users.e!.userId, sessionId: uuid, tokens: { accessToken: anyString, refreshToken: anyString }, recoveryCodesRemaining: 9 }) },
  },
  {
    name: "Login e again: a new challenge",
    method: "POST",
    path: "/v1/auth/login",
    headers: () => json,
    body: (c) => ({ email: email(c, "e"), password: c.password }),
    expect: { status: 200, json: { secondFactorRequired: true, challengeToken: anyString } },
    capture: (body, c) => void (c.captured.challengeToken = (body as { challengeToken: string }).challengeToken),
  },
  {
    name: "VerifySecondFactor with a spent recovery code: 400 on recovery_code",
    method: "POST",
    path: "/v1/auth/login:verifySecondFactor",
    headers: () => json,
    body: (c) => ({ challengeToken: c.captured.challengeToken, recoveryCode: c.captured.recoveryCode }),
    expect: { status: 400, json: status(3, "invalid request", fieldViolation("recovery_code")) },
  },
  {
    name: "DisableTwoFactor by a user who has none (a): 400 failed precondition",
    method: "POST",
    path: "/v1/auth/two-factor:disable",
    headers: as("a"),
    body: (c) => ({ password: c.password }),
    expect: { status: 400, json: status(9) },
  },
  {
    name: "DisableTwoFactor without proof: 400 on proof",
    method: "POST",
    path: "/v1/auth/two-factor:disable",
    headers: as("e"),
    body: () => ({}),
    expect: { status: 400, json: status(3, "invalid request", fieldViolation("proof")) },
  },
  {
    name: "DisableTwoFactor with the password",
    method: "POST",
    path: "/v1/auth/two-factor:disable",
    headers: as("e"),
    body: (c) => ({ password: c.password }),
    expect: { status: 200, json: {} },
  },
  {
    name: "GetMe says two-factor sign-in is off again",
    method: "GET",
    path: "/v1/auth/me",
    headers: as("e"),
    expect: { status: 200, json: { twoFactorEnabled: absent } },
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

  // --- the user and media services behind the edge ------------------------------------------
  ...userCases,
  ...mediaCases,
  ...postCases,
  ...realtimeCases,
  ...notificationCases,
  ...chatCases,
  ...moderationCases,

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
