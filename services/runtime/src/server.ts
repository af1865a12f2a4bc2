// The RPC server every service runs: one TCP port that speaks gRPC (HTTP/2
// cleartext), gRPC-web and Connect (HTTP/1.1 or HTTP/2), plus /healthz,
// /readyz and /metrics, with the standard interceptor chain and a graceful
// shutdown that drains calls and ends streams with a status.
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createLogger } from "./log.ts";
import type { Logger } from "./log.ts";
import { ConfigError } from "./config.ts";
import type { Telemetry } from "./telemetry.ts";
import { createHealth, HealthService } from "./health.ts";
import { createReflectionIndex, REFLECTION_PROCEDURES, reflectionV1, reflectionV1Alpha, ServerReflectionV1, ServerReflectionV1Alpha } from "./reflection.ts";
import type { Health, ReadinessCheck } from "./health.ts";
import { peerKey } from "./context.ts";
import type { Peer } from "./context.ts";
import { peerFrom } from "./peer.ts";
import { createTracingInterceptor } from "./interceptors/tracing.ts";
import { createErrorSanitizer, createErrorsInterceptor } from "./interceptors/errors.ts";
import { createDeadlineInterceptor } from "./interceptors/deadline.ts";
import type { DeadlineOptions } from "./interceptors/deadline.ts";
import { createAuthInterceptor, createCallAuthenticator } from "./interceptors/auth.ts";
import type { AuthOptions } from "./interceptors/auth.ts";
import { createValidationInterceptor } from "./interceptors/validation.ts";
import { createDirectStreams, type DirectServerStream } from "./direct-stream.ts";
import { createGrpcJsServer, recordingRouter, type MethodSpecs } from "./grpc-js/server.ts";
import { announceWorkerReady, isServiceWorker, onSupervisorGone, processCountFromEnv, superviseWorkers } from "./processes.ts";

export type HttpRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type HttpResponse = http.ServerResponse | http2.Http2ServerResponse;
/** A plain HTTP endpoint served next to the RPCs (exact path match). */
export type HttpHandler = (req: HttpRequest, res: HttpResponse) => void | Promise<void>;

export interface ServerOptions {
  /** Service name, for logs. */
  name: string;
  /** Interface to bind (default 127.0.0.1; "0.0.0.0" in containers). */
  host?: string;
  /** 0 picks any free port. */
  port: number;
  /** Registers the service implementations. grpc.health.v1.Health and gRPC reflection (v1, v1alpha) are added by the server. */
  routes: (router: ConnectRouter) => void;
  /** Service-specific interceptors, run after the standard chain (closest to the handler). */
  interceptors?: Interceptor[];
  /** Dependencies that must answer for /readyz and gRPC health to say SERVING. */
  readiness: readonly ReadinessCheck[];
  /** Extra HTTP endpoints by exact path (e.g. a JWKS document). */
  httpRoutes?: Record<string, HttpHandler>;
  /** Token verification; without it every procedure is public (a warning is logged). */
  auth?: AuthOptions;
  logger: Logger;
  telemetry: Telemetry;
  /** Budget for draining in-flight unary calls on close (default 10 s). */
  shutdownTimeoutMs?: number;
  /** Default and maximum deadlines. */
  deadlines?: DeadlineOptions;
  /** Largest accepted request message (default 1 MiB). */
  readMaxBytes?: number;
  /**
   * Number of trusted reverse proxies in front of this server (default 0).
   * With N > 0 the client IP is the N-th x-forwarded-for entry from the right
   * (the address the outermost trusted proxy saw); entries further left are
   * client-supplied and never trusted. With 0 the socket address is used.
   */
  trustedProxyHops?: number;
  /** Per readiness check time budget (default 2 s). */
  readinessTimeoutMs?: number;
  /**
   * Ends long-lived streams gracefully on close (e.g. a last "reconnect
   * elsewhere" frame), after new calls are refused and while unary calls
   * drain. Streams still open when it resolves are aborted with UNAVAILABLE.
   */
  endStreams?: () => Promise<void>;
  /**
   * Server-streaming methods (also registered in `routes`) whose plain gRPC
   * calls are written straight onto the HTTP/2 stream, for streams held by
   * the thousand (direct-stream.ts); other protocols still go through `routes`.
   */
  directStreams?: readonly DirectServerStream[];
  /**
   * Also serve every RPC of `routes` (health and reflection included) over
   * @grpc/grpc-js on this port (0 picks a free one): the same handlers
   * behind the same interceptor chain and shutdown, for internal callers on
   * the grpc-js transport (grpc-js/server.ts). Unset: not served.
   */
  grpcJsPort?: number;
}

