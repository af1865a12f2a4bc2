// The sender role: reads code deliveries from the delivery topic and hands
// each to the channel's sender, retrying transient failures (429, 5xx, SMTP
// 4xx, timeouts) with jittered backoff and parking the rest on
// `<topic>.dlq` with the reason: at once for a permanent failure (an invalid
// number, a refused mailbox), after AUTH_DELIVERY_MAX_ATTEMPTS otherwise, or
// when the code expires meanwhile. A delivery is marked done in
// processed_events after the provider accepted it, so a redelivered event
// is not sent again; only a crash between the provider's answer and that
// mark can send a code twice (a duplicate code, never a lost one).
import { eq, and } from "drizzle-orm";
import type { Counter, Histogram, Meter } from "@opentelemetry/api";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { DeliveredEvent, EventBus, Subscription } from "@aviary/runtime/bus/bus";
import { deadLetterRecord } from "@aviary/runtime/bus/delivery";
import { sleep } from "@aviary/runtime/bus/timing";
import type { Database } from "@aviary/runtime/db/database";
import type { Logger } from "@aviary/runtime/log";
import { EventDecodeError } from "@aviary/runtime/outbox/enqueue";
import { decodedEvent } from "@aviary/runtime/outbox/fields";
import { retryDelayMs, type RetryPolicy } from "@aviary/runtime/retry";
import { CodeChannel, CodeDeliveryRequestedSchema } from "@aviary/gen/aviary/events/v1/auth_events_pb";
import { DeliveryError, type CodeMessage, type CodeSender } from "../domain/code-sender.ts";
import type { CodePurpose } from "../domain/codes.ts";
import type { Identity } from "../domain/identity.ts";
import type { Sealer } from "../domain/sealing.ts";
import { processedEvents } from "../store/schema.ts";

/** The default consumer group of the sender role (AUTH_SENDER_GROUP), and its name in processed_events. */
export const senderGroup = "auth-code-sender";

export interface CodeSenderWorkerDeps {
  database: Database;
  bus: EventBus;
  topic: string;
  groupId: string;
  sender: CodeSender;
  sealer: Sealer;
  retry: RetryPolicy;
  meter: Meter;
  logger: Logger;
  partitionsConcurrently: number;
}

export type DeliveryOutcome = "delivered" | "retried" | "dead_lettered" | "expired" | "duplicate";

interface Metrics {
  outcomes: Counter;
  latency: Histogram;
}

export async function startCodeSenderWorker(deps: CodeSenderWorkerDeps): Promise<Subscription> {
  // Stopping cuts a retry's wait short, so shutdown never waits out a backoff.
  const stopping = new AbortController();
  const metrics: Metrics = {
    outcomes: deps.meter.createCounter("auth.code_deliveries", { description: "Code deliveries by channel and outcome (delivered, retried, dead_lettered, expired, duplicate)" }),
    latency: deps.meter.createHistogram("auth.code_delivery.latency", { unit: "ms", description: "From the request committing to the provider accepting the code" }),
  };
  const subscription = await deps.bus.subscribe({
    groupId: deps.groupId,
    topics: [deps.topic],
    partitionsConcurrently: deps.partitionsConcurrently,
    handle: (event) => deliver(deps, metrics, event, stopping.signal),
  });
  return {
    async stop() {
      stopping.abort();
      await subscription.stop();
    },
  };
}

