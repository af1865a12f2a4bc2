// The push worker (role `push`): consumes the push requests the ingest
// writes to its outbox (NotificationCreated on aviary.notification.events)
// (NOTIFICATION_EVENTS_TOPIC) and delivers each to the recipient's devices.
//
// Per device: skip it when its session holds a live foreground stream (the
// app shows the notification in-app) or when its platform has no provider
// configured; otherwise claim the ledger row (notification × device) and
// only then call the provider, so a redelivered request or a restarted
// worker never pushes twice. The price: a worker killed between the claim and
// the provider's answer leaves that one push undecided ("sending"), and it is
// not retried — at most once per device, never twice (docs/decisions.md).
// Verdicts: gone → the device is retired through the user service;
// quarantine → quarantined there; retry → again after a backoff (Retry-After
// honoured) until the attempts run out; failed or out of attempts → the
// request is dead-lettered for that device with the reason.
import { EventHeaders, deadLetterTopic, type DeliveredEvent, type EventBus, type Subscription } from "@aviary/runtime/bus/bus";
import type { Database } from "@aviary/runtime/db/database";
import type { Logger } from "@aviary/runtime/log";
import { decodedEvent, eventUuid } from "@aviary/runtime/outbox/fields";
import type { UserStreamPublisher } from "@aviary/runtime/realtime/user-streams";
import { meterOf, pushInstruments } from "@aviary/runtime/metrics";
import type { Telemetry } from "@aviary/runtime/telemetry";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { NotificationCreatedSchema } from "@aviary/gen/aviary/events/v1/notification_events_pb";
import { kindName } from "../domain/kinds.ts";
import { actorName, messagePushBody, pushBody } from "../domain/push-text.ts";
import type { DeviceRegistry, PushDevice, UserDirectory } from "../peers.ts";
import { claimDelivery, finishDelivery, type DeliveryStatus } from "../store/deliveries.ts";
import type { PushMessage, PushPlatform, PushProvider, PushVerdict } from "./provider.ts";
import { retryDelayMs, type RetryPolicy } from "./retry.ts";
import { outageGate, type OutageGate } from "../events/outage-gate.ts";

/** The default consumer group of the push workers (NOTIFICATION_PUSH_GROUP). */
export const pushGroup = "notification-push";

export interface PushWorkerDeps {
  database: Database;
  devices: DeviceRegistry;
  users: UserDirectory;
  providers: ReadonlyMap<PushPlatform, PushProvider>;
  /** Who holds a foreground stream; absent: nobody is skipped. */
  streams?: Pick<UserStreamPublisher, "foregroundSessions">;
  bus: EventBus;
  /** The push requests' topic (NOTIFICATION_EVENTS_TOPIC); dead letters go to `<topic>.dlq`. */
  topic: string;
  groupId: string;
  retry: RetryPolicy;
  /** The push title (PUSH_TITLE). */
  title: string;
  /** Devices of one request pushed at once. */
  deviceConcurrency: number;
  /** Requests older than this are not pushed (PUSH_MAX_AGE). */
  maxAgeMs: number;
  logger: Logger;
  /** Waits between retries (default: a timer). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** The service's telemetry: push_deliveries_total{provider, verdict}, and the subscription's spans and event counters (the global API when absent). */
  telemetry?: Pick<Telemetry, "tracer" | "propagator" | "meter">;
}

/** The worker's state across requests: the deps, and whether the stream store looked down lately. */
interface Worker extends PushWorkerDeps {
  foregroundGate: OutageGate;
}

/**
 * A new push group starts at the end of the topic, not the beginning: a push
 * deployment that starts (or a group that is renamed) must not send every
 * push ever requested. Requests older than `maxAgeMs` when they are read
 * (a worker back from a long outage) are dropped too: the notification is in
 * the list, a banner about it hours later is noise.
 */
