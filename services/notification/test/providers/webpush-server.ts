// A local Web Push service (RFC 8030) that also plays the browser: subscribe()
// makes a subscription with a fresh P-256 key pair and auth secret, and every
// push is checked like a push service checks it (VAPID, RFC 8292) and then
// DECRYPTED like the browser would (RFC 8291 over RFC 8188 aes128gcm), with
// node:crypto alone, so a test proves the payload encryption right
// independently of the library that produced it.

import { createDecipheriv, createECDH, hkdfSync, randomBytes, randomUUID, type ECDH } from "node:crypto";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { importJWK, jwtVerify, type JWTPayload } from "jose";
import { testTls } from "./tls.ts";

export interface WebPushServerOptions {
  /** When set, pushes signed with any other VAPID key get 403 (the subscription's applicationServerKey). */
  readonly vapidPublicKey?: string;
  /** The server's clock (ms) for VAPID expiry; share the adapter's injected clock. */
  readonly now?: () => number;
}

/** What a browser's PushSubscription.toJSON() returns. */
export interface TestSubscription {
  readonly endpoint: string;
  readonly expirationTime: null;
  readonly keys: { readonly p256dh: string; readonly auth: string };
}

export type WebPushReply = { readonly status: number; readonly retryAfter?: string | number; readonly body?: string } | { readonly hang: true };

export interface WebPushRecordedRequest {
  /** The subscription id (the last path segment). */
  readonly id: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly ttl?: string;
  readonly topic?: string;
  readonly urgency?: string;
  readonly contentEncoding?: string;
  /** The VAPID JWT's claims and the `k` public key, when they verified. */
  readonly vapid?: { readonly claims: JWTPayload; readonly publicKey: string };
  /** The decrypted payload, when decryption succeeded. */
  readonly payload?: string;
  readonly status?: number;
  /** Why the server refused it, when it did. */
  readonly problem?: string;
}

export interface WebPushServer {
  /** https://127.0.0.1:<port> */
  readonly url: string;
  readonly ca: string;
  readonly requests: readonly WebPushRecordedRequest[];
  requestsFor(id: string): WebPushRecordedRequest[];
  /** A new subscription on this server, as the browser would hand it to the app. */
  subscribe(): TestSubscription;
  /** The id of a subscription (for gone/respond/requestsFor). */
  idOf(subscription: TestSubscription): string;
  /** 410 Gone from now on (the user revoked permission). */
  gone(id: string): void;
  /** Answers the subscription's next pushes with these, in order (after validation); then 201 again. */
  respond(id: string, replies: readonly WebPushReply[]): void;
  close(): Promise<void>;
}

const MAX_PAYLOAD_BYTES = 4096;
const MAX_VAPID_EXPIRY_S = 24 * 3600;
const TAG_BYTES = 16;

class Refusal extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function hkdf(ikm: Buffer, salt: Buffer, info: Buffer, length: number): Buffer {
  return Buffer.from(hkdfSync("sha256", ikm, salt, info, length));
}

/**
 * RFC 8291 §3 + RFC 8188 §2: decrypts an aes128gcm body for the user agent
 * holding `receiver` (its P-256 key pair) and `authSecret`.
 */
