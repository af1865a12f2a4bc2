// APNs adapter: Apple's HTTP/2 provider API with token-based authentication.
// https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns
// https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns

import { createHash } from "node:crypto";
import { importPKCS8, SignJWT } from "jose";
import type { PushMessage, PushProvider, PushTarget, PushVerdict } from "./provider.ts";
import { createHttp2Client, parseRetryAfter, TransportError, type HttpResponse } from "./transport.ts";

export const APNS_PRODUCTION_URL = "https://api.push.apple.com";
export const APNS_SANDBOX_URL = "https://api.sandbox.push.apple.com";

export interface ApnsProviderOptions {
  /** APNS_PRODUCTION_URL, APNS_SANDBOX_URL, or a test server. */
  readonly url: URL | string;
  /** The 10-character team id: the JWT's `iss`. */
  readonly teamId: string;
  /** The id of the signing key: the JWT's `kid`. */
  readonly keyId: string;
  /** The .p8 signing key (PKCS#8 PEM of a P-256 key). */
  readonly key: string;
  /** The app's bundle id (`apns-topic`). */
  readonly topic: string;
  /** Regenerate the provider token when it is this old. Apple: between 20 and 60 minutes. Default 40. */
  readonly tokenRefreshMinutes?: number;
  /** How long APNs should keep trying to reach an offline device (`apns-expiration`). Default one day. */
  readonly expirationSeconds?: number;
  /** Per-request deadline. Default 10 s. */
  readonly requestTimeoutMs?: number;
  /** Extra trusted CA (PEM): test servers only. */
  readonly ca?: string;
  /** Milliseconds since the epoch; injectable so tests can age the provider token. */
  readonly now?: () => number;
}

const MIN_REFRESH_MINUTES = 20;
const MAX_REFRESH_MINUTES = 60;
const COLLAPSE_ID_MAX_BYTES = 64;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DEVICE_TOKEN = /^[0-9a-f]+$/i;

/**
 * `apns-collapse-id` is limited to 64 bytes; a longer key is replaced by its
 * SHA-256 (43 base64url characters) so that every push of the same group still
 * carries the same id.
 */
export function apnsCollapseId(collapseKey: string): string {
  if (Buffer.byteLength(collapseKey, "utf8") <= COLLAPSE_ID_MAX_BYTES) return collapseKey;
  return createHash("sha256").update(collapseKey).digest("base64url");
}

/** The notification payload: app data first so it can never overwrite `aps`. */
export function apnsPayload(message: PushMessage): string {
  return JSON.stringify({
    ...message.data,
    aps: {
      alert: { title: message.title, body: message.body },
      badge: message.badge,
      sound: "default",
      "thread-id": message.collapseKey,
    },
  });
}

/** Caches the provider token and signs a new one only when it is older than the refresh age. */
interface ProviderTokens {
  current(): Promise<string>;
  /** Called after APNs rejected `rejected` as expired: forces a new token unless another request already did. */
  renew(rejected: string): Promise<string>;
}

async function providerTokens(options: ApnsProviderOptions, refreshMs: number, now: () => number): Promise<ProviderTokens> {
  const key = await importPKCS8(options.key, "ES256");
  let cached: { jwt: Promise<string>; issuedAtMs: number } | undefined;

  function issue(): Promise<string> {
    const issuedAtMs = now();
    const jwt = new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid: options.keyId })
      .setIssuer(options.teamId)
      .setIssuedAt(Math.floor(issuedAtMs / 1000))
      .sign(key);
    // Concurrent sends share one signing; a failed signing is not cached.
    cached = { jwt, issuedAtMs };
    jwt.catch(() => {
      if (cached?.jwt === jwt) cached = undefined;
    });
    return jwt;
  }

  return {
    current: () => (cached !== undefined && now() - cached.issuedAtMs < refreshMs ? cached.jwt : issue()),
    renew: async (rejected) => {
      // Many in-flight requests see the same expiry at once; Apple answers
      // TooManyProviderTokenUpdates if each of them signs its own token.
      if (cached !== undefined && (await cached.jwt) !== rejected) return cached.jwt;
      return issue();
    },
  };
}

interface ApnsError {
  readonly reason: string;
  readonly timestamp?: number;
}

function parseError(body: string): ApnsError {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === "object" && parsed !== null) {
      const { reason, timestamp } = parsed as { reason?: unknown; timestamp?: unknown };
      return {
        reason: typeof reason === "string" ? reason : "unknown",
        ...(typeof timestamp === "number" ? { timestamp } : {}),
      };
    }
  } catch {
    // Not JSON: fall through.
  }
  return { reason: "unknown" };
}

