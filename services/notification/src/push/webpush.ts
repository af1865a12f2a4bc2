// Web Push adapter: RFC 8030 delivery, RFC 8291 (aes128gcm) payload
// encryption and RFC 8292 VAPID, to whichever push service the browser's
// subscription points at.
//
// The `web-push` library does the cryptography (encryption and the VAPID
// header, via generateRequestDetails); the request itself goes through our own
// transport so a send honours the per-request deadline and the caller's abort
// signal, and so the answer is read here rather than through an exception.

import { createECDH, createHash } from "node:crypto";
import webpush from "web-push";
import type { PushMessage, PushProvider, PushTarget, PushVerdict } from "./provider.ts";
import { createHttpsClient, parseRetryAfter, TransportError, type HttpResponse } from "./transport.ts";

export interface WebPushProviderOptions {
  /** The application server key pair (base64url: 65-byte public point, 32-byte private scalar), as the browsers got it. */
  readonly vapidPublicKey: string;
  readonly vapidPrivateKey: string;
  /** A contact for the push service operator: "mailto:…" or "https:…". */
  readonly subject: string;
  /** How long the push service keeps an undelivered message. Default one day. */
  readonly ttlSeconds?: number;
  /** Per-request deadline. Default 10 s. */
  readonly requestTimeoutMs?: number;
  /** Extra trusted CA (PEM): test servers only. */
  readonly ca?: string;
  /** Milliseconds since the epoch (Retry-After dates). */
  readonly now?: () => number;
}

/** A browser PushSubscription, as PushSubscription.toJSON() gives it. */
export interface WebPushSubscription {
  readonly endpoint: string;
  readonly keys: { readonly p256dh: string; readonly auth: string };
}

function base64urlBytes(text: string): number | undefined {
  return /^[A-Za-z0-9_-]+=*$/.test(text) ? Buffer.from(text, "base64url").length : undefined;
}

/**
 * Reads a device token as a subscription, or undefined when it is not one we
 * can push to: not JSON, an endpoint that is not https, or keys of the wrong
 * shape (p256dh: an uncompressed P-256 point, 65 bytes; auth: 16 bytes).
 */
export function parseSubscription(token: string): WebPushSubscription | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(token);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const { endpoint, keys } = parsed as { endpoint?: unknown; keys?: unknown };
  if (typeof endpoint !== "string" || typeof keys !== "object" || keys === null) return undefined;
  try {
    if (new URL(endpoint).protocol !== "https:") return undefined;
  } catch {
    return undefined;
  }
  const { p256dh, auth } = keys as { p256dh?: unknown; auth?: unknown };
  if (typeof p256dh !== "string" || typeof auth !== "string") return undefined;
  if (base64urlBytes(p256dh) !== 65 || base64urlBytes(auth) !== 16) return undefined;
  return { endpoint, keys: { p256dh, auth } };
}

/**
 * The Topic header replaces an undelivered message with the same topic. It
 * allows at most 32 characters of the base64url alphabet, so it is derived
 * from the collapse key by hashing: 24 bytes of SHA-256 are exactly 32 characters.
 */
export function webPushTopic(collapseKey: string): string {
  return createHash("sha256").update(collapseKey).digest().subarray(0, 24).toString("base64url");
}

/** What the service worker receives (after decryption). */
export function webPushPayload(message: PushMessage): string {
  return JSON.stringify({ title: message.title, body: message.body, badge: message.badge, collapseKey: message.collapseKey, data: message.data });
}

