// Every call gets a bounded `signal`: a default deadline when the client sent
// none, and client deadlines capped, so a handler (and the database query or
// downstream call it passes the signal to) can never run unbounded.
//
// Streaming calls are configured separately: a subscription is meant to stay
// open, so by default they get no deadline and end on client cancel or server
// shutdown instead.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Interceptor } from "@connectrpc/connect";
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

export function createDeadlineInterceptor(options: DeadlineOptions = {}): Interceptor {
  return (next) => async (req) => {
    const ms = callTimeoutMs(req.header, req.method.methodKind !== "unary", options);
    if (ms === undefined) return next(req);

    // connect already enforces a client deadline on req.signal; this timer
    // adds the default/cap. When both exist the earlier one wins. The
    // handler's signal aborts on either: req.signal is followed with one
    // listener (AbortSignal.any costs several times that on every call).
    const deadline = new AbortController();
    const follow = () => deadline.abort(req.signal.reason);
    if (req.signal.aborted) follow();
    else req.signal.addEventListener("abort", follow, { once: true });
    // Only the timer ends the race: a call aborted through req.signal ends
    // the way its handler ends it.
    let expire = () => {};
    const expired = new Promise<never>((_, reject) => {
      expire = () => {
        const reason = new ConnectError("deadline exceeded", Code.DeadlineExceeded);
        deadline.abort(reason);
        reject(reason);
      };
    });
    // Keep a rejection that loses the race from surfacing as unhandled.
    expired.catch(() => {});
    const timer = setTimeout(expire, Math.max(0, ms));
    const done = () => {
      clearTimeout(timer);
      req.signal.removeEventListener("abort", follow);
    };
    const signal = deadline.signal;

    try {
      // Race the handler so the caller gets DeadlineExceeded on time even if
      // the handler ignores its signal.
      const res = await Promise.race([next({ ...req, signal }), expired]);
      if (!res.stream) {
        done();
        return res;
      }
      return {
        ...res,
        message: followStream(res.message, { pull: (p) => Promise.race([p(), expired]), onEnd: done }),
      };
    } catch (e) {
      done();
      throw e;
    }
  };
}