export function consumePushRequests(deps: PushWorkerDeps, options: { partitionsConcurrently?: number } = {}): Promise<Subscription> {
  const worker: Worker = { ...deps, foregroundGate: outageGate(FOREGROUND_SKIP_MS) };
  // The failure verdicts exported at 0 from the start, so the first failures after a start are an increase Prometheus sees.
  const { outcomes } = pushInstruments(meterOf(deps.telemetry));
  for (const provider of deps.providers.keys()) for (const verdict of ["failed", "retry"]) outcomes.add(0, { provider, verdict });
  return deps.bus.subscribe({
    groupId: deps.groupId,
    topics: [deps.topic],
    fromBeginning: false,
    ...(options.partitionsConcurrently === undefined ? {} : { partitionsConcurrently: options.partitionsConcurrently }),
    handle: (event) => handlePushRequest(worker, event),
    ...(deps.telemetry === undefined ? {} : { telemetry: deps.telemetry }),
  });
}

async function handlePushRequest(deps: Worker, event: DeliveredEvent): Promise<void> {
  const { id, message } = decodedEvent(NotificationCreatedSchema, event);
  const recipientId = eventUuid(message.recipientId, "recipient_id", id);
  const notificationId = eventUuid(message.notificationId, "notification_id", id);
  const kind = kindName(message.kind);
  const ageMs = Date.now() - (message.createdAt ? timestampMs(message.createdAt) : 0);
  if (ageMs > deps.maxAgeMs) {
    deps.logger.debug({ notificationId, ageMs }, "push request too old; not pushed");
    return;
  }
  // A failure here fails the event: the bus retries it (nothing was claimed yet).
  const devices = await deps.devices.devicesOf(recipientId);
  if (devices.length === 0) return;
  const foreground = await foregroundSessions(deps, recipientId);
  const actor = await actorSummary(deps, message.actorId);
  // A message: its own text, one banner per conversation (the conversation id is the collapse key).
  const chat = kind === "message" && message.conversationId !== "";
  const data: Record<string, string> = chat
    ? { notification_id: notificationId, group_id: message.groupId, kind, conversation_id: message.conversationId }
    : { notification_id: notificationId, group_id: message.groupId, kind, post_id: message.postId };
  const push = {
    title: deps.title,
    body: chat ? messagePushBody(actorName(actor), message.preview, message.conversationTitle) : pushBody(kind, actorName(actor), Math.max(1, message.groupActorCount)),
    collapseKey: chat ? message.conversationId : message.groupId,
    badge: Number(message.unreadCount),
    data,
  };
  await forEachLimited(devices, deps.deviceConcurrency, (device) => deliver(deps, event, { notificationId, recipientId }, device, push, foreground));
}

async function deliver(
  deps: PushWorkerDeps,
  event: DeliveredEvent,
  request: { notificationId: string; recipientId: string },
  device: PushDevice,
  push: Omit<PushMessage, "id">,
  foreground: ReadonlySet<string>,
): Promise<void> {
  const row = { notificationId: request.notificationId, deviceId: device.deviceId, recipientId: request.recipientId, platform: device.platform };
  // push_deliveries_total{provider, verdict}: the provider is the device's platform (ios → APNs, android → FCM, web → Web Push).
  const counted = (verdict: string) => pushInstruments(meterOf(deps.telemetry)).outcomes.add(1, { provider: device.platform, verdict });
  if (device.sessionId !== "" && foreground.has(device.sessionId)) {
    await claimDelivery(deps.database.db, { ...row, status: "skipped", reason: "foreground stream" }, new Date());
    counted("skipped_foreground");
    return;
  }
  const provider = deps.providers.get(device.platform);
  if (provider === undefined) {
    await claimDelivery(deps.database.db, { ...row, status: "skipped", reason: `no ${device.platform} provider configured` }, new Date());
    counted("skipped_no_provider");
    return;
  }
  if (!(await claimDelivery(deps.database.db, { ...row, status: "sending" }, new Date()))) return;

  const message: PushMessage = { ...push, id: pushId(request.notificationId, device.deviceId) };
  const target = { deviceId: device.deviceId, platform: device.platform, token: device.token };
  const sleep = deps.sleep ?? delay;
  let attempts = 0;
  let verdict: PushVerdict;
  for (;;) {
    attempts += 1;
    verdict = await provider.send(target, message);
    if (verdict.kind !== "retry" || attempts >= deps.retry.maxAttempts) break;
    await sleep(retryDelayMs(deps.retry, attempts, verdict.retryAfterMs));
  }
  const outcome = await settle(deps, event, device, verdict, attempts);
  counted(verdict.kind);
  await finishDelivery(deps.database.db, { notificationId: request.notificationId, deviceId: device.deviceId }, { ...outcome, attempts }, new Date());
}

