// The post service's side of moderation: it follows the moderation topic and
// records suspensions and removals, which its reads apply (read/posts.ts,
// peers.ts withSuspensions). Nothing is deleted: unsuspending or restoring
// brings the content back as it was. Applying an event twice, or an older
// one after a newer (replays), changes nothing: last change wins by the
// event's time. Other event types on the topic are skipped.
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { Database } from "@aviary/runtime/db/database";
import { EventHeaders, type EventBus, type Subscription } from "@aviary/runtime/bus/bus";
import { decodeEvent, EventDecodeError, isEventOf } from "@aviary/runtime/outbox/enqueue";
import { isUuid } from "@aviary/runtime/validation";
import {
  ContentRemovedSchema,
  ContentRestoredSchema,
  UserSuspendedSchema,
  UserUnsuspendedSchema,
} from "@aviary/gen/aviary/events/v1/moderation_events_pb";
import type { ContentTarget } from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import { applyContentModeration, applyUserModeration, type ContentKind } from "../store/moderation.ts";

/** The moderation service's topic (services/moderation/src/events/publish.ts). */
export const moderationEventsTopic = "aviary.moderation.events";

function bad(message: string): never {
  throw new EventDecodeError(message);
}

function timeOf(at: Timestamp | undefined, what: string): Date {
  return at === undefined ? bad(`${what} has no time`) : timestampDate(at);
}

function contentOf(target: ContentTarget | undefined, what: string): { kind: ContentKind; id: string } {
  const kind = target?.kind;
  if (kind?.case === "postId" && isUuid(kind.value)) return { kind: "post", id: kind.value.toLowerCase() };
  if (kind?.case === "commentId" && isUuid(kind.value)) return { kind: "comment", id: kind.value.toLowerCase() };
  return bad(`${what} has no valid target`);
}

function userOf(userId: string, what: string): string {
  return isUuid(userId) ? userId.toLowerCase() : bad(`${what} has an invalid user_id`);
}

export function consumeModerationEvents(options: { database: Database; bus: EventBus; topic: string; groupId: string }): Promise<Subscription> {
  const db = options.database.db;
  return options.bus.subscribe({
    groupId: options.groupId,
    topics: [options.topic],
    handle: async (event) => {
      const what = `${event.headers[EventHeaders.type] ?? "event"} ${event.headers[EventHeaders.id] ?? ""} on ${event.topic}`;
      if (isEventOf(UserSuspendedSchema, event)) {
        const e = decodeEvent(UserSuspendedSchema, event);
        await applyUserModeration(db, { userId: userOf(e.userId, what), suspended: true, changedAt: timeOf(e.suspendedAt, what) });
      } else if (isEventOf(UserUnsuspendedSchema, event)) {
        const e = decodeEvent(UserUnsuspendedSchema, event);
        await applyUserModeration(db, { userId: userOf(e.userId, what), suspended: false, changedAt: timeOf(e.unsuspendedAt, what) });
      } else if (isEventOf(ContentRemovedSchema, event)) {
        const e = decodeEvent(ContentRemovedSchema, event);
        const target = contentOf(e.target, what);
        await applyContentModeration(db, { targetKind: target.kind, targetId: target.id, removed: true, reason: e.reason, changedAt: timeOf(e.removedAt, what) });
      } else if (isEventOf(ContentRestoredSchema, event)) {
        const e = decodeEvent(ContentRestoredSchema, event);
        const target = contentOf(e.target, what);
        await applyContentModeration(db, { targetKind: target.kind, targetId: target.id, removed: false, reason: e.reason, changedAt: timeOf(e.restoredAt, what) });
      }
    },
  });
}