export interface RunningServer {
  /** Base URL, e.g. "http://127.0.0.1:43121". */
  readonly url: string;
  readonly port: number;
  /** Where the grpc-js listener is ("http://127.0.0.1:43122"), when `grpcJsPort` was given. */
  readonly grpcJsUrl?: string;
  /**
   * What peers put in their URL setting to call this server: the grpc-js
   * listener as "grpc://127.0.0.1:43122" when there is one (the client then
   * calls over grpc-js, interceptors/client.ts), else `url`.
   */
  readonly peerUrl: string;
  readonly health: Health;
  /** Graceful shutdown; idempotent. */
  close(): Promise<void>;
}

// The HTTP/2 client connection preface. Node's cleartext http2 server ignores
// `allowHTTP1` (that option only works with TLS/ALPN), so the first bytes of
// each connection decide which server gets the socket.
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const SNIFF_TIMEOUT_MS = 10_000;
// connect rejects client deadlines above maxTimeoutMs with InvalidArgument; the
// deadline interceptor shortens long ones instead. This ceiling only stops
// absurd values: Node timers overflow above 2^31-1 ms and would fire at once.
const PROTOCOL_MAX_TIMEOUT_MS = 24 * 3_600_000;
const HEALTH_PROCEDURES = HealthService.methods.map((m) => `${HealthService.typeName}/${m.name}`);

/** Counts things in flight and lets shutdown wait until none are left. */
class InFlight {
  #count = 0;
  #idle: (() => void)[] = [];
  enter(): void {
    this.#count++;
  }
  leave(): void {
    this.#count--;
    if (this.#count === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }
  get count(): number {
    return this.#count;
  }
  /** Resolves when nothing is in flight or after `ms`. */
  idle(ms: number): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, ms));
      this.#idle.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export function peerOf(req: HttpRequest, trustedProxyHops: number): Peer {
  return peerFrom(req.socket?.remoteAddress ?? "", (name) => firstHeader(req.headers[name]), trustedProxyHops);
}

/** Writes a complete response on either an HTTP/1.1 or an HTTP/2 response object. */
export function respond(res: HttpResponse, status: number, headers: Record<string, string>, body?: string): void {
  // The two response classes have incompatible writeHead overloads; narrow first.
  if (res instanceof http2.Http2ServerResponse) res.writeHead(status, headers);
  else res.writeHead(status, headers);
  if (body === undefined) res.end();
  else res.end(body);
}

