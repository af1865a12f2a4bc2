// Connect errors with google.rpc details, so every service answers the same
// way: a stable code, a short message meant for the caller, and machine-readable
// details (which field, when to retry) that clients and the edge can act on.
import { Code, ConnectError } from "@connectrpc/connect";
import {
  BadRequestSchema,
  PreconditionFailureSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
} from "@aviary/gen/google/rpc/error_details_pb";

/** One broken input rule. `field` is a dotted path of proto field names ("tokens.access_token", "items[2].name"). */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
  /** Machine-readable rule id, e.g. "REQUIRED", "MAX_LEN". */
  readonly reason?: string;
}

export function invalidArgument(violations: readonly FieldViolation[], message = "invalid request"): ConnectError {
  return new ConnectError(message, Code.InvalidArgument, undefined, [
    {
      desc: BadRequestSchema,
      value: {
        fieldViolations: violations.map((v) => ({ field: v.field, description: v.description, reason: v.reason ?? "" })),
      },
    },
  ]);
}

/**
 * Rate limited / quota exhausted. Carries a google.rpc.RetryInfo detail and a
 * `retry-after` header (Connect) / trailer (gRPC), for clients that only look at
 * HTTP semantics.
 */
export function resourceExhausted(message: string, retryAfterSeconds: number): ConnectError {
  const seconds = Math.max(0, Math.ceil(retryAfterSeconds));
  return new ConnectError(message, Code.ResourceExhausted, { "retry-after": String(seconds) }, [
    { desc: RetryInfoSchema, value: { retryDelay: { seconds: BigInt(seconds), nanos: 0 } } },
  ]);
}

/** Not found; `resource` adds a google.rpc.ResourceInfo detail ({ type: "aviary.user.v1.User", name: id }). */
export function notFound(message: string, resource?: { type: string; name: string }): ConnectError {
  const details =
    resource === undefined ? [] : [{ desc: ResourceInfoSchema, value: { resourceType: resource.type, resourceName: resource.name } }];
  return new ConnectError(message, Code.NotFound, undefined, details);
}

export function alreadyExists(message: string): ConnectError {
  return new ConnectError(message, Code.AlreadyExists);
}

export function permissionDenied(message: string): ConnectError {
  return new ConnectError(message, Code.PermissionDenied);
}

export function unauthenticated(message = "authentication required"): ConnectError {
  return new ConnectError(message, Code.Unauthenticated);
}

/** A precondition does not hold; violations become a google.rpc.PreconditionFailure detail. */
export function failedPrecondition(
  message: string,
  violations: readonly { type: string; subject: string; description: string }[] = [],
): ConnectError {
  const details = violations.length === 0 ? [] : [{ desc: PreconditionFailureSchema, value: { violations: [...violations] } }];
  return new ConnectError(message, Code.FailedPrecondition, undefined, details);
}

export function unavailable(message: string): ConnectError {
  return new ConnectError(message, Code.Unavailable);
}

/**
 * Calls another service for a read. Its failure fails the read with
 * UNAVAILABLE (clients retry it), never with a silently empty answer; the
 * caller's own cancellation, deadline and an expired token keep their codes.
 */
export async function fromDependency<T>(name: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const cause = ConnectError.from(error);
    if (cause.code === Code.Canceled || cause.code === Code.DeadlineExceeded || cause.code === Code.Unauthenticated) throw cause;
    throw new ConnectError(`the ${name} service is unavailable`, Code.Unavailable, undefined, undefined, cause);
  }
}