export function decryptWebPush(body: Buffer, receiver: ECDH, authSecret: Buffer): Buffer {
  if (body.length < 21) throw new Error("body shorter than the aes128gcm header");
  const salt = body.subarray(0, 16);
  const recordSize = body.readUInt32BE(16);
  const idLength = body.readUInt8(20);
  // Web Push puts the sender's ephemeral public key in the key id (§4).
  if (idLength !== 65) throw new Error(`keyid must be the 65-byte sender public key (got ${idLength} bytes)`);
  if (recordSize < TAG_BYTES + 2) throw new Error(`record size ${recordSize} too small`);
  const senderPublic = body.subarray(21, 21 + idLength);
  const ciphertext = body.subarray(21 + idLength);

  const receiverPublic = receiver.getPublicKey();
  const ecdhSecret = receiver.computeSecret(senderPublic);
  const keyInfo = Buffer.concat([Buffer.from("WebPush: info\0"), receiverPublic, senderPublic]);
  const ikm = hkdf(ecdhSecret, authSecret, keyInfo, 32);
  const cek = hkdf(ikm, salt, Buffer.from("Content-Encoding: aes128gcm\0"), 16);
  const baseNonce = hkdf(ikm, salt, Buffer.from("Content-Encoding: nonce\0"), 12);

  const plain: Buffer[] = [];
  const records = Math.ceil(ciphertext.length / recordSize);
  if (records === 0) throw new Error("no records");
  for (let seq = 0; seq < records; seq++) {
    const record = ciphertext.subarray(seq * recordSize, (seq + 1) * recordSize);
    if (record.length <= TAG_BYTES) throw new Error(`record ${seq} too short`);
    // The nonce of record `seq` is the base nonce XOR seq (as a 96-bit big-endian integer).
    const nonce = Buffer.from(baseNonce);
    // (Records are far fewer than 2^32, so only the low 32 bits change.)
    nonce.writeUInt32BE((nonce.readUInt32BE(8) ^ seq) >>> 0, 8);
    const decipher = createDecipheriv("aes-128-gcm", cek, nonce);
    decipher.setAuthTag(record.subarray(record.length - TAG_BYTES));
    const padded = Buffer.concat([decipher.update(record.subarray(0, record.length - TAG_BYTES)), decipher.final()]);
    // Padding: the data, one delimiter byte (2 for the last record, 1 before), then zeros.
    let end = padded.length - 1;
    while (end >= 0 && padded[end] === 0) end--;
    const last = seq === records - 1;
    if (end < 0 || padded[end] !== (last ? 2 : 1)) throw new Error(`record ${seq}: bad padding delimiter`);
    plain.push(padded.subarray(0, end));
  }
  return Buffer.concat(plain);
}