function sendJson(res: HttpResponse, status: number, body: unknown): void {
  respond(res, status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" }, JSON.stringify(body));
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { logger, telemetry } = options;
  const host = options.host ?? "127.0.0.1";
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? 10_000;
  const trustedProxyHops = options.trustedProxyHops ?? 0;
  const readMaxBytes = options.readMaxBytes ?? 1024 * 1024;

  const served = new Set<string>();
  const health = createHealth({
    checks: options.readiness,
    services: () => served,
    logger,
    ...(options.readinessTimeoutMs === undefined ? {} : { checkTimeoutMs: options.readinessTimeoutMs }),
  });

  let closing: Promise<void> | undefined;
  const shutdown = new AbortController();
  const unaryCalls = new InFlight();
  const responses = new InFlight();

  // Outermost: refuses calls that arrive once shutdown began, and counts unary
  // calls so close() can wait for them.
  const drain: Interceptor = (next) => async (req) => {
    if (closing !== undefined) throw new ConnectError("server is shutting down", Code.Unavailable);
    if (req.method.methodKind !== "unary") return next(req);
    unaryCalls.enter();
    try {
      return await next(req);
    } finally {
      unaryCalls.leave();
    }
  };

  if (options.auth === undefined) logger.warn("no auth configured: every procedure is public");
  const auth = options.auth === undefined ? undefined : { ...options.auth, publicProcedures: [...(options.auth.publicProcedures ?? []), ...HEALTH_PROCEDURES, ...REFLECTION_PROCEDURES] };
  const interceptors: Interceptor[] = [
    drain,
    createTracingInterceptor(telemetry),
    createErrorsInterceptor(logger),
    createDeadlineInterceptor(options.deadlines),
    ...(auth === undefined ? [] : [createAuthInterceptor(auth, logger)]),
    createValidationInterceptor(),
    ...(options.interceptors ?? []),
  ];

  const grpcJsSpecs: MethodSpecs | undefined = options.grpcJsPort === undefined ? undefined : [];
  const rpc = connectNodeAdapter({
    routes(connectRouter) {
      const router = grpcJsSpecs === undefined ? connectRouter : recordingRouter(connectRouter, grpcJsSpecs);
      router.service(HealthService, health.impl);
      options.routes(router);
      // Reflection describes what is served (itself included), so it goes last.
      const reflection = createReflectionIndex([...new Set(router.handlers.map((h) => h.service)), ServerReflectionV1, ServerReflectionV1Alpha]);
      router.service(ServerReflectionV1, reflectionV1(reflection));
      router.service(ServerReflectionV1Alpha, reflectionV1Alpha(reflection));
      for (const h of router.handlers) served.add(h.service.typeName);
    },
    interceptors,
    grpc: true,
    grpcWeb: true,
    connect: true,
    readMaxBytes,
    // Answers are never compressed, whatever the client accepts: a service
    // answers the edge and its peers on loopback or in the cluster, where
    // gzip costs more CPU than the bytes it saves (a cached GetHomeFeed page
    // gzipped for ghz, a Go client that asks for it, was 6 % of the feed's
    // time); compression for clients belongs to the edge. Compressed requests
    // are still accepted. (The grpc-js listener compresses nothing either.)
    compressMinBytes: Number.MAX_SAFE_INTEGER,
    maxTimeoutMs: PROTOCOL_MAX_TIMEOUT_MS,
    shutdownSignal: shutdown.signal,
    // Unknown JSON fields are an error (protobuf-es' default, stated here
    // because the design relies on it: a misspelt field must not be ignored).
    jsonOptions: { ignoreUnknownFields: false },
    contextValues: (req) => createContextValues().set(peerKey, peerOf(req, trustedProxyHops)),
  });

  const direct = createDirectStreams(options.directStreams ?? [], {
    telemetry,
    authenticate: auth === undefined ? undefined : createCallAuthenticator(auth, logger),
    sanitize: createErrorSanitizer(logger),
    deadlines: options.deadlines,
    readMaxBytes,
    peer: (req) => peerOf(req, trustedProxyHops),
    closing: () => closing !== undefined,
  });

  const builtins: Record<string, HttpHandler> = {
    "/healthz": (_req, res) => sendJson(res, 200, { status: "ok" }),
    "/readyz": async (_req, res) => {
      const report = await health.readiness();
      if (health.shuttingDown) sendJson(res, 503, { status: "shutting_down", failing: [] });
      else if (report.ready) sendJson(res, 200, { status: "ok" });
      else sendJson(res, 503, { status: "unavailable", failing: report.failing });
    },
    "/metrics": telemetry.metricsHandler,
  };
  const httpRoutes = options.httpRoutes ?? {};

  // HTTP/1.1 connections and how many requests each is serving, so shutdown
  // can close idle keep-alive connections without cutting responses.
  const h1Busy = new Map<net.Socket, number>();

  const onRequest = (req: HttpRequest, res: HttpResponse): void => {
    responses.enter();
    res.once("close", () => responses.leave());
    const socket = req.socket;
    if (req.httpVersionMajor === 1 && socket !== undefined) {
      h1Busy.set(socket, (h1Busy.get(socket) ?? 0) + 1);
      if (closing !== undefined && res instanceof http.ServerResponse) res.setHeader("connection", "close");
      res.once("close", () => {
        const left = (h1Busy.get(socket) ?? 1) - 1;
        h1Busy.set(socket, left);
        if (closing !== undefined && left === 0) socket.end();
      });
    }

    const path = (req.url ?? "").split("?", 1)[0] ?? "";
    const builtin = builtins[path];
    const custom = httpRoutes[path];
    const handler = builtin ?? custom;
    if (handler === undefined) {
      const stream = req instanceof http2.Http2ServerRequest ? direct.match(req) : undefined;
      if (stream !== undefined && req instanceof http2.Http2ServerRequest && res instanceof http2.Http2ServerResponse) direct.serve(stream, req, res);
      else rpc(req, res);
      return;
    }
    if (builtin !== undefined && req.method !== "GET" && req.method !== "HEAD") {
      respond(res, 405, { allow: "GET, HEAD" });
      return;
    }
    Promise.resolve()
      .then(() => handler(req, res))
      .catch((e: unknown) => {
        logger.error({ err: e, path }, "http route failed");
        if (!res.headersSent) sendJson(res, 500, { status: "internal error" });
        else res.end();
      });
  };

  // Streams (server streaming over HTTP/1.1, gRPC-web) may stay open for a
  // long time, so no request timeout; headers must still arrive promptly.
  const h1 = http.createServer({ requestTimeout: 0, headersTimeout: 30_000, keepAliveTimeout: 5_000 }, onRequest);
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: 1000 } }, onRequest);
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    if (closing !== undefined) session.close();
  });
  h2.on("sessionError", (e) => logger.debug({ err: e }, "http2 session error"));

  const sniffing = new Set<net.Socket>();
  const route = (socket: net.Socket) => {
    let seen = Buffer.alloc(0);
    sniffing.add(socket);
    const timer = setTimeout(() => socket.destroy(), SNIFF_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, H2_PREFACE.length);
      const isH2 = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (isH2 && seen.length < H2_PREFACE.length) return; // need more bytes to decide
      clearTimeout(timer);
      sniffing.delete(socket);
      socket.off("data", onData);
      socket.pause();
      socket.unshift(seen);
      if (isH2) {
        // The http2 session takes over the socket's handle and first drains
        // what is buffered in the stream (the unshifted bytes).
        h2.emit("connection", socket);
      } else {
        h1Busy.set(socket, 0);
        socket.once("close", () => h1Busy.delete(socket));
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
    socket.once("close", () => {
      clearTimeout(timer);
      sniffing.delete(socket);
    });
  };

  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((socket) => {
    // Errors after a peer vanishes are expected; the servers add their own handling.
    socket.on("error", () => {});
    if (closing !== undefined) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    route(socket);
  });

  await new Promise<void>((resolve, reject) => {
    tcp.once("error", reject);
    tcp.listen(options.port, host, () => {
      tcp.off("error", reject);
      resolve();
    });
  });
  const address = tcp.address() as net.AddressInfo;
  const origin = (port: number) => `http://${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
  const url = origin(address.port);
  const grpcJs =
    grpcJsSpecs === undefined ? undefined : createGrpcJsServer(grpcJsSpecs, { interceptors, readMaxBytes, peer: (ip, header) => peerFrom(ip, header, trustedProxyHops) });
  let grpcJsUrl: string | undefined;
  try {
    if (grpcJs !== undefined) grpcJsUrl = origin(await grpcJs.listen(host, options.grpcJsPort ?? 0));
  } catch (e) {
    // Nothing may keep listening when startup fails.
    tcp.close();
    throw e;
  }
  void health.readiness();
  const peerUrl = grpcJsUrl === undefined ? url : grpcJsUrl.replace(/^http:/, "grpc:");
  // peerUrl too: a parent that spawned this process hands it to the peers it starts (bench/support.ts).
  logger.info({ url, service: options.name, peerUrl, ...(grpcJsUrl === undefined ? {} : { grpcJsUrl }) }, "listening");

  const tcpClosed = new Promise<void>((resolve) => tcp.once("close", () => resolve()));

  const close = async (): Promise<void> => {
    const deadline = Date.now() + shutdownTimeoutMs;
    logger.info("shutting down");
    // 1. Tell load balancers and health watchers, stop accepting connections.
    health.beginShutdown();
    health.stop();
    tcp.close();
    for (const socket of sniffing) socket.destroy();
    // 2. No new streams on existing connections: GOAWAY for HTTP/2, close idle HTTP/1.1.
    for (const session of sessions) session.close();
    for (const [socket, busy] of h1Busy) if (busy === 0) socket.end();
    // 3. Let in-flight unary calls finish, and the service end its streams its own way.
    await Promise.all([unaryCalls.idle(deadline - Date.now()), options.endStreams?.().catch((e: unknown) => logger.warn({ err: e }, "ending streams failed"))]);
    if (unaryCalls.count > 0) logger.warn({ calls: unaryCalls.count }, "shutdown timeout: aborting unary calls still running");
    // 4. End streams (and stragglers) through their signals, with status Unavailable.
    shutdown.abort(new ConnectError("server is shutting down", Code.Unavailable));
    direct.abortAll(new ConnectError("server is shutting down", Code.Unavailable));
    grpcJs?.abortAll(new ConnectError("server is shutting down", Code.Unavailable));
    // 5. Give the final messages and statuses a moment to reach the wire, then cut.
    await responses.idle(Math.max(deadline - Date.now(), 1_000));
    // A finished response can still sit in its session's write queue (trailers
    // behind the last frame): sessions told to close end by themselves once
    // flushed, so wait for that, and cut only what outlives the budget.
    await sessionsEnded(sessions, Math.max(deadline - Date.now(), 1_000));
    await grpcJs?.close(Math.max(deadline - Date.now(), 1_000));
    for (const session of sessions) session.destroy();
    for (const socket of sockets) socket.destroy();
    await tcpClosed;
    logger.info("stopped");
  };

  return {
    url,
    port: address.port,
    ...(grpcJsUrl === undefined ? {} : { grpcJsUrl }),
    peerUrl,
    health,
    close: () => (closing ??= close()),
  };
}

/** Resolves when every session in `sessions` has closed, or after `ms`. */
async function sessionsEnded(sessions: ReadonlySet<http2.ServerHttp2Session>, ms: number): Promise<void> {
  const open = [...sessions].filter((session) => !session.destroyed);
  if (open.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(open.map((session) => new Promise<void>((resolve) => session.once("close", () => resolve())))),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
  ]);
  clearTimeout(timer);
}

/** Anything runService can stop on a signal. */
export interface Closeable {
  close(): Promise<void>;
}

export interface RunServiceOptions {
  /** Service name for startup-failure logs (the service's own logger may not exist yet). */
  name?: string;
  /** Where fatal startup errors are logged (default: a fresh JSON logger on stdout). */
  logger?: Logger;
  /** Default process.exit; tests pass a spy. */
  exit?: (code: number) => void;
  /** Where SIGTERM/SIGINT come from (default: process); tests pass an EventEmitter. */
  signals?: { on(event: "SIGTERM" | "SIGINT", listener: (signal: NodeJS.Signals) => void): unknown };
  /** Processes to serve with (default AVIARY_PROCESSES, else 1): more than one makes this process their supervisor (processes.ts). */
  processes?: number;
}

/**
 * Runs a service: awaits `main` (which loads config and starts everything,
 * returning what to close), then closes it on SIGTERM/SIGINT and exits 0. A
 * second signal forces exit 1. A ConfigError at startup is logged as one
 * fatal record listing the problems, without a stack (it is an operator
 * error, not a bug); any other startup failure is logged with its stack. Both exit 1.
 */
export async function runService(main: () => Promise<Closeable>, options: RunServiceOptions = {}): Promise<void> {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const log = () => options.logger ?? createLogger(options.name ?? "service");
  const signals = options.signals ?? process;
  const worker = isServiceWorker();
  if (!worker) {
    let processes: number;
    try {
      processes = options.processes ?? processCountFromEnv();
    } catch (e) {
      log().fatal(e instanceof ConfigError ? { problems: e.problems } : { err: e }, (e as Error).message);
      exit(1);
      return;
    }
    if (processes > 1) {
      superviseWorkers({ processes, logger: log(), exit, signals });
      return;
    }
  }
  let running: Closeable;
  try {
    running = await main();
  } catch (e) {
    if (e instanceof ConfigError) log().fatal({ problems: e.problems }, e.message);
    else log().fatal({ err: e }, "startup failed");
    exit(1);
    return;
  }
  announceWorkerReady();
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      exit(1);
      return;
    }
    stopping = true;
    log().info({ signal }, "signal received, shutting down");
    running.close().then(
      () => exit(0),
      (e: unknown) => {
        log().error({ err: e }, "shutdown failed");
        exit(1);
      },
    );
  };
  signals.on("SIGTERM", onSignal);
  // A supervised worker leaves Ctrl-C to its supervisor, which sends SIGTERM (processes.ts).
  signals.on("SIGINT", worker ? () => undefined : onSignal);
  if (worker) onSupervisorGone(running, log, exit);
}
