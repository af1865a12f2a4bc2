// The HTTP plumbing the push adapters share: one request with a deadline and
// an abort signal, answered as status + headers + body or failed with a
// TransportError. The adapters turn both into verdicts; nothing here knows what
// a status means.
//
// Two transports, because the providers differ: APNs and FCM speak HTTP/2 and
// want one long-lived multiplexed connection (Apple asks for it explicitly);
// Web Push endpoints belong to whichever push service the browser uses, so they
// get plain HTTPS with a keep-alive agent, which every one of them accepts.

import http2 from "node:http2";
import https from "node:https";

export interface HttpRequest {
  readonly method: "GET" | "POST";
  /** Path and query, e.g. "/3/device/ab12". */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
  /** The whole exchange (connect, send, answer) must finish within this. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

export interface HttpResponse {
  readonly status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export type TransportFailure = "timeout" | "network" | "aborted";

/** The request got no answer: it may or may not have reached the provider. */
export class TransportError extends Error {
  readonly kind: TransportFailure;
  constructor(kind: TransportFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TransportError";
    this.kind = kind;
  }
}

// Provider answers are small JSON documents; anything bigger is not one, and
// buffering it without bound would let a broken endpoint exhaust memory.
const MAX_RESPONSE_BYTES = 64 * 1024;

function describe(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === undefined ? e.message : `${code}: ${e.message}`;
  }
  return String(e);
}

function normalizeHeaders(raw: Record<string, string | string[] | number | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined || name.startsWith(":")) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : String(value);
  }
  return out;
}

/**
 * Settles a request exactly once, whichever of answer, error, deadline or
 * abort comes first, and always clears the timer and the abort listener.
 */
function settleOnce(
  request: Pick<HttpRequest, "timeoutMs" | "signal">,
  resolve: (r: HttpResponse) => void,
  reject: (e: TransportError) => void,
  cancel: () => void,
): { ok: (r: HttpResponse) => void; fail: (e: TransportError) => void } {
  let done = false;
  const cleanup = (): void => {
    done = true;
    clearTimeout(timer);
    request.signal?.removeEventListener("abort", onAbort);
  };
  const fail = (e: TransportError): void => {
    if (done) return;
    cleanup();
    cancel();
    reject(e);
  };
  const ok = (r: HttpResponse): void => {
    if (done) return;
    cleanup();
    resolve(r);
  };
  const onAbort = (): void => fail(new TransportError("aborted", "request aborted by the caller"));
  const timer = setTimeout(() => fail(new TransportError("timeout", `no answer within ${request.timeoutMs}ms`)), request.timeoutMs);
  request.signal?.addEventListener("abort", onAbort, { once: true });
  return { ok, fail };
}

/** Collects a response body up to MAX_RESPONSE_BYTES (the rest is dropped). */
function bodyCollector(): { add: (chunk: Buffer | string) => void; text: () => string } {
  const chunks: Buffer[] = [];
  let size = 0;
  return {
    add: (chunk) => {
      const b = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      if (size >= MAX_RESPONSE_BYTES) return;
      chunks.push(b.subarray(0, MAX_RESPONSE_BYTES - size));
      size += b.length;
    },
    text: () => Buffer.concat(chunks).toString("utf8"),
  };
}

// ---------------------------------------------------------------- HTTP/2

export interface Http2Client {
  request(request: HttpRequest): Promise<HttpResponse>;
  /** Closes the connection after in-flight streams finish. */
  close(): Promise<void>;
}

export interface Http2ClientOptions {
  /** Extra trusted CA (PEM), for test servers with a self-signed certificate. */
  readonly ca?: string;
}

/**
 * One HTTP/2 connection to `origin`, opened on first use and reopened on the
 * next request after it closes, errors or receives GOAWAY (providers rotate
 * connections; a request already refused by the old one fails as "network").
 */
