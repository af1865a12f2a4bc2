// Reading a consumed event's fields strictly: a consumer that cannot trust an
// id or a time throws EventDecodeError, which the bus parks on the DLQ
// instead of retrying (the bytes will not get better).
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { EventHeaders, type DeliveredEvent } from "../bus/bus.ts";
import { isUuid } from "../validation.ts";
import { decodeEvent, EventDecodeError } from "./enqueue.ts";

/** The event's message and its event-id header (which must be a UUID). */
export function decodedEvent<Desc extends DescMessage>(schema: Desc, event: DeliveredEvent): { id: string; message: MessageShape<Desc> } {
  const message = decodeEvent(schema, event);
  const id = event.headers[EventHeaders.id] ?? "";
  if (!isUuid(id)) throw new EventDecodeError(`${schema.typeName} on ${event.topic} has no valid event-id`);
  return { id, message };
}

/** A UUID field, lower-cased: Postgres prints UUIDs lower-case, and ids are compared as strings elsewhere (Redis). */
export function eventUuid(value: string, field: string, eventId: string): string {
  if (!isUuid(value)) throw new EventDecodeError(`event ${eventId} has an invalid ${field}`);
  return value.toLowerCase();
}

/** An optional UUID field ("" is absent). */
export function optionalEventUuid(value: string, field: string, eventId: string): string | undefined {
  return value === "" ? undefined : eventUuid(value, field, eventId);
}

/** A required time, at millisecond precision. */
export function eventTime(value: Timestamp | undefined, field: string, eventId: string): Date {
  if (!value) throw new EventDecodeError(`event ${eventId} has no ${field}`);
  return new Date(Number(value.seconds) * 1000 + Math.floor(value.nanos / 1e6));
}
