// Every call gets a bounded `signal`: a default deadline when the client sent
// none, and client deadlines capped, so a handler (and the database query or
// downstream call it passes the signal to) can never run unbounded.
//
// Streaming calls are configured separately: a subscription is meant to stay
// open, so by default they get no deadline and end on client cancel or server
// shutdown instead.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Interceptor, StreamRequest, StreamResponse, UnaryRequest, UnaryResponse } from "@connectrpc/connect";
import { callControllerKey } from "../context.ts";
import { followStream } from "./stream.ts";

export interface DeadlineOptions {
  /** Unary calls without a client deadline (default 10 s). */
  defaultTimeoutMs?: number;
  /** Longest deadline a unary call may have (default 60 s); longer client deadlines are shortened. */
  maxTimeoutMs?: number;
  /** Streaming calls without a client deadline (default: none). */
  streamDefaultTimeoutMs?: number;
  /** Longest deadline a streaming call may have (default: none). */
  streamMaxTimeoutMs?: number;
}

const GRPC_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000001 };

/** The deadline the client asked for, from `grpc-timeout` (gRPC, gRPC-web) or `connect-timeout-ms` (Connect). */
export function clientTimeoutMs(header: Pick<Headers, "get">): number | undefined {
  const grpc = header.get("grpc-timeout");
  if (grpc !== null) {
    const m = /^(\d{1,8})([HMSmun])$/.exec(grpc);
    return m === null ? undefined : Number(m[1]) * (GRPC_UNIT_MS[m[2] ?? ""] ?? 0);
  }
  const connect = header.get("connect-timeout-ms");
  if (connect !== null && /^\d{1,10}$/.test(connect)) return Number(connect);
  return undefined;
}

/** The deadline a call gets, in ms from now: the client's (capped) or the default; undefined is none. */
export function callTimeoutMs(header: Pick<Headers, "get">, streaming: boolean, options: DeadlineOptions = {}): number | undefined {
  const limits = streaming
    ? { dflt: options.streamDefaultTimeoutMs, max: options.streamMaxTimeoutMs }
    : { dflt: options.defaultTimeoutMs ?? 10_000, max: options.maxTimeoutMs ?? 60_000 };
  const ms = clientTimeoutMs(header) ?? limits.dflt;
  return limits.max !== undefined && (ms === undefined || ms > limits.max) ? limits.max : ms;
}

const deadlineExceeded = () => new ConnectError("deadline exceeded", Code.DeadlineExceeded);

/**
 * The controller that ends `req.signal`: the transport's own, when it lends
 * it (the grpc-js listener) and no interceptor before replaced the signal;
 * else a new one that follows `req.signal` with one listener (AbortSignal.any
 * costs several times that on every call). `release` undoes the following.
 */
function controllerFor(req: UnaryRequest | StreamRequest): { controller: AbortController; signal: AbortSignal; release: () => void } {
  const lent = req.contextValues.get(callControllerKey);
  if (lent !== undefined && lent.signal === req.signal) return { controller: lent, signal: req.signal, release: () => {} };
  const controller = new AbortController();
  const follow = () => controller.abort(req.signal.reason);
  if (req.signal.aborted) follow();
  else req.signal.addEventListener("abort", follow, { once: true });
  return { controller, signal: controller.signal, release: () => req.signal.removeEventListener("abort", follow) };
}

export function createDeadlineInterceptor(options: DeadlineOptions = {}): Interceptor {
  return (next) => (req) => {
    const ms = callTimeoutMs(req.header, req.method.methodKind !== "unary", options);
    if (ms === undefined) return next(req);
    return req.stream ? boundedStream(next, req, ms) : boundedUnary(next, req, ms);
  };
}

// connect already enforces a client deadline on req.signal; the timer adds
// the default and the cap. When both exist the earlier one wins. Only the
// timer ends the race early: a call aborted through req.signal ends the way
// its handler ends it. The race gives the caller DeadlineExceeded on time
// even if the handler ignores its signal.

/** A unary call: one promise settled by whichever comes first, the answer or the timer. */
function boundedUnary(next: (req: UnaryRequest) => Promise<UnaryResponse | StreamResponse>, req: UnaryRequest, ms: number): Promise<UnaryResponse | StreamResponse> {
  const { controller, signal, release } = controllerFor(req);
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      const reason = deadlineExceeded();
      if (!controller.signal.aborted) controller.abort(reason);
      if (settled) return;
      settled = true;
      release();
      reject(reason);
    }, Math.max(0, ms));
    const settle = () => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      release();
      return true;
    };
    next(signal === req.signal ? req : { ...req, signal }).then(
      (res) => {
        if (settle()) resolve(res);
      },
      (e: unknown) => {
        if (settle()) reject(e);
      },
    );
  });
}

/** A streaming call: the timer also races every pull of the response, until the stream ends. */
async function boundedStream(next: (req: StreamRequest) => Promise<UnaryResponse | StreamResponse>, req: StreamRequest, ms: number): Promise<UnaryResponse | StreamResponse> {
  const { controller, signal, release } = controllerFor(req);
  let expire = () => {};
  const expired = new Promise<never>((_, reject) => {
    expire = () => {
      const reason = deadlineExceeded();
      if (!controller.signal.aborted) controller.abort(reason);
      reject(reason);
    };
  });
  // Keep a rejection that loses the race from surfacing as unhandled.
  expired.catch(() => {});
  const timer = setTimeout(expire, Math.max(0, ms));
  const done = () => {
    clearTimeout(timer);
    release();
  };
  try {
    const res = await Promise.race([next(signal === req.signal ? req : { ...req, signal }), expired]);
    if (!res.stream) {
      done();
      return res;
    }
    return { ...res, message: followStream(res.message, { pull: (p) => Promise.race([p(), expired]), onEnd: done }) };
  } catch (e) {
    done();
    throw e;
  }
}
