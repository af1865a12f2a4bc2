// A local FCM: Google's OAuth 2.0 token endpoint for service accounts (the
// JWT-bearer grant) and the FCM HTTP v1 send method, on one TLS server. It
// verifies the assertion and the bearer token the way Google does and answers
// errors in Google's error model, so the adapter is tested against the
// protocol.
// https://developers.google.com/identity/protocols/oauth2/service-account#httprest
// https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode

import { createPublicKey, generateKeyPairSync, randomBytes, randomUUID, type KeyObject } from "node:crypto";
import http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import { decodeJwt, jwtVerify, type JWTPayload } from "jose";
import { testTls } from "./tls.ts";
import { flatHeaders } from "./fixtures.ts";

export const FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging";

export interface FcmServerOptions {
  readonly projectId: string;
  /** A service account to accept assertions from (more with trust()). */
  readonly clientEmail?: string;
  readonly serviceAccountPublicKey?: string | KeyObject;
  /** expires_in of issued access tokens. Default 3599, like Google. */
  readonly tokenLifetimeSeconds?: number;
  /** The server's clock (ms) for assertion times; share the adapter's injected clock. */
  readonly now?: () => number;
}

/**
 * A scripted answer for a registration token. errorCode (the FcmError detail)
 * defaults from the status (404 → UNREGISTERED…); null leaves the detail out,
 * as Google does for a rejected access token.
 */
export type FcmReply =
  | { readonly status: number; readonly errorCode?: string | null; readonly message?: string; readonly retryAfter?: string | number }
  | { readonly hang: true };

export interface FcmRecordedSend {
  /** message.token of the body. */
  readonly token: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly accessToken?: string;
  /** The parsed body. */
  readonly body: unknown;
  readonly status?: number;
}

export interface FcmRecordedTokenRequest {
  readonly grantType: string | null;
  /** The verified assertion's claims (undefined when verification failed). */
  readonly claims?: JWTPayload;
  readonly status: number;
  readonly error?: string;
  readonly accessToken?: string;
}

export interface FcmServer {
  /** https://127.0.0.1:<port> */
  readonly url: string;
  /** `${url}/token`: the token_uri of service accounts for this server. */
  readonly tokenUrl: string;
  readonly ca: string;
  /** Every messages:send request. */
  readonly requests: readonly FcmRecordedSend[];
  requestsFor(token: string): FcmRecordedSend[];
  readonly tokenRequests: readonly FcmRecordedTokenRequest[];
  /** Accept assertions signed by this key for this service account. */
  trust(clientEmail: string, publicKey: string | KeyObject): void;
  /** 404 UNREGISTERED from now on. */
  unregistered(token: string): void;
  /** 403 SENDER_ID_MISMATCH from now on. */
  senderMismatch(token: string): void;
  /** 400 INVALID_ARGUMENT "The registration token is not a valid FCM registration token", as FCM answers a malformed token. */
  invalidToken(token: string): void;
  /** Answers the token's next sends with these, in order (after authentication); then 200 again. */
  respond(token: string, replies: readonly FcmReply[]): void;
  /** Every access token issued so far is rejected (401 UNAUTHENTICATED) from now on, as after a revocation. */
  expireTokens(): void;
  /** expires_in of access tokens issued from now on. */
  setTokenLifetime(seconds: number): void;
  close(): Promise<void>;
}

/** A service account key file for `serverUrl`'s token endpoint, and the public key to trust. */
export interface FakeServiceAccount {
  readonly serviceAccount: {
    readonly type: "service_account";
    readonly project_id: string;
    readonly private_key_id: string;
    readonly private_key: string;
    readonly client_email: string;
    readonly client_id: string;
    readonly token_uri: string;
  };
  /** The key file as JSON text (what FCM_SERVICE_ACCOUNT holds). */
  readonly json: string;
  readonly publicKey: KeyObject;
}

export function fakeServiceAccount(serverUrl: string, options: { projectId?: string; clientEmail?: string } = {}): FakeServiceAccount {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const projectId = options.projectId ?? "aviary-test";
  const serviceAccount = {
    type: "service_account" as const,
    project_id: projectId,
    private_key_id: randomBytes(20).toString("hex"),
    private_key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    client_email: options.clientEmail ?? `push@${projectId}.iam.gserviceaccount.com`,
    client_id: String(100_000_000_000_000_000_000n + BigInt(randomBytes(4).readUInt32BE())),
    token_uri: `${serverUrl}/token`,
  };
  return { serviceAccount, json: JSON.stringify(serviceAccount), publicKey };
}

