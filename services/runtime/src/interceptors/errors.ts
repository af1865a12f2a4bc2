// The boundary between handler failures and what callers see. Deliberate
// ConnectErrors pass through; anything else (a driver error quoting SQL, a
// TypeError with a stack) is logged here with the trace id and replaced by a
// bare Internal "internal error", so no stack, query or hostname reaches a client.
// A database that cannot be reached right now is Unavailable instead (clients
// retry it; an overloaded pool is not a bug).
import { Code, ConnectError } from "@connectrpc/connect";
import type { Interceptor, UnaryRequest, StreamRequest } from "@connectrpc/connect";
import type { Logger } from "../log.ts";
import { followStream } from "./stream.ts";
import { isDatabaseUnavailable } from "../db/unavailable.ts";

/**
 * True when `error` is a deliberate ConnectError. `ConnectError.from(err)`
 * wraps an arbitrary error as Unknown with the original message (and connect
 * itself wraps as Internal), so Unknown/Internal errors caused by a non-Connect
 * error are treated like the raw error.
 */
function isDeliberate(error: unknown): error is ConnectError {
  if (!(error instanceof ConnectError)) return false;
  if (error.code !== Code.Unknown && error.code !== Code.Internal) return true;
  return error.cause === undefined || error.cause instanceof ConnectError;
}

/** What a caller may see of `error`, raised by the call to `procedure` whose signal is `signal`. */
export type ErrorSanitizer = (error: unknown, call: { procedure: string; signal: AbortSignal }) => ConnectError;

/** The sanitizer of the errors interceptor, for the server's direct streaming path too. */
export function createErrorSanitizer(logger: Logger): ErrorSanitizer {
  return (error, { procedure, signal }) => {
    if (isDeliberate(error)) return error;
    // A handler that gave up because its signal fired (deadline, cancel,
    // shutdown) typically throws a generic AbortError; report the reason.
    if (signal.aborted && signal.reason instanceof ConnectError) return signal.reason;
    if (isDatabaseUnavailable(error)) {
      logger.warn({ err: error, procedure }, "database unavailable");
      return new ConnectError("temporarily unavailable, try again", Code.Unavailable);
    }
    logger.error({ err: error, procedure }, "unhandled error in handler");
    return new ConnectError("internal error", Code.Internal);
  };
}

export function createErrorsInterceptor(logger: Logger): Interceptor {
  const sanitizeError = createErrorSanitizer(logger);
  const sanitize = (error: unknown, req: UnaryRequest | StreamRequest): ConnectError =>
    sanitizeError(error, { procedure: `${req.service.typeName}/${req.method.name}`, signal: req.signal });

  return (next) => async (req) => {
    try {
      const res = await next(req);
      if (!res.stream) return res;
      return { ...res, message: followStream(res.message, { mapError: (e) => sanitize(e, req) }) };
    } catch (e) {
      throw sanitize(e, req);
    }
  };
}