/** `Authorization: vapid t=<jwt>, k=<public key>` (RFC 8292 §3). */
async function verifyVapid(authorization: string | undefined, audience: string, nowMs: number, expectedKey: string | undefined): Promise<{ claims: JWTPayload; publicKey: string }> {
  const match = /^vapid\s+(.+)$/i.exec(authorization ?? "");
  if (match?.[1] === undefined) throw new Refusal(401, "missing vapid authorization");
  const params = new Map<string, string>();
  for (const part of match[1].split(",")) {
    const eq = part.indexOf("=");
    if (eq > 0) params.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const jwt = params.get("t");
  const k = params.get("k");
  if (jwt === undefined || k === undefined) throw new Refusal(401, "vapid authorization needs t and k");
  const point = Buffer.from(k, "base64url");
  if (point.length !== 65 || point[0] !== 4) throw new Refusal(401, "k is not an uncompressed P-256 point");
  if (expectedKey !== undefined && k !== expectedKey) throw new Refusal(403, "k is not the subscription's application server key");
  const key = await importJWK({ kty: "EC", crv: "P-256", x: point.subarray(1, 33).toString("base64url"), y: point.subarray(33).toString("base64url") }, "ES256");
  let claims: JWTPayload;
  try {
    ({ payload: claims } = await jwtVerify(jwt, key, { algorithms: ["ES256"], audience, currentDate: new Date(nowMs), requiredClaims: ["exp"] }));
  } catch (e) {
    throw new Refusal(401, `vapid token: ${e instanceof Error ? e.message : String(e)}`);
  }
  if ((claims.exp ?? 0) > Math.floor(nowMs / 1000) + MAX_VAPID_EXPIRY_S) throw new Refusal(401, "vapid token expires more than 24 hours ahead");
  if (typeof claims.sub !== "string" || !/^(mailto:|https:)/.test(claims.sub)) throw new Refusal(401, "vapid token needs a mailto: or https: sub");
  return { claims, publicKey: k };
}

export async function startWebPushServer(options: WebPushServerOptions = {}): Promise<WebPushServer> {
  const tls = await testTls();
  const now = options.now ?? Date.now;
  const subscriptions = new Map<string, { receiver: ECDH; auth: Buffer }>();
  const gone = new Set<string>();
  const scripted = new Map<string, WebPushReply[]>();
  const requests: WebPushRecordedRequest[] = [];
  const sockets = new Set<Socket>();
  let url = "";

  async function handle(method: string, path: string, headers: Record<string, string>, body: Buffer): Promise<{ status: number; headers?: Record<string, string>; body?: string } | "hang"> {
    const id = /^\/push\/([A-Za-z0-9_-]+)$/.exec(path)?.[1];
    const base = { id: id ?? "", headers, ...pick(headers) };
    const refuse = (status: number, problem: string, extra: Partial<WebPushRecordedRequest> = {}): { status: number; body: string } => {
      requests.push({ ...base, ...extra, status, problem });
      return { status, body: problem };
    };
    if (method !== "POST") return refuse(405, "method not allowed");
    const subscription = id === undefined ? undefined : subscriptions.get(id);
    if (id === undefined || subscription === undefined) return refuse(404, "no such subscription");
    if (gone.has(id)) return refuse(410, "subscription expired");

    let vapid: { claims: JWTPayload; publicKey: string };
    try {
      vapid = await verifyVapid(headers.authorization, url, now(), options.vapidPublicKey);
    } catch (e) {
      if (e instanceof Refusal) return refuse(e.status, e.message);
      throw e;
    }
    const ttl = headers.ttl;
    if (ttl === undefined || !/^\d+$/.test(ttl)) return refuse(400, "TTL header missing or not a number", { vapid });
    if (headers.urgency !== undefined && !["very-low", "low", "normal", "high"].includes(headers.urgency)) return refuse(400, "bad Urgency", { vapid });
    if (headers.topic !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(headers.topic)) return refuse(400, "Topic must be at most 32 base64url characters", { vapid });
    if (body.length > MAX_PAYLOAD_BYTES) return refuse(413, "payload too large", { vapid });
    let payload: string | undefined;
    if (body.length > 0) {
      if (headers["content-encoding"] !== "aes128gcm") return refuse(415, "Content-Encoding must be aes128gcm", { vapid });
      try {
        payload = decryptWebPush(body, subscription.receiver, subscription.auth).toString("utf8");
      } catch (e) {
        return refuse(400, `cannot decrypt: ${e instanceof Error ? e.message : String(e)}`, { vapid });
      }
    }
    const recorded = { ...base, vapid, ...(payload === undefined ? {} : { payload }) };
    const next = scripted.get(id)?.shift();
    if (next !== undefined && "hang" in next) {
      requests.push(recorded);
      return "hang";
    }
    if (next !== undefined && next.status !== 201) {
      requests.push({ ...recorded, status: next.status });
      return { status: next.status, headers: next.retryAfter === undefined ? {} : { "retry-after": String(next.retryAfter) }, body: next.body ?? "" };
    }
    requests.push({ ...recorded, status: 201 });
    return { status: 201, headers: { location: `${url}/message/${randomUUID()}` } };
  }

  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
      handle(req.method ?? "", req.url ?? "", headers, Buffer.concat(chunks)).then(
        (reply) => {
          if (reply === "hang") return;
          res.writeHead(reply.status, reply.headers ?? {});
          res.end(reply.body ?? "");
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
    });
  });
  server.on("secureConnection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const idOf = (s: TestSubscription): string => new URL(s.endpoint).pathname.split("/").pop() ?? "";

  return {
    url,
    ca: tls.ca,
    requests,
    requestsFor: (id) => requests.filter((r) => r.id === id),
    subscribe: () => {
      const receiver = createECDH("prime256v1");
      receiver.generateKeys();
      const auth = randomBytes(16);
      const id = randomUUID().replaceAll("-", "");
      subscriptions.set(id, { receiver, auth });
      return { endpoint: `${url}/push/${id}`, expirationTime: null, keys: { p256dh: receiver.getPublicKey().toString("base64url"), auth: auth.toString("base64url") } };
    },
    idOf,
    gone: (id) => void gone.add(id),
    respond: (id, replies) => void scripted.set(id, [...(scripted.get(id) ?? []), ...replies]),
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

function pick(headers: Record<string, string>): Pick<WebPushRecordedRequest, "ttl" | "topic" | "urgency" | "contentEncoding"> {
  return {
    ...(headers.ttl === undefined ? {} : { ttl: headers.ttl }),
    ...(headers.topic === undefined ? {} : { topic: headers.topic }),
    ...(headers.urgency === undefined ? {} : { urgency: headers.urgency }),
    ...(headers["content-encoding"] === undefined ? {} : { contentEncoding: headers["content-encoding"] }),
  };
}
