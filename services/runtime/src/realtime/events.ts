// Typed publishing of aviary.realtime.v1 events: producers build the event's
// payload, this encodes it for the port. The offset is the port's to assign,
// so it is left 0 here; the realtime service fills it in on delivery.
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { EventSchema, type Event } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import type { PublishResult, UserStreamPublisher } from "./user-streams.ts";

export type EventPayload = MessageInitShape<typeof EventSchema>["payload"];

export function encodeEvent(id: string, payload: EventPayload, nowMs = Date.now()): Uint8Array {
  return toBinary(EventSchema, create(EventSchema, { id, time: timestampFromMs(nowMs), ...(payload === undefined ? {} : { payload }) }));
}

export function decodeEvent(bytes: Uint8Array): Event {
  return fromBinary(EventSchema, bytes);
}

/**
 * One event for many recipients, each copy with its own id: the payload (and
 * time) is encoded once, and each copy is its id's field followed by those
 * shared bytes (a protobuf message may be the concatenation of its fields'
 * encodings, in any order). Decodes exactly as `encodeEvent(id, payload)`.
 */
export function encodeEventCopies(ids: readonly string[], payload: EventPayload, nowMs = Date.now()): Uint8Array[] {
  const shared = toBinary(EventSchema, create(EventSchema, { time: timestampFromMs(nowMs), ...(payload === undefined ? {} : { payload }) }));
  return ids.map((id) => {
    const head = new BinaryWriter().tag(EventSchema.field.id.number, WireType.LengthDelimited).string(id).finish();
    const copy = new Uint8Array(head.length + shared.length);
    copy.set(head);
    copy.set(shared, head.length);
    return copy;
  });
}

/** A durable event for one user (idempotent by id: use the source event's id). */
export function publishEvent(streams: UserStreamPublisher, userId: string, id: string, payload: EventPayload): Promise<PublishResult> {
  return streams.publish(userId, { id, payload: encodeEvent(id, payload) });
}

/** An ephemeral event for users holding a live stream (or for everyone listed, with onlyLive false). */
export function signalEvent(streams: UserStreamPublisher, userIds: readonly string[], id: string, payload: EventPayload, options: { onlyLive?: boolean } = { onlyLive: true }): Promise<number> {
  return streams.signal(userIds, { id, payload: encodeEvent(id, payload) }, options);
}