/** Acts on the final verdict; returns what the ledger records. */
async function settle(deps: PushWorkerDeps, event: DeliveredEvent, device: PushDevice, verdict: PushVerdict, attempts: number): Promise<{ status: DeliveryStatus; reason?: string }> {
  switch (verdict.kind) {
    case "delivered":
      return { status: "delivered" };
    case "gone":
      await bestEffort(deps, "retire device", () => deps.devices.retire(device.deviceId, verdict.since));
      return { status: "gone", reason: verdict.reason };
    case "quarantine":
      await bestEffort(deps, "quarantine device", () => deps.devices.quarantine(device.deviceId, verdict.reason));
      return { status: "quarantined", reason: verdict.reason };
    case "retry":
    case "failed": {
      const reason = verdict.kind === "retry" ? `gave up after ${attempts} attempts: ${verdict.reason}` : verdict.reason;
      await deps.bus.publish([
        {
          topic: deadLetterTopic(event.topic),
          key: event.key ?? "",
          value: event.value,
          headers: {
            ...event.headers,
            [EventHeaders.deadLetterReason]: reason,
            [EventHeaders.deadLetterTopic]: event.topic,
            [EventHeaders.deadLetterGroup]: deps.groupId,
            [DEVICE_HEADER]: device.deviceId,
          },
        },
      ]);
      deps.logger.warn({ deviceId: device.deviceId, platform: device.platform, reason }, "push dead-lettered");
      return { status: "dead-lettered", reason };
    }
  }
}

/** On a push dead letter: the device it was for (the rest of the request's devices were handled). */
export const DEVICE_HEADER = "dlq-device-id";

/** apns-id and friends: unique per notification × device, the same on every attempt. */
function pushId(notificationId: string, deviceId: string): string {
  return `${notificationId}:${deviceId}`;
}

/** After the stream store failed once, the foreground check is skipped this long (pushing to every device meanwhile). */
export const FOREGROUND_SKIP_MS = 5_000;

async function foregroundSessions(deps: Worker, userId: string): Promise<ReadonlySet<string>> {
  const streams = deps.streams;
  if (streams === undefined) return new Set();
  // Unknown presence: push (a banner on a device in use beats a missed one).
  return deps.foregroundGate.run(
    async () => (await streams.foregroundSessions([userId])).get(userId) ?? new Set<string>(),
    new Set<string>(),
    (error) => deps.logger.warn({ err: error }, "foreground sessions unavailable; pushing to every device"),
  );
}

async function actorSummary(deps: PushWorkerDeps, actorId: string) {
  if (actorId === "") return undefined;
  try {
    return (await deps.users.summaries([actorId.toLowerCase()])).get(actorId.toLowerCase());
  } catch (error) {
    deps.logger.warn({ err: error }, "actor name unavailable; pushing a neutral text");
    return undefined;
  }
}

async function bestEffort(deps: PushWorkerDeps, what: string, task: () => Promise<void>): Promise<void> {
  try {
    await task();
  } catch (error) {
    // The ledger still records the verdict; the next push to the device meets the same answer and tries again.
    deps.logger.warn({ err: error }, `${what} failed`);
  }
}

async function forEachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await task(items[next++]!);
  });
  await Promise.all(workers);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