async function deliver(deps: CodeSenderWorkerDeps, metrics: Metrics, event: DeliveredEvent, stopping: AbortSignal): Promise<void> {
  const { id, message } = decodedEvent(CodeDeliveryRequestedSchema, event);
  const to = identityOf(message.channel, message.recipient, id);
  const channel = to.kind === "email" ? "email" : "sms";
  const count = (outcome: DeliveryOutcome) => metrics.outcomes.add(1, { channel, outcome });
  const log = { deliveryId: id, channel, purpose: message.purpose, to: masked(to) };
  if (await alreadyDelivered(deps.database, deps.groupId, id)) return count("duplicate");
  const expiresAtMs = message.expiresAt ? timestampMs(message.expiresAt) : 0;
  const requestedAtMs = message.requestedAt ? timestampMs(message.requestedAt) : Date.now();
  if (Date.now() >= expiresAtMs) {
    deps.logger.info(log, "code expired before it could be sent; dropped");
    return count("expired");
  }
  const codeMessage: CodeMessage = {
    id,
    to,
    purpose: purposeOf(message.purpose, id),
    locale: message.locale,
    code: openCode(deps.sealer, message.sealedCode, id),
    expiresInSeconds: Math.max(1, Math.round((expiresAtMs - Date.now()) / 1000)),
  };
  for (let attempt = 1; ; attempt += 1) {
    try {
      await deps.sender.send(codeMessage);
      break;
    } catch (error) {
      const failure = error instanceof DeliveryError ? error : new DeliveryError("transient", error instanceof Error ? error.message : String(error), { cause: error });
      const wait = retryDelayMs(deps.retry, attempt, failure.retryAfterMs);
      const giveUp =
        failure.kind === "permanent" ? "permanent failure" : attempt >= deps.retry.maxAttempts ? `gave up after ${attempt} attempts` : Date.now() + wait >= expiresAtMs ? "the code expires before the next attempt" : undefined;
      if (giveUp !== undefined) {
        const reason = `${giveUp}: ${failure.message}`;
        await deps.bus.publish([deadLetterRecord(event, deps.groupId, new Error(reason))]);
        deps.logger.warn({ ...log, attempts: attempt, reason }, "code delivery dead-lettered");
        return count("dead_lettered");
      }
      deps.logger.info({ ...log, attempt, retryInMs: wait, reason: failure.message }, "code delivery failed; retrying");
      count("retried");
      await sleep(wait, stopping);
      // Not sent and not marked: the event stays uncommitted and the next sender (or this one restarted) takes it up.
      if (stopping.aborted) throw new Error("the sender is stopping");
    }
  }
  await deps.database.db.insert(processedEvents).values({ consumer: deps.groupId, eventId: id }).onConflictDoNothing();
  metrics.latency.record(Date.now() - requestedAtMs, { channel });
  count("delivered");
}

async function alreadyDelivered(database: Database, consumer: string, eventId: string): Promise<boolean> {
  const rows = await database.db
    .select({ eventId: processedEvents.eventId })
    .from(processedEvents)
    .where(and(eq(processedEvents.consumer, consumer), eq(processedEvents.eventId, eventId)))
    .limit(1);
  return rows.length > 0;
}

function identityOf(channel: CodeChannel, recipient: string, eventId: string): Identity {
  if (recipient === "") throw new EventDecodeError(`code delivery ${eventId} has no recipient`);
  if (channel === CodeChannel.EMAIL) return { kind: "email", value: recipient };
  if (channel === CodeChannel.SMS) return { kind: "phone", value: recipient };
  throw new EventDecodeError(`code delivery ${eventId} has no channel`);
}

function purposeOf(purpose: string, eventId: string): CodePurpose {
  if (purpose === "verify" || purpose === "password_reset") return purpose;
  throw new EventDecodeError(`code delivery ${eventId} has an unknown purpose`);
}

/** A code sealed under another key (a misconfigured AUTH_SECRETS_KEY) will never open: park it at once. */
function openCode(sealer: Sealer, sealed: Uint8Array, eventId: string): string {
  try {
    return new TextDecoder().decode(sealer.open("code-delivery", sealed));
  } catch {
    throw new EventDecodeError(`code delivery ${eventId} does not open with this AUTH_SECRETS_KEY`);
  }
}

/** Enough of the address to tell deliveries apart in logs, not enough to collect addresses from them. */
export function masked(identity: Identity): string {
  if (identity.kind === "phone") return `${identity.value.slice(0, 3)}…${identity.value.slice(-2)}`;
  const [local = "", domain = ""] = identity.value.split("@");
  return `${local.slice(0, 1)}…@${domain}`;
}
