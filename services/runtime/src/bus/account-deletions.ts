// The one event every service that holds user data acts on: AccountDeleted
// on the auth topic (services/auth/src/domain/deletion-scheduler.ts). Each
// service subscribes in a group of its own and purges what it owns; the
// purges are idempotent by construction (deleting what is gone, tombstoning
// what is tombstoned), so a redelivery or a replay changes nothing.
import { isEventOf } from "../outbox/enqueue.ts";
import { decodedEvent, eventTime, eventUuid } from "../outbox/fields.ts";
import type { EventTelemetry } from "./tracing.ts";
import type { EventBus, Subscription } from "./bus.ts";
import { AccountDeletedSchema } from "@aviary/gen/aviary/events/v1/auth_events_pb";

/** The auth service's public topic, keyed by user id. */
export const authEventsTopic = "aviary.auth.events";

/**
 * Who a deleted account's remains say they were by or about, where a row
 * stays but must not name the account: the nil UUID, which no account has
 * (chat messages' sender, moderation reports' target). Clients show it as a
 * deleted account.
 */
export const DELETED_ACCOUNT_ID = "00000000-0000-0000-0000-000000000000";

/** The account-deletion subscription's group: the service's consumer group, suffixed (a group per topic set). */
export function accountsGroupOf(groupId: string): string {
  return `${groupId}-accounts`;
}

export interface AccountDeleted {
  eventId: string;
  userId: string;
  deletedAt: Date;
}

export function consumeAccountDeletions(options: {
  bus: EventBus;
  groupId: string;
  purge: (deleted: AccountDeleted) => Promise<void>;
  telemetry?: EventTelemetry;
}): Promise<Subscription> {
  return options.bus.subscribe({
    groupId: options.groupId,
    topics: [authEventsTopic],
    ...(options.telemetry === undefined ? {} : { telemetry: options.telemetry }),
    handle: async (event) => {
      // Logins, sessions, two-factor changes: not this subscription's business.
      if (!isEventOf(AccountDeletedSchema, event)) return;
      const { id, message } = decodedEvent(AccountDeletedSchema, event);
      await options.purge({ eventId: id, userId: eventUuid(message.userId, "user_id", id), deletedAt: eventTime(message.deletedAt, "deleted_at", id) });
    },
  });
}
