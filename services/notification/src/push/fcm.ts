// FCM adapter: Firebase Cloud Messaging HTTP v1, authenticated as a service
// account with OAuth 2.0 (the JWT-bearer grant).
// https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send
// https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode
// https://developers.google.com/identity/protocols/oauth2/service-account#httprest

import { importPKCS8, SignJWT } from "jose";
import type { PushMessage, PushProvider, PushTarget, PushVerdict } from "./provider.ts";
import { createHttp2Client, createHttpsClient, parseRetryAfter, TransportError, type HttpResponse } from "./transport.ts";

export const FCM_URL = "https://fcm.googleapis.com";
export const FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging";

/** The fields of a service-account key file this adapter uses. */
export interface FcmServiceAccount {
  readonly project_id: string;
  readonly client_email: string;
  /** PKCS#8 PEM of an RSA key. */
  readonly private_key: string;
  readonly token_uri: string;
}

export interface FcmProviderOptions {
  readonly serviceAccount: FcmServiceAccount;
  /** Default FCM_URL. */
  readonly url?: URL | string;
  /** Where to get access tokens, when not the service account's token_uri (tests). The assertion's audience stays token_uri. */
  readonly tokenUrl?: URL | string;
  /** Per-request deadline (the token request gets its own). Default 10 s. */
  readonly requestTimeoutMs?: number;
  /** Extra trusted CA (PEM): test servers only. */
  readonly ca?: string;
  /** Milliseconds since the epoch; injectable so tests can expire access tokens. */
  readonly now?: () => number;
}

