// A local APNs: Apple's HTTP/2 provider API as far as a provider can observe
// it. It checks what Apple checks (the provider token, topic, headers, payload
// size) and answers with Apple's status codes and `{"reason": …}` bodies, so
// the adapter is tested against the protocol rather than against itself.
// https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns

import { randomUUID, createPublicKey, type KeyObject } from "node:crypto";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { compactVerify, decodeProtectedHeader, type JWTPayload, type ProtectedHeaderParameters } from "jose";
import { testTls } from "./tls.ts";
import { flatHeaders } from "./fixtures.ts";

export interface ApnsServerOptions {
  readonly teamId: string;
  readonly keyId: string;
  /** The public half of the .p8 key (SPKI PEM or a KeyObject). */
  readonly publicKey: string | KeyObject;
  /** The only bundle id this server accepts. */
  readonly topic: string;
  /** The server's clock (ms) for provider-token age; share the adapter's injected clock. */
  readonly now?: () => number;
}

/** A scripted answer: a status with Apple's reason, or no answer at all (to test timeouts). */
export type ApnsReply =
  | { readonly status: number; readonly reason?: string; readonly timestamp?: number; readonly retryAfter?: string | number }
  | { readonly hang: true };

export interface ApnsRecordedRequest {
  readonly token: string;
  readonly method: string;
  readonly path: string;
  /** Lower-case names, pseudo-headers left out. */
  readonly headers: Readonly<Record<string, string>>;
  readonly rawBody: string;
  /** The parsed payload, when it was JSON. */
  readonly body: unknown;
  readonly jwt?: string;
  readonly jwtHeader?: ProtectedHeaderParameters;
  /** The provider token's claims, when its signature verified. */
  readonly claims?: JWTPayload;
  /** What the server answered (undefined: it did not). */
  readonly status?: number;
  readonly reason?: string;
}

export interface ApnsServer {
  /** https://127.0.0.1:<port> */
  readonly url: string;
  /** The CA to trust for this server. */
  readonly ca: string;
  readonly requests: readonly ApnsRecordedRequest[];
  requestsFor(token: string): ApnsRecordedRequest[];
  /** Answers the token's next requests with these, in order (after the request passed validation); then 200 again. */
  respond(token: string, replies: readonly ApnsReply[]): void;
  /** 410 Unregistered with this timestamp for every later request to the token. */
  unregister(token: string, atMs: number): void;
  /** 400 BadDeviceToken from now on: what APNs says to a token of the other environment. */
  wrongEnvironment(token: string): void;
  /** Sends GOAWAY on every open connection and closes it, as APNs does when it rotates connections. */
  disconnect(): void;
  close(): Promise<void>;
}

const TOKEN_MAX_AGE_S = 3600;
const PAYLOAD_MAX_BYTES = 4096;
const COLLAPSE_ID_MAX_BYTES = 64;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PUSH_TYPES = new Set(["alert", "background", "location", "voip", "complication", "fileprovider", "mdm", "liveactivity", "pushtotalk", "widgets"]);

interface Answer {
  readonly status: number;
  readonly reason?: string;
  readonly timestamp?: number;
  readonly retryAfter?: string | number;
}