const STATUS_NAMES: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  429: "RESOURCE_EXHAUSTED",
  500: "INTERNAL",
  503: "UNAVAILABLE",
};

const DEFAULT_ERROR_CODES: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "THIRD_PARTY_AUTH_ERROR",
  403: "SENDER_ID_MISMATCH",
  404: "UNREGISTERED",
  429: "QUOTA_EXCEEDED",
  500: "INTERNAL",
  503: "UNAVAILABLE",
};

interface GoogleErrorOptions {
  readonly status: number;
  readonly message: string;
  /** The FcmError detail; left out when undefined (authentication errors carry none). */
  readonly errorCode?: string;
  readonly badField?: string;
  readonly retryAfter?: string | number;
}

function googleError(o: GoogleErrorOptions): { status: number; headers: Record<string, string>; body: string } {
  const details: unknown[] = [];
  if (o.errorCode !== undefined) details.push({ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode: o.errorCode });
  if (o.badField !== undefined) details.push({ "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: [{ field: o.badField, description: o.message }] });
  const error = { code: o.status, message: o.message, status: STATUS_NAMES[o.status] ?? "UNKNOWN", ...(details.length === 0 ? {} : { details }) };
  const headers: Record<string, string> = { "content-type": "application/json; charset=UTF-8" };
  if (o.retryAfter !== undefined) headers["retry-after"] = String(o.retryAfter);
  return { status: o.status, headers, body: JSON.stringify({ error }) };
}

type Reply = { status: number; headers: Record<string, string>; body: string } | "hang";


/** Why a data map would be refused by FCM, if it would. */
function dataProblem(data: unknown): string | undefined {
  if (data === undefined) return undefined;
  if (typeof data !== "object" || data === null) return "Invalid value at 'message.data'";
  for (const [k, v] of Object.entries(data)) {
    if (typeof v !== "string") return `Invalid value at 'message.data[${k}].value' (TYPE_STRING)`;
    if (k === "from" || k === "message_type" || k.startsWith("google.") || k.startsWith("gcm.")) return `Invalid data payload key: ${k}`;
  }
  return undefined;
}

export async function startFcmServer(options: FcmServerOptions): Promise<FcmServer> {
  const tls = await testTls();
  const now = options.now ?? Date.now;
  const trusted = new Map<string, KeyObject>();
  const trust = (email: string, key: string | KeyObject): void => void trusted.set(email, typeof key === "string" ? createPublicKey(key) : key);
  if (options.clientEmail !== undefined && options.serviceAccountPublicKey !== undefined) trust(options.clientEmail, options.serviceAccountPublicKey);
  let tokenLifetime = options.tokenLifetimeSeconds ?? 3599;
  const validTokens = new Set<string>();
  const requests: FcmRecordedSend[] = [];
  const tokenRequests: FcmRecordedTokenRequest[] = [];
  const scripted = new Map<string, FcmReply[]>();
  const standing = new Map<string, () => Reply>();
  const sockets = new Set<Socket>();
  let url = "";

  async function token(form: URLSearchParams): Promise<Reply> {
    const grantType = form.get("grant_type");
    const refuse = (status: number, error: string, description: string, claims?: JWTPayload): Reply => {
      tokenRequests.push({ grantType, status, error, ...(claims === undefined ? {} : { claims }) });
      return { status, headers: { "content-type": "application/json" }, body: JSON.stringify({ error, error_description: description }) };
    };
    if (grantType !== "urn:ietf:params:oauth:grant-type:jwt-bearer") return refuse(400, "unsupported_grant_type", "Invalid grant_type: " + String(grantType));
    const assertion = form.get("assertion") ?? "";
    let issuer: string | undefined;
    try {
      issuer = decodeJwt(assertion).iss;
    } catch {
      return refuse(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.");
    }
    const key = issuer === undefined ? undefined : trusted.get(issuer);
    if (key === undefined) return refuse(400, "invalid_grant", "Invalid grant: account not found");
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(assertion, key, { algorithms: ["RS256"], audience: `${url}/token`, currentDate: new Date(now()), requiredClaims: ["iat", "exp"] }));
    } catch (e) {
      return refuse(400, "invalid_grant", `Invalid JWT: ${e instanceof Error ? e.message : String(e)}`);
    }
    if ((claims.exp ?? 0) - (claims.iat ?? 0) > 3600) return refuse(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.", claims);
    const scopes = typeof claims.scope === "string" ? claims.scope.split(" ") : [];
    if (!scopes.includes(FCM_SCOPE)) return refuse(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.", claims);
    const accessToken = `ya29.${randomBytes(24).toString("base64url")}`;
    validTokens.add(accessToken);
    tokenRequests.push({ grantType, claims, status: 200, accessToken });
    return { status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify({ access_token: accessToken, expires_in: tokenLifetime, token_type: "Bearer" }) };
  }

  function send(path: string, headers: Record<string, string>, rawBody: string): Reply {
    const accessToken = /^Bearer (\S+)$/i.exec(headers.authorization ?? "")?.[1];
    let body: unknown;
    try {
      body = JSON.parse(rawBody);
    } catch {
      body = undefined;
    }
    const message = (body as { message?: { token?: unknown; data?: unknown } } | undefined)?.message;
    const target = typeof message?.token === "string" ? message.token : "";
    const record = (reply: Reply): Reply => {
      requests.push({ token: target, path, headers, body, ...(accessToken === undefined ? {} : { accessToken }), ...(reply === "hang" ? {} : { status: reply.status }) });
      return reply;
    };

    if (accessToken === undefined || !validTokens.has(accessToken)) {
      return record(googleError({ status: 401, message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential." }));
    }
    if (path !== `/v1/projects/${options.projectId}/messages:send`) return record(googleError({ status: 404, message: "Requested entity was not found." }));
    if (message === undefined) return record(googleError({ status: 400, message: "Invalid JSON payload received.", errorCode: "INVALID_ARGUMENT" }));
    if (target === "") return record(googleError({ status: 400, message: "Request contains an invalid argument.", errorCode: "INVALID_ARGUMENT", badField: "message.token" }));
    const bad = dataProblem(message.data);
    if (bad !== undefined) return record(googleError({ status: 400, message: bad, errorCode: "INVALID_ARGUMENT" }));

    const state = standing.get(target);
    if (state !== undefined) return record(state());
    const next = scripted.get(target)?.shift();
    if (next !== undefined) {
      if ("hang" in next) return record("hang");
      const errorCode = next.errorCode === null ? undefined : (next.errorCode ?? DEFAULT_ERROR_CODES[next.status]);
      if (next.status !== 200) {
        return record(googleError({ status: next.status, message: next.message ?? `scripted ${next.status}`, ...(errorCode === undefined ? {} : { errorCode }), ...(next.retryAfter === undefined ? {} : { retryAfter: next.retryAfter }) }));
      }
    }
    return record({ status: 200, headers: { "content-type": "application/json; charset=UTF-8" }, body: JSON.stringify({ name: `projects/${options.projectId}/messages/0:${randomUUID()}` }) });
  }

  const server = http2.createSecureServer({ key: tls.key, cert: tls.cert, allowHTTP1: true });
  server.on("secureConnection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("request", (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const rawBody = Buffer.concat(chunks).toString("utf8");
      const path = req.url;
      const answer = async (): Promise<Reply> => {
        if (req.method !== "POST") return { status: 405, headers: {}, body: "" };
        if (path === "/token") return token(new URLSearchParams(rawBody));
        if (/^\/v1\/projects\/[^/]+\/messages:send$/.test(path)) return send(path, flatHeaders(req.headers), rawBody);
        return { status: 404, headers: {}, body: "" };
      };
      answer().then(
        (reply) => {
          if (reply === "hang") return;
          res.writeHead(reply.status, reply.headers);
          res.end(reply.body);
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    tokenUrl: `${url}/token`,
    ca: tls.ca,
    requests,
    requestsFor: (t) => requests.filter((r) => r.token === t),
    tokenRequests,
    trust,
    unregistered: (t) => void standing.set(t, () => googleError({ status: 404, message: "Requested entity was not found.", errorCode: "UNREGISTERED" })),
    senderMismatch: (t) => void standing.set(t, () => googleError({ status: 403, message: "SenderId mismatch", errorCode: "SENDER_ID_MISMATCH" })),
    invalidToken: (t) => void standing.set(t, () => googleError({ status: 400, message: "The registration token is not a valid FCM registration token", errorCode: "INVALID_ARGUMENT" })),
    respond: (t, replies) => void scripted.set(t, [...(scripted.get(t) ?? []), ...replies]),
    expireTokens: () => validTokens.clear(),
    setTokenLifetime: (seconds) => void (tokenLifetime = seconds),
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive and hung connections would hold the server open.
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