/** Maps a push service's answer to a verdict. */
export function webPushVerdict(response: HttpResponse, nowMs: number): PushVerdict {
  const { status } = response;
  if (status === 200 || status === 201 || status === 202) return { kind: "delivered" };
  const detail = response.body.trim().slice(0, 200);
  const reason = `webpush ${status}${detail === "" ? "" : ` ${detail}`}`;
  // The subscription expired or was revoked by the user (RFC 8030 §7.3).
  if (status === 404 || status === 410) return { kind: "gone", reason };
  if (status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(response.headers["retry-after"], nowMs);
    return { kind: "retry", reason, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  }
  // 413: payload too large; 400/401/403: our request or VAPID key was rejected. None is the subscription's fault.
  return { kind: "failed", reason };
}

/**
 * What is wrong with a VAPID key pair, per key: the public key must be a
 * 65-byte uncompressed P-256 point, the private key a 32-byte scalar, and the
 * public key the private key's own (a mismatch would make every push service
 * reject every push with 401/403, long after startup).
 */
export function vapidKeyProblems(publicKey: string, privateKey: string): { key: "public" | "private"; problem: string }[] {
  const problems: { key: "public" | "private"; problem: string }[] = [];
  if (base64urlBytes(publicKey) !== 65) problems.push({ key: "public", problem: "must be a base64url uncompressed P-256 point (65 bytes)" });
  if (base64urlBytes(privateKey) !== 32) problems.push({ key: "private", problem: "must be a base64url P-256 private key (32 bytes)" });
  if (problems.length > 0) return problems;
  try {
    const ecdh = createECDH("prime256v1");
    ecdh.setPrivateKey(Buffer.from(privateKey, "base64url"));
    if (!ecdh.getPublicKey().equals(Buffer.from(publicKey, "base64url"))) problems.push({ key: "public", problem: "is not the public key of the configured private key" });
  } catch {
    problems.push({ key: "private", problem: "is not a valid P-256 private key" });
  }
  return problems;
}

export async function createWebPushProvider(options: WebPushProviderOptions): Promise<PushProvider> {
  const now = options.now ?? Date.now;
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const ttl = options.ttlSeconds ?? 86_400;
  const vapidDetails = { subject: options.subject, publicKey: options.vapidPublicKey, privateKey: options.vapidPrivateKey };
  // Fail at startup, not on the first push.
  const keyProblems = vapidKeyProblems(options.vapidPublicKey, options.vapidPrivateKey);
  if (keyProblems.length > 0) throw new Error(keyProblems.map((p) => `VAPID ${p.key} key ${p.problem}`).join("; "));
  // The library's own checks (the subject among them) run when it signs a header.
  webpush.getVapidHeaders("https://push.invalid", vapidDetails.subject, vapidDetails.publicKey, vapidDetails.privateKey, "aes128gcm");
  const http = createHttpsClient(options.ca === undefined ? {} : { ca: options.ca });

  async function send(target: PushTarget, message: PushMessage, signal?: AbortSignal): Promise<PushVerdict> {
    const subscription = parseSubscription(target.token);
    if (subscription === undefined) return { kind: "quarantine", reason: "malformed subscription" };
    let details: ReturnType<typeof webpush.generateRequestDetails>;
    try {
      details = webpush.generateRequestDetails({ endpoint: subscription.endpoint, keys: { ...subscription.keys } }, webPushPayload(message), {
        vapidDetails,
        TTL: ttl,
        urgency: "normal",
        topic: webPushTopic(message.collapseKey),
        contentEncoding: "aes128gcm",
      });
    } catch {
      // Right lengths but not a point on the curve: the browser did not make this.
      return { kind: "quarantine", reason: "malformed subscription" };
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(details.headers)) headers[name] = String(value);
    const url = new URL(details.endpoint);
    try {
      const response = await http.request(url, {
        method: "POST",
        headers,
        ...(details.body === null ? {} : { body: details.body }),
        timeoutMs,
        ...(signal === undefined ? {} : { signal }),
      });
      return webPushVerdict(response, now());
    } catch (e) {
      // No answer (timeout, connection lost, caller aborted): a repeat replaces it while undelivered (same Topic).
      if (e instanceof TransportError) return { kind: "retry", reason: `webpush ${e.kind}: ${e.message}` };
      return { kind: "failed", reason: `webpush: ${e instanceof Error ? e.message : String(e)}` };
    }
  }

  return { platform: "web", send, close: () => http.close() };
}
