// The auth service's side of a suspension: it follows the moderation topic
// and, for UserSuspended, records the suspension (sign-in is refused while it
// holds, roles.ts refuseIfSuspended) and ends every session of the user in
// the same transaction, then denylists them so their access tokens stop
// working everywhere within seconds. UserUnsuspended lifts it; sessions are
// not restored (the user signs in again).
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { Database } from "@aviary/runtime/db/database";
import { EventHeaders, type EventBus, type Subscription } from "@aviary/runtime/bus/bus";
import { decodeEvent, EventDecodeError, isEventOf } from "@aviary/runtime/outbox/enqueue";
import { handleOnce } from "@aviary/runtime/outbox/idempotent";
import { isUuid } from "@aviary/runtime/validation";
import { UserSuspendedSchema, UserUnsuspendedSchema } from "@aviary/gen/aviary/events/v1/moderation_events_pb";
import type { SessionDenylist } from "../domain/denylist.ts";
import { processedEvents } from "../store/schema.ts";
import { applySuspension, lockAccount } from "../store/roles.ts";
import { revokeUserSessions } from "../store/sessions.ts";
import { sessionsRevoked } from "./publish.ts";

/** The moderation service's topic (services/moderation/src/events/publish.ts). */
export const moderationEventsTopic = "aviary.moderation.events";
/** The consumer name in processed_events and the default consumer group. */
export const suspensionsConsumer = "auth-suspensions";

function timeOf(at: Timestamp | undefined, eventId: string): Date {
  if (at === undefined) throw new EventDecodeError(`moderation event ${eventId} has no time`);
  return timestampDate(at);
}

export function consumeSuspensions(options: { database: Database; bus: EventBus; denylist: SessionDenylist; topic: string; groupId: string }): Promise<Subscription> {
  return options.bus.subscribe({
    groupId: options.groupId,
    topics: [options.topic],
    handle: async (event) => {
      const suspended = isEventOf(UserSuspendedSchema, event);
      if (!suspended && !isEventOf(UserUnsuspendedSchema, event)) return;
      const eventId = event.headers[EventHeaders.id] ?? "";
      if (!isUuid(eventId)) throw new EventDecodeError(`${event.headers[EventHeaders.type]} on ${event.topic} has no valid event-id`);
      const change = suspended
        ? (({ userId, reason, suspendedAt }) => ({ userId, reason, at: suspendedAt }))(decodeEvent(UserSuspendedSchema, event))
        : (({ userId, reason, unsuspendedAt }) => ({ userId, reason, at: unsuspendedAt }))(decodeEvent(UserUnsuspendedSchema, event));
      if (!isUuid(change.userId)) throw new EventDecodeError(`moderation event ${eventId} has an invalid user_id`);
      const at = timeOf(change.at, eventId);
      const ended: string[] = [];
      await handleOnce(options.database, { processedEvents }, suspensionsConsumer, eventId, async (tx) => {
        // Exclusive against sign-ins opening a session for this account right now (refuseIfSuspended).
        await lockAccount(tx, change.userId, "update");
        const applied = await applySuspension(tx, { userId: change.userId, suspended, reason: change.reason, changedAt: at });
        if (!applied || !suspended) return;
        const sessions = await revokeUserSessions(tx, change.userId, "account_suspended", at);
        await sessionsRevoked(tx, sessions, "account_suspended", at);
        ended.push(...sessions.map((session) => session.id));
      });
      // After the commit. Should the cache fail here, the periodic denylist sync re-publishes these
      // revocations from the sessions table (AUTH_DENYLIST_SYNC_INTERVAL); auth itself reads the table.
      if (ended.length > 0) await options.denylist.add(ended);
    },
  });
}