export function createHttp2Client(origin: URL | string, options: Http2ClientOptions = {}): Http2Client {
  const target = new URL(origin).origin;
  let session: http2.ClientHttp2Session | undefined;
  let closed = false;

  function current(): http2.ClientHttp2Session {
    if (session !== undefined && !session.closed && !session.destroyed) return session;
    const s = http2.connect(target, options.ca === undefined ? {} : { ca: options.ca });
    const forget = (): void => {
      if (session === s) session = undefined;
    };
    // Errors also reach every open stream, which reports them; the session
    // listener only has to exist (an unhandled 'error' would crash the process).
    s.on("error", forget);
    s.on("goaway", forget);
    s.on("close", forget);
    session = s;
    return s;
  }

  function request(req: HttpRequest): Promise<HttpResponse> {
    return new Promise<HttpResponse>((resolve, reject) => {
      if (closed) return reject(new TransportError("network", "client closed"));
      if (req.signal?.aborted === true) return reject(new TransportError("aborted", "request aborted by the caller"));
      let stream: http2.ClientHttp2Stream | undefined;
      const { ok, fail } = settleOnce(req, resolve, reject, () => {
        if (stream !== undefined && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
      });
      try {
        stream = current().request({ ":method": req.method, ":path": req.path, ...req.headers });
      } catch (e) {
        // e.g. ERR_HTTP2_GOAWAY_SESSION in the instant between GOAWAY and our listener.
        session = undefined;
        return fail(new TransportError("network", describe(e), { cause: e }));
      }
      let status = 0;
      let headers: Record<string, string> = {};
      const body = bodyCollector();
      stream.on("response", (h) => {
        status = Number(h[":status"]);
        headers = normalizeHeaders(h);
      });
      stream.on("data", body.add);
      stream.on("end", () => {
        if (status === 0) fail(new TransportError("network", "stream ended without a response"));
        else ok({ status, headers, body: body.text() });
      });
      stream.on("error", (e) => fail(new TransportError("network", describe(e), { cause: e })));
      stream.on("close", () => {
        // A stream reset by the peer (or its connection dropped) closes without 'end'.
        if (status === 0 || !stream?.readableEnded) fail(new TransportError("network", `stream closed (code ${stream?.rstCode ?? "?"})`));
      });
      stream.end(req.body);
    });
  }

  async function close(): Promise<void> {
    closed = true;
    const s = session;
    session = undefined;
    if (s === undefined || s.destroyed) return;
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  return { request, close };
}

// ---------------------------------------------------------------- HTTPS (1.1)

export interface HttpsClient {
  /** The path comes from `url`. */
  request(url: URL, request: Omit<HttpRequest, "path">): Promise<HttpResponse>;
  close(): Promise<void>;
}

/** HTTPS requests to any host, over one keep-alive agent. */
export function createHttpsClient(options: Http2ClientOptions = {}): HttpsClient {
  const agent = new https.Agent({ keepAlive: true, ...(options.ca === undefined ? {} : { ca: options.ca }) });
  let closed = false;

  function request(url: URL, req: Omit<HttpRequest, "path">): Promise<HttpResponse> {
    return new Promise<HttpResponse>((resolve, reject) => {
      if (closed) return reject(new TransportError("network", "client closed"));
      if (req.signal?.aborted === true) return reject(new TransportError("aborted", "request aborted by the caller"));
      let outgoing: ReturnType<typeof https.request> | undefined;
      const { ok, fail } = settleOnce(req, resolve, reject, () => outgoing?.destroy());
      const body = bodyCollector();
      outgoing = https.request(url, { method: req.method, headers: req.headers, agent }, (res) => {
        res.on("data", body.add);
        res.on("end", () => ok({ status: res.statusCode ?? 0, headers: normalizeHeaders(res.headers), body: body.text() }));
        res.on("error", (e) => fail(new TransportError("network", describe(e), { cause: e })));
      });
      outgoing.on("error", (e) => fail(new TransportError("network", describe(e), { cause: e })));
      outgoing.end(req.body);
    });
  }

  async function close(): Promise<void> {
    closed = true;
    agent.destroy();
  }

  return { request, close };
}

// ---------------------------------------------------------------- Retry-After

/**
 * Milliseconds to wait from a Retry-After value (RFC 9110 §10.2.3: delay in
 * seconds, or an HTTP date), or undefined when absent or unreadable. A date in
 * the past means "now" (0).
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}