/** Parses and checks a service-account key file's JSON; throws naming the missing fields. */
export function parseServiceAccount(json: string): FcmServiceAccount {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new Error("not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null) throw new Error("not a JSON object");
  const fields = parsed as Record<string, unknown>;
  const names = ["project_id", "client_email", "private_key", "token_uri"] as const;
  const missing = names.filter((n) => typeof fields[n] !== "string" || fields[n] === "");
  if (missing.length > 0) throw new Error(`missing ${missing.join(", ")}`);
  return { project_id: String(fields.project_id), client_email: String(fields.client_email), private_key: String(fields.private_key), token_uri: String(fields.token_uri) };
}

/** The v1 send body for one device. */
export function fcmMessage(target: PushTarget, message: PushMessage): string {
  return JSON.stringify({
    message: {
      token: target.token,
      notification: { title: message.title, body: message.body },
      data: message.data,
      android: { collapse_key: message.collapseKey, notification: { tag: message.collapseKey, notification_count: message.badge } },
      apns: { payload: { aps: { badge: message.badge } } },
    },
  });
}

// ---------------------------------------------------------------- access tokens

/** Why no access token could be had: "retry" for outages, "failed" when Google refused our credentials. */
class TokenError extends Error {
  readonly verdict: "retry" | "failed";
  constructor(verdict: "retry" | "failed", message: string) {
    super(message);
    this.verdict = verdict;
  }
}

interface AccessTokens {
  current(): Promise<string>;
  /** After FCM answered 401 for `rejected`: a new token, unless another request already got one. */
  renew(rejected: string): Promise<string>;
  close(): Promise<void>;
}

// Renew this long before Google's expiry, so a token never dies in flight;
// capped at half the lifetime for short-lived tokens.
const EXPIRY_MARGIN_MS = 5 * 60_000;

async function accessTokens(options: FcmProviderOptions, timeoutMs: number, now: () => number): Promise<AccessTokens> {
  const account = options.serviceAccount;
  const key = await importPKCS8(account.private_key, "RS256");
  const tokenUrl = new URL(options.tokenUrl ?? account.token_uri);
  // The token endpoint is called about once an hour: HTTP/1.1 is plenty, and
  // works with any token_uri.
  const http = createHttpsClient(options.ca === undefined ? {} : { ca: options.ca });
  let cached: { token: Promise<string>; renewAtMs: number } | undefined;

  async function fetchToken(): Promise<{ token: string; lifetimeMs: number }> {
    const iat = Math.floor(now() / 1000);
    const assertion = await new SignJWT({ scope: FCM_SCOPE })
      .setProtectedHeader({ alg: "RS256", typ: "JWT" })
      .setIssuer(account.client_email)
      .setAudience(account.token_uri)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 3600)
      .sign(key);
    let response: HttpResponse;
    try {
      response = await http.request(tokenUrl, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion }).toString(),
        timeoutMs,
      });
    } catch (e) {
      if (e instanceof TransportError) throw new TokenError("retry", `fcm oauth ${e.kind}: ${e.message}`);
      throw e;
    }
    let body: { access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown } = {};
    try {
      body = JSON.parse(response.body) as typeof body;
    } catch {
      // Reported below by status.
    }
    if (response.status !== 200 || typeof body.access_token !== "string") {
      const what = typeof body.error === "string" ? `${body.error}${typeof body.error_description === "string" ? `: ${body.error_description}` : ""}` : "no access_token";
      // 400/401 invalid_grant and friends: the key or account is wrong (or revoked).
      const verdict = response.status >= 500 || response.status === 429 ? "retry" : "failed";
      throw new TokenError(verdict, `fcm oauth ${response.status} ${what}`);
    }
    const expiresIn = typeof body.expires_in === "number" ? body.expires_in : 3600;
    return { token: body.access_token, lifetimeMs: expiresIn * 1000 };
  }

  // The request is shared by every send waiting for it, so no one caller's
  // abort signal may cancel it; it has its own deadline.
  function refresh(): Promise<string> {
    const startedAt = now();
    const token = fetchToken().then(({ token: t, lifetimeMs }) => {
      if (cached?.token === token) cached = { token, renewAtMs: startedAt + lifetimeMs - Math.min(EXPIRY_MARGIN_MS, lifetimeMs / 2) };
      return t;
    });
    // Concurrent sends share the pending request; until it settles, nobody starts another.
    cached = { token, renewAtMs: Number.POSITIVE_INFINITY };
    token.catch(() => {
      if (cached?.token === token) cached = undefined;
    });
    return token;
  }

  return {
    current: () => (cached !== undefined && now() < cached.renewAtMs ? cached.token : refresh()),
    renew: async (rejected) => {
      if (cached !== undefined && (await cached.token.catch(() => rejected)) !== rejected) return cached.token;
      return refresh();
    },
    close: () => http.close(),
  };
}

// ---------------------------------------------------------------- verdicts

interface GoogleError {
  readonly status: string;
  readonly message: string;
  /** From the FcmError detail. */
  readonly errorCode?: string;
  /** The fields a google.rpc.BadRequest detail names. */
  readonly badFields: readonly string[];
}

function parseGoogleError(body: string): GoogleError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { status: "UNKNOWN", message: "", badFields: [] };
  }
  const error = (parsed as { error?: { status?: unknown; message?: unknown; details?: unknown } } | null)?.error;
  let errorCode: string | undefined;
  const badFields: string[] = [];
  if (Array.isArray(error?.details)) {
    for (const d of error.details as unknown[]) {
      if (typeof d !== "object" || d === null) continue;
      const detail = d as { "@type"?: unknown; errorCode?: unknown; fieldViolations?: unknown };
      if (detail["@type"] === "type.googleapis.com/google.firebase.fcm.v1.FcmError" && typeof detail.errorCode === "string") errorCode = detail.errorCode;
      if (detail["@type"] === "type.googleapis.com/google.rpc.BadRequest" && Array.isArray(detail.fieldViolations)) {
        for (const v of detail.fieldViolations as unknown[]) {
          const field = (v as { field?: unknown } | null)?.field;
          if (typeof field === "string") badFields.push(field);
        }
      }
    }
  }
  return {
    status: typeof error?.status === "string" ? error.status : "UNKNOWN",
    message: typeof error?.message === "string" ? error.message : "",
    ...(errorCode === undefined ? {} : { errorCode }),
    badFields,
  };
}

