// One chat event as stream items, the same for the delivery consumer and the
// post-commit fast path: both must derive the same item ids, or the stream
// could not tell their two publishes of one event apart.
import { encodeEventCopies, type EventPayload } from "@aviary/runtime/realtime/events";
import type { ItemSequence, UserItem } from "@aviary/runtime/realtime/user-streams";
import { deliveryId } from "../domain/ids.ts";

/** The event's item for each of `userIds` (distinct): its own id (deliveryId), the payload encoded once for all. */
export function memberItems(eventId: string, userIds: readonly string[], payload: EventPayload, sequence?: ItemSequence): UserItem[] {
  const ids = userIds.map((userId) => deliveryId(eventId, userId));
  const copies = encodeEventCopies(ids, payload);
  return userIds.map((userId, i) => ({ userId, id: ids[i]!, payload: copies[i]!, ...(sequence === undefined ? {} : { sequence }) }));
}