export async function startApnsServer(options: ApnsServerOptions): Promise<ApnsServer> {
  const tls = await testTls();
  const now = options.now ?? Date.now;
  const publicKey = typeof options.publicKey === "string" ? createPublicKey(options.publicKey) : options.publicKey;
  const requests: ApnsRecordedRequest[] = [];
  const scripted = new Map<string, ApnsReply[]>();
  const unregistered = new Map<string, number>();
  const otherEnvironment = new Set<string>();
  const sessions = new Set<http2.ServerHttp2Session>();

  /** Apple's provider-token checks, in the order a failure is reported. */
  async function checkToken(authorization: string | undefined): Promise<{ answer?: Answer; jwt?: string; jwtHeader?: ProtectedHeaderParameters; claims?: JWTPayload }> {
    const match = /^bearer (\S+)$/i.exec(authorization ?? "");
    if (match?.[1] === undefined) return { answer: { status: 403, reason: "MissingProviderToken" } };
    const jwt = match[1];
    let jwtHeader: ProtectedHeaderParameters;
    try {
      jwtHeader = decodeProtectedHeader(jwt);
    } catch {
      return { jwt, answer: { status: 403, reason: "InvalidProviderToken" } };
    }
    if (jwtHeader.alg !== "ES256" || jwtHeader.kid !== options.keyId) return { jwt, jwtHeader, answer: { status: 403, reason: "InvalidProviderToken" } };
    let claims: JWTPayload;
    try {
      const verified = await compactVerify(jwt, publicKey, { algorithms: ["ES256"] });
      claims = JSON.parse(new TextDecoder().decode(verified.payload)) as JWTPayload;
    } catch {
      return { jwt, jwtHeader, answer: { status: 403, reason: "InvalidProviderToken" } };
    }
    if (claims.iss !== options.teamId || typeof claims.iat !== "number") return { jwt, jwtHeader, claims, answer: { status: 403, reason: "InvalidProviderToken" } };
    if (Math.floor(now() / 1000) - claims.iat > TOKEN_MAX_AGE_S) return { jwt, jwtHeader, claims, answer: { status: 403, reason: "ExpiredProviderToken" } };
    return { jwt, jwtHeader, claims };
  }

  /** Header and payload checks; undefined when the request is well-formed. */
  function checkRequest(headers: Record<string, string>, rawBody: string): { answer?: Answer; body?: unknown } {
    const topic = headers["apns-topic"];
    if (topic === undefined) return { answer: { status: 400, reason: "MissingTopic" } };
    if (topic !== options.topic) return { answer: { status: 400, reason: "DeviceTokenNotForTopic" } };
    const pushType = headers["apns-push-type"];
    if (pushType !== undefined && !PUSH_TYPES.has(pushType)) return { answer: { status: 400, reason: "InvalidPushType" } };
    const priority = headers["apns-priority"];
    if (priority !== undefined && !["1", "5", "10"].includes(priority)) return { answer: { status: 400, reason: "BadPriority" } };
    const expiration = headers["apns-expiration"];
    if (expiration !== undefined && !/^\d+$/.test(expiration)) return { answer: { status: 400, reason: "BadExpirationDate" } };
    const id = headers["apns-id"];
    if (id !== undefined && !UUID.test(id)) return { answer: { status: 400, reason: "BadMessageId" } };
    const collapseId = headers["apns-collapse-id"];
    if (collapseId !== undefined && Buffer.byteLength(collapseId) > COLLAPSE_ID_MAX_BYTES) return { answer: { status: 400, reason: "BadCollapseId" } };
    if (rawBody.length === 0) return { answer: { status: 400, reason: "PayloadEmpty" } };
    if (Buffer.byteLength(rawBody) > PAYLOAD_MAX_BYTES) return { answer: { status: 413, reason: "PayloadTooLarge" } };
    let body: unknown;
    try {
      body = JSON.parse(rawBody);
    } catch {
      // Apple documents no reason for a payload that is not JSON; this one is ours.
      return { answer: { status: 400, reason: "BadPayload" } };
    }
    const aps = (body as { aps?: unknown } | null)?.aps;
    if (typeof aps !== "object" || aps === null) return { body, answer: { status: 400, reason: "BadPayload" } };
    return { body };
  }

  async function handle(stream: http2.ServerHttp2Stream, rawHeaders: http2.IncomingHttpHeaders, rawBody: string): Promise<void> {
    const method = String(rawHeaders[":method"]);
    const path = String(rawHeaders[":path"]);
    const headers = flatHeaders(rawHeaders);
    const token = /^\/3\/device\/([^/?]*)$/.exec(path)?.[1];
    const auth = await checkToken(headers.authorization);
    const request = checkRequest(headers, rawBody);

    let answer: Answer | undefined;
    if (method !== "POST") answer = { status: 405, reason: "MethodNotAllowed" };
    else if (token === undefined) answer = { status: 404, reason: "BadPath" };
    else if (token === "") answer = { status: 400, reason: "MissingDeviceToken" };
    else if (!/^[0-9a-f]+$/i.test(token)) answer = { status: 400, reason: "BadDeviceToken" };
    else answer = auth.answer ?? request.answer;

    let hang = false;
    if (answer === undefined && token !== undefined) {
      const goneAt = unregistered.get(token);
      if (goneAt !== undefined) answer = { status: 410, reason: "Unregistered", timestamp: goneAt };
      else if (otherEnvironment.has(token)) answer = { status: 400, reason: "BadDeviceToken" };
      else {
        const next = scripted.get(token)?.shift();
        if (next !== undefined && "hang" in next) hang = true;
        else if (next !== undefined) answer = next;
      }
    }
    answer ??= hang ? undefined : { status: 200 };

    requests.push({
      token: token ?? "",
      method,
      path,
      headers,
      rawBody,
      body: request.body,
      ...(auth.jwt === undefined ? {} : { jwt: auth.jwt }),
      ...(auth.jwtHeader === undefined ? {} : { jwtHeader: auth.jwtHeader }),
      ...(auth.claims === undefined ? {} : { claims: auth.claims }),
      ...(answer === undefined ? {} : { status: answer.status }),
      ...(answer?.reason === undefined ? {} : { reason: answer.reason }),
    });
    if (answer === undefined || stream.destroyed) return;

    const responseHeaders: http2.OutgoingHttpHeaders = { ":status": answer.status, "apns-id": headers["apns-id"] ?? randomUUID() };
    if (answer.retryAfter !== undefined) responseHeaders["retry-after"] = String(answer.retryAfter);
    if (answer.status === 200) {
      stream.respond(responseHeaders, { endStream: true });
      return;
    }
    responseHeaders["content-type"] = "application/json";
    stream.respond(responseHeaders);
    stream.end(JSON.stringify({ reason: answer.reason ?? "InternalServerError", ...(answer.timestamp === undefined ? {} : { timestamp: answer.timestamp }) }));
  }

  const server = http2.createSecureServer({ key: tls.key, cert: tls.cert });
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    session.on("error", () => {});
  });
  server.on("stream", (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", () => {});
    stream.on("end", () => {
      handle(stream, headers, Buffer.concat(chunks).toString("utf8")).catch(() => {
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `https://127.0.0.1:${port}`,
    ca: tls.ca,
    requests,
    requestsFor: (token) => requests.filter((r) => r.token === token),
    respond: (token, replies) => void scripted.set(token, [...(scripted.get(token) ?? []), ...replies]),
    unregister: (token, atMs) => void unregistered.set(token, atMs),
    wrongEnvironment: (token) => void otherEnvironment.add(token),
    disconnect: () => {
      for (const s of sessions) s.close();
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Sessions with unanswered (hung) streams would keep the server open forever.
      for (const s of sessions) s.destroy();
      await closed;
    },
  };
}
