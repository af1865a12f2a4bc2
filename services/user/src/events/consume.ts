import type { Database } from "@aviary/runtime/db/database";
import type { Cache } from "@aviary/runtime/cache/cache";
import { bumpReachVersions } from "@aviary/runtime/cache/reach-versions";
import { EventHeaders, type EventBus, type Subscription } from "@aviary/runtime/bus/bus";
import { decodeEvent, EventDecodeError, isEventOf } from "@aviary/runtime/outbox/enqueue";
import { handleOnce } from "@aviary/runtime/outbox/idempotent";
import { isUuid } from "@aviary/runtime/validation";
import { AccountDeletedSchema, UserRegisteredSchema } from "@aviary/gen/aviary/events/v1/auth_events_pb";
import { decodedEvent, eventUuid } from "@aviary/runtime/outbox/fields";
import { purgeUser } from "../store/purge.ts";
import { processedEvents } from "../store/schema.ts";
import { createProfileFromRegistration } from "../store/profiles.ts";
import { regionOfPhone } from "../domain/region.ts";

/** The auth service's topic (see services/auth/src/events/publish.ts). */
export const authEventsTopic = "aviary.auth.events";

/** The consumer name in processed_events (and the default consumer group). */
export const profilesConsumer = "user-profiles";

/**
 * Creates a profile for every `UserRegistered` on the auth topic, once per
 * event id (handleOnce), and idempotently per user (insert-or-keep), so
 * redeliveries and replays change nothing; purges everything of the account
 * on `AccountDeleted` (store/purge.ts; its processed-event row keeps a replay
 * of the registration from making the profile again) and bumps the account's
 * reach version (runtime/cache/reach-versions.ts). Other auth event types
 * are skipped. An event that cannot be decoded throws EventDecodeError: the bus
 * parks it on the dead-letter topic with the reason at once.
 */
export function consumeAuthEvents(options: { database: Database; cache: Cache; bus: EventBus; groupId: string }): Promise<Subscription> {
  return options.bus.subscribe({
    groupId: options.groupId,
    topics: [authEventsTopic],
    handle: async (event) => {
      if (isEventOf(AccountDeletedSchema, event)) {
        const { id, message } = decodedEvent(AccountDeletedSchema, event);
        const userId = eventUuid(message.userId, "user_id", id);
        await handleOnce(options.database, { processedEvents }, profilesConsumer, id, (tx) => purgeUser(tx, userId));
        // After the purge (a kept "may write" to the account stops holding). A
        // failure throws, so the bus delivers the event again: handleOnce skips
        // the purge done, and the bump is tried again.
        await bumpReachVersions(options.cache, [userId]);
        return;
      }
      if (!isEventOf(UserRegisteredSchema, event)) return;
      const registered = decodeEvent(UserRegisteredSchema, event);
      const eventId = event.headers[EventHeaders.id] ?? "";
      if (!isUuid(eventId)) throw new EventDecodeError(`UserRegistered on ${event.topic} has no valid event-id`);
      if (!isUuid(registered.userId)) throw new EventDecodeError(`UserRegistered ${eventId} has an invalid user_id`);
      const createdAt = registered.registeredAt ? new Date(Number(registered.registeredAt.seconds) * 1000 + Math.floor(registered.registeredAt.nanos / 1e6)) : new Date();
      await handleOnce(options.database, { processedEvents }, profilesConsumer, eventId, (tx) =>
        createProfileFromRegistration(tx, { userId: registered.userId, region: regionOfPhone(registered.phone) ?? null, createdAt }),
      );
    },
  });
}