/**
 * FCM reports a malformed registration token as a plain INVALID_ARGUMENT, the
 * same code as a bad message; only the field violation (message.token) or the
 * message text tells them apart. A bad message must not cost the user their
 * device, so anything short of that is "failed".
 */
function isBadToken(error: GoogleError): boolean {
  return error.badFields.includes("message.token") || /registration token/i.test(error.message);
}

/** Maps an FCM answer to a verdict (a 401 is first retried with a new access token by the caller). */
export function fcmVerdict(response: HttpResponse, nowMs: number): PushVerdict {
  if (response.status === 200) return { kind: "delivered" };
  const error = parseGoogleError(response.body);
  const code = error.errorCode ?? error.status;
  const reason = `fcm ${response.status} ${code}${error.message === "" ? "" : `: ${error.message}`}`;
  const retryAfterMs = parseRetryAfter(response.headers["retry-after"], nowMs);

  if (error.errorCode === "UNREGISTERED") return { kind: "gone", reason };
  if (error.errorCode === "SENDER_ID_MISMATCH") return { kind: "quarantine", reason };
  // The APNs certificate or web push key stored in the Firebase project was rejected: configuration, not the token.
  if (error.errorCode === "THIRD_PARTY_AUTH_ERROR") return { kind: "failed", reason };
  if (response.status === 429 || response.status >= 500 || code === "QUOTA_EXCEEDED" || code === "UNAVAILABLE" || code === "INTERNAL") {
    return { kind: "retry", reason, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  }
  if (code === "INVALID_ARGUMENT" && isBadToken(error)) return { kind: "quarantine", reason };
  return { kind: "failed", reason };
}

// ---------------------------------------------------------------- provider

export async function createFcmProvider(options: FcmProviderOptions): Promise<PushProvider> {
  const now = options.now ?? Date.now;
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const tokens = await accessTokens(options, timeoutMs, now);
  const base = new URL(options.url ?? FCM_URL);
  const client = createHttp2Client(base, options.ca === undefined ? {} : { ca: options.ca });
  const path = `${base.pathname.replace(/\/$/, "")}/v1/projects/${encodeURIComponent(options.serviceAccount.project_id)}/messages:send`;

  function post(body: string, accessToken: string, signal: AbortSignal | undefined): Promise<HttpResponse> {
    return client.request({
      method: "POST",
      path,
      headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json; charset=utf-8" },
      body,
      timeoutMs,
      ...(signal === undefined ? {} : { signal }),
    });
  }

  async function send(target: PushTarget, message: PushMessage, signal?: AbortSignal): Promise<PushVerdict> {
    const body = fcmMessage(target, message);
    try {
      let accessToken = await tokens.current();
      let response = await post(body, accessToken, signal);
      if (response.status === 401 && parseGoogleError(response.body).errorCode !== "THIRD_PARTY_AUTH_ERROR") {
        // Revoked or expired early: one new token, one more try; a second 401 is our credentials.
        accessToken = await tokens.renew(accessToken);
        response = await post(body, accessToken, signal);
      }
      return fcmVerdict(response, now());
    } catch (e) {
      // No answer (timeout, connection lost, caller aborted): a repeat replaces it on the device (same tag).
      if (e instanceof TransportError) return { kind: "retry", reason: `fcm ${e.kind}: ${e.message}` };
      if (e instanceof TokenError) return { kind: e.verdict, reason: e.message };
      return { kind: "failed", reason: `fcm: ${e instanceof Error ? e.message : String(e)}` };
    }
  }

  async function close(): Promise<void> {
    await Promise.all([client.close(), tokens.close()]);
  }

  return { platform: "android", send, close };
}