// Reasons that mean "this token is real, but not for this app as configured":
// a sandbox token sent to production (APNs reports it as BadDeviceToken), a
// token of another bundle id, a topic the key may not push to, or a key of the
// other environment.
const QUARANTINE_REASONS = new Set(["BadDeviceToken", "DeviceTokenNotForTopic", "TopicDisallowed", "BadCertificateEnvironment", "BadEnvironmentKeyInToken"]);

/** Maps an APNs answer to a verdict (ExpiredProviderToken is handled by the caller first). */
export function apnsVerdict(response: HttpResponse, nowMs: number): PushVerdict {
  if (response.status === 200) return { kind: "delivered" };
  const error = parseError(response.body);
  const reason = `apns ${response.status} ${error.reason}`;
  const retryAfterMs = parseRetryAfter(response.headers["retry-after"], nowMs);
  const retry = (): PushVerdict => ({ kind: "retry", reason, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) });

  switch (response.status) {
    case 410:
      return { kind: "gone", reason, ...(error.timestamp === undefined ? {} : { since: new Date(error.timestamp) }) };
    case 400:
      if (QUARANTINE_REASONS.has(error.reason)) return { kind: "quarantine", reason };
      // APNs closes idle connections this way; the next request reconnects.
      if (error.reason === "IdleTimeout") return retry();
      return { kind: "failed", reason };
    case 403:
      if (QUARANTINE_REASONS.has(error.reason)) return { kind: "quarantine", reason };
      // InvalidProviderToken, MissingProviderToken, UnrelatedKeyIdInToken, Forbidden…: our credentials.
      return { kind: "failed", reason };
    case 429: // TooManyRequests (to this device), TooManyProviderTokenUpdates
      return retry();
    default:
      // 404 BadPath, 405, 413 PayloadTooLarge: retrying cannot help. 500, 503: Apple's side.
      return response.status >= 500 ? retry() : { kind: "failed", reason };
  }
}

export async function createApnsProvider(options: ApnsProviderOptions): Promise<PushProvider> {
  const refreshMinutes = options.tokenRefreshMinutes ?? 40;
  if (!(refreshMinutes >= MIN_REFRESH_MINUTES && refreshMinutes <= MAX_REFRESH_MINUTES)) {
    throw new RangeError(`APNs token refresh must be between ${MIN_REFRESH_MINUTES} and ${MAX_REFRESH_MINUTES} minutes (got ${refreshMinutes})`);
  }
  const now = options.now ?? Date.now;
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const expirationSeconds = options.expirationSeconds ?? 86_400;
  const tokens = await providerTokens(options, refreshMinutes * 60_000, now);
  const client = createHttp2Client(options.url, options.ca === undefined ? {} : { ca: options.ca });

  function post(target: PushTarget, message: PushMessage, jwt: string, signal: AbortSignal | undefined): Promise<HttpResponse> {
    const headers: Record<string, string> = {
      authorization: `bearer ${jwt}`,
      "apns-topic": options.topic,
      "apns-push-type": "alert",
      "apns-priority": "10",
      "apns-expiration": String(Math.floor(now() / 1000) + expirationSeconds),
      "apns-collapse-id": apnsCollapseId(message.collapseKey),
      "content-type": "application/json",
    };
    // APNs rejects a malformed apns-id (BadMessageId); without one it assigns its own.
    if (UUID.test(message.id)) headers["apns-id"] = message.id;
    return client.request({
      method: "POST",
      path: `/3/device/${target.token}`,
      headers,
      body: apnsPayload(message),
      timeoutMs,
      ...(signal === undefined ? {} : { signal }),
    });
  }

  async function send(target: PushTarget, message: PushMessage, signal?: AbortSignal): Promise<PushVerdict> {
    // Device tokens are hex; anything else would also change the request path.
    if (!DEVICE_TOKEN.test(target.token)) return { kind: "quarantine", reason: "apns malformed device token" };
    try {
      let jwt = await tokens.current();
      let response = await post(target, message, jwt, signal);
      if (response.status === 403 && parseError(response.body).reason === "ExpiredProviderToken") {
        // Our token aged out (clock skew, a long pause): one new token, one more try.
        jwt = await tokens.renew(jwt);
        response = await post(target, message, jwt, signal);
      }
      return apnsVerdict(response, now());
    } catch (e) {
      // No answer (timeout, connection lost, or the caller aborted, e.g. at
      // shutdown): APNs may or may not have it, and a repeat replaces it on
      // the device (same collapse id), so retrying is safe.
      if (e instanceof TransportError) return { kind: "retry", reason: `apns ${e.kind}: ${e.message}` };
      // Signing failed: the key is unusable, which no retry fixes.
      return { kind: "failed", reason: `apns provider token: ${e instanceof Error ? e.message : String(e)}` };
    }
  }

  return { platform: "ios", send, close: () => client.close() };
}
