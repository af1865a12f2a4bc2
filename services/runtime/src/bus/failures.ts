// Why a handler failed decides what the bus does with the event:
// - poison: the event itself is wrong (undecodable bytes, a field that breaks
//   the contract); no retry can fix it, so it is parked on `<topic>.dlq` at once;
// - infrastructure: a store or peer the handler needs is unreachable, slow or
//   overloaded (Redis, Postgres, Kafka, S3, another service answering
//   UNAVAILABLE); the event is fine and will apply once that is back, so the
//   partition waits and retries for as long as the outage lasts, never
//   parking it (a parked event is an update some user never sees);
// - unknown: anything else (most likely a bug); retried up to the
//   subscription's `maxAttempts`, then parked, so a bug cannot hold a
//   partition for ever.
import { Code, ConnectError } from "@connectrpc/connect";
import { isDatabaseUnavailable, isNetworkErrorCode } from "../db/unavailable.ts";

export type FailureKind = "poison" | "infrastructure" | "unknown";

/** Error names of events that cannot be decoded or break the contract (outbox/enqueue.ts EventDecodeError, by name: the bus does not depend on the outbox). */
const POISON_NAMES = new Set(["EventDecodeError"]);

/** Answers of a peer that say the request (here: the event) is wrong, whenever it is sent. */
const POISON_CODES = new Set([Code.InvalidArgument, Code.OutOfRange]);

/** Answers of a peer that say "not now". */
const INFRASTRUCTURE_CODES = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.ResourceExhausted, Code.Aborted]);

/**
 * Error names of clients that could not reach their server in time: ioredis
 * (a command that waited through its reconnects), kafkajs, undici/fetch and
 * AbortSignal.timeout, the AWS SDK.
 */
const INFRASTRUCTURE_NAMES = new Set([
  "MaxRetriesPerRequestError",
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSRequestTimeoutError",
  "KafkaJSNumberOfRetriesExceeded",
  "KafkaJSBrokerNotFound",
  "KafkaJSLockTimeout",
  "TimeoutError",
  "ConnectTimeoutError",
  "SocketError",
  "RequestTimeout",
  "ServiceUnavailable",
  "SlowDown",
]);

/**
 * ioredis' words for a connection that is closed or a command that timed
 * out, and the Redis replies of a server that is loading, read-only after a
 * failover, or between masters.
 */
const INFRASTRUCTURE_MESSAGES = /^(Connection is closed|Command timed out|Stream isn't writeable)|^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN) /;

/**
 * SQLSTATEs of a statement that lost a race or ran out of time, not of a
 * wrong one: class 40 (serialization failure, deadlock), 55P03 (lock not
 * available), 57014 (statement timeout). The next attempt usually succeeds.
 */
const TRANSIENT_SQLSTATE = /^(40[0-9A-Z]{3}|55P03|57014)$/;

export function classifyFailure(error: unknown): FailureKind {
  if (isDatabaseUnavailable(error)) return "infrastructure";
  let verdict: FailureKind = "unknown";
  visit(error, 0, (current) => {
    const kind = kindOf(current);
    // The first known kind along the cause chain wins, from the outside in:
    // a handler that wraps a Redis timeout in its own error is still waiting on Redis.
    if (kind !== "unknown" && verdict === "unknown") verdict = kind;
  });
  return verdict;
}

function kindOf(error: Error): FailureKind {
  if (POISON_NAMES.has(error.name)) return "poison";
  if (error instanceof ConnectError) {
    if (POISON_CODES.has(error.code)) return "poison";
    if (INFRASTRUCTURE_CODES.has(error.code)) return "infrastructure";
    return "unknown";
  }
  if (INFRASTRUCTURE_NAMES.has(error.name) || INFRASTRUCTURE_MESSAGES.test(error.message)) return "infrastructure";
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && (isNetworkErrorCode(code) || TRANSIENT_SQLSTATE.test(code))) return "infrastructure";
  // kafkajs marks what its own retries would retry; the AWS SDK, 5xx answers and throttling.
  if ((error as { retriable?: unknown }).retriable === true) return "infrastructure";
  const status = (error as { $metadata?: { httpStatusCode?: unknown } }).$metadata?.httpStatusCode;
  if (typeof status === "number" && (status >= 500 || status === 429)) return "infrastructure";
  return "unknown";
}

/** Walks the error, its causes and the members of aggregate errors (bounded: causes can be cyclic). */
function visit(error: unknown, depth: number, see: (error: Error) => void): void {
  if (!(error instanceof Error) || depth > 8) return;
  see(error);
  if (error instanceof AggregateError) for (const inner of error.errors) visit(inner, depth + 1, see);
  visit(error.cause, depth + 1, see);
}
