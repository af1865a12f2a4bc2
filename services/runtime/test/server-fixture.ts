// A real server on port 0 for the server-*.test.ts suites. The service under
// test is grpc.health.v1.Health (served by the runtime) plus AuthService
// registered with stub handlers that exist only here, each shaped to exercise
// one runtime behaviour.
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { generateKeyPair, exportJWK, SignJWT } from "jose";
import type { JWK } from "jose";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ServiceImpl } from "@connectrpc/connect";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { createLogger } from "../src/log.ts";
import { startTelemetry } from "../src/telemetry.ts";
import type { Telemetry } from "../src/telemetry.ts";
import { startServer } from "../src/server.ts";
import type { RunningServer, ServerOptions } from "../src/server.ts";
import { createTokenVerifier } from "../src/auth/verifier.ts";
import { getPeer, requirePrincipal } from "../src/context.ts";
import { resourceExhausted } from "../src/errors.ts";

export const ISSUER = "https://auth.aviary.test";
export const AUDIENCE = "aviary";

/**
 * The `x-test-call` header values of the slow handlers' calls that have
 * started running: a test waits for its calls to be inside their handlers
 * instead of sleeping and hoping they got there.
 */
export const enteredHandlers = new Set<string>();

function entered(ctx: { requestHeader: Headers }): void {
  const marker = ctx.requestHeader.get("x-test-call");
  if (marker !== null) enteredHandlers.add(marker);
}

/**
 * For `abort-vs-200` calls (by `x-test-call`): whether the handler's signal
 * aborted before a 200 ms timer the handler set on entry. Node fires timers
 * in order of due time, so a deadline shorter than 200 ms from the call's
 * start always aborts first, however busy the machine: a test can tell which
 * deadline ended a call without reading a clock.
 */
export const abortOrder = new Map<string, "signal first" | "200 ms first">();

/** Stub AuthService: what each method does is chosen for the tests, not for auth semantics. */
export const stubAuth: Partial<ServiceImpl<typeof AuthService>> = {
  // Public; echoes the identity (validation runs before this).
  register(req) {
    return { userId: "u-1", identity: req.identity.case === undefined ? "" : String(req.identity.value), verificationRequired: true };
  },
  // Public; fails like a careless data layer would.
  login() {
    const e = new Error('duplicate key value violates unique constraint "users_email_key": INSERT INTO auth.users (email) VALUES ($1)');
    throw e;
  },
  // Public; a deliberate error with details and metadata.
  requestPasswordReset() {
    throw resourceExhausted("too many requests", 42);
  },
  // Protected; reports who and where from.
  getMe(_req, ctx) {
    const principal = requirePrincipal(ctx);
    const peer = getPeer(ctx);
    return { userId: principal.userId, sessionId: principal.sessionId, email: peer.ip, phone: peer.userAgent };
  },
  // Public; slow or deadline-bound depending on page_token.
  async listSessions(req, ctx) {
    entered(ctx);
    if (req.pageToken === "abort-vs-200") {
      const marker = ctx.requestHeader.get("x-test-call") ?? "";
      const timer = setTimeout(() => abortOrder.set(marker, abortOrder.get(marker) ?? "200 ms first"), 200);
      await new Promise<void>((_, reject) =>
        ctx.signal.addEventListener(
          "abort",
          () => {
            clearTimeout(timer);
            abortOrder.set(marker, abortOrder.get(marker) ?? "signal first");
            reject(ctx.signal.reason as Error);
          },
          { once: true },
        ),
      );
    }
    if (req.pageToken === "observe-signal") {
      await new Promise<void>((_, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason as Error), { once: true }));
    }
    const ms = Number(/^sleep-(\d+)$/.exec(req.pageToken)?.[1] ?? "0");
    await sleep(ms); // deliberately ignores the signal
    return { sessions: [], nextPageToken: `slept ${ms}` };
  },
  // Public; a handler that gives up with a raw AbortError when its signal fires.
  async changePassword(_req, ctx) {
    entered(ctx);
    await sleep(10_000, undefined, { signal: ctx.signal });
    return {};
  },
  getJwks() {
    return { keys: [] };
  },
};

export interface Fixture {
  server: RunningServer;
  telemetry: Telemetry;
  url: string;
  spans: InMemorySpanExporter;
  logs: Record<string, unknown>[];
  token: (claims?: Record<string, unknown>) => Promise<string>;
  revoked: Set<string>;
  setReady: (ready: boolean) => void;
  close: () => Promise<void>;
}

export async function startFixture(overrides: Partial<ServerOptions> = {}): Promise<Fixture> {
  const spans = new InMemorySpanExporter();
  const telemetry = startTelemetry({ serviceName: "runtime-test", spanExporter: spans });
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger("runtime-test", "debug", {
    destination: { write: (s: string) => void logs.push(JSON.parse(s) as Record<string, unknown>) },
  });

  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" };
  const verifier = createTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: () => ({ keys: [jwk] }) });
  const token = (claims: Record<string, unknown> = {}) => {
    const now = Math.floor(Date.now() / 1000);
    const payload = { iss: ISSUER, aud: AUDIENCE, sub: "u-1", sid: "s-1", jti: crypto.randomUUID(), iat: now, exp: now + 300, ...claims };
    return new SignJWT(payload).setProtectedHeader({ alg: "ES256", kid: "k1" }).sign(privateKey);
  };

  const revoked = new Set<string>();
  let ready = true;
  const server = await startServer({
    name: "runtime-test",
    port: 0,
    routes: (router) => router.service(AuthService, stubAuth),
    readiness: [
      {
        name: "database",
        check: async () => {
          if (!ready) throw new Error("connection refused (db.internal:5432)");
        },
      },
    ],
    auth: {
      verifier,
      publicProcedures: ["Register", "Login", "RequestPasswordReset", "ListSessions", "ChangePassword", "GetJwks"].map(
        (m) => `aviary.auth.v1.AuthService/${m}`,
      ),
      isSessionRevoked: async (sid) => revoked.has(sid),
    },
    deadlines: { defaultTimeoutMs: 300, maxTimeoutMs: 600 },
    logger,
    telemetry,
    shutdownTimeoutMs: 2_000,
    ...overrides,
  });
  return {
    server,
    telemetry,
    url: server.url,
    spans,
    logs,
    token,
    revoked,
    setReady: (r) => {
      ready = r;
    },
    close: async () => {
      await server.close();
      await telemetry.shutdown();
    },
  };
}

export interface HttpResult {
  status: number;
  httpVersion: string;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: Record<string, unknown>;
}

/** A plain HTTP/1.1 request (node:http, so the protocol version is certain), like curl would send. */
export function http1(url: string, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method: init.method ?? "GET", headers: init.headers, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => {
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, httpVersion: res.httpVersion, headers: res.headers, text, json });
      });
    });
    req.on("error", reject);
    req.end(init.body);
  });
}

/** The Connect protocol's unary JSON call over HTTP/1.1. */
export function connectJson(url: string, procedure: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpResult> {
  return http1(url, `/${procedure}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
}

export { Code, ConnectError };
