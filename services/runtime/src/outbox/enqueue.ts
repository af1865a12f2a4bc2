import { randomUUID } from "node:crypto";
import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { context, propagation } from "@opentelemetry/api";
import { sql, type SQL, type SQLWrapper } from "drizzle-orm";
import { EventHeaders, type EventRecord } from "../bus/bus.ts";
import type { Queryable } from "../db/database.ts";
import { outboxChannel, type OutboxEventsTable } from "./tables.ts";

export const PROTOBUF_CONTENT_TYPE = "application/x-protobuf";

export interface EnqueueInput<Desc extends DescMessage> {
  topic: string;
  /** The aggregate id: events with one key are delivered in order. */
  key: string;
  schema: Desc;
  message: MessageShape<Desc>;
  /** W3C trace context; taken from the active OpenTelemetry context when omitted. */
  traceparent?: string;
  /** The event id (a UUID); random when omitted. */
  id?: string;
}

/**
 * Writes an event to the outbox in the caller's transaction: it exists if and
 * only if the state change it describes commits. `pg_notify` is
 * transactional too, so the relay wakes exactly when the row is visible
 * (identical notifications of one transaction are folded into one).
 */
export async function enqueueEvent<Desc extends DescMessage>(
  tx: Queryable,
  tables: { outboxEvents: OutboxEventsTable },
  input: EnqueueInput<Desc>,
): Promise<void> {
  // One statement, one round trip: a data-modifying CTE always runs to completion.
  await tx.execute(sql`WITH inserted AS ${outboxInsert(tx, tables, input)} SELECT ${relayWakeUp(tables)}`);
}

/**
 * A state change and its event in ONE statement: `change` (a drizzle
 * INSERT, UPDATE or DELETE builder, not yet run) and the outbox row go in data-modifying
 * CTEs of one query, which commit together or not at all, so the caller
 * needs no transaction (no BEGIN and COMMIT round trips) when the change is
 * a single statement whose values it knows beforehand (CreatePost).
 */
export async function enqueueEventWith<Desc extends DescMessage>(
  db: Queryable,
  tables: { outboxEvents: OutboxEventsTable },
  change: SQLWrapper,
  input: EnqueueInput<Desc>,
): Promise<void> {
  await db.execute(
    // drizzle parenthesises an embedded query builder, as a CTE's body needs.
    sql`WITH changed AS ${change}, inserted AS ${outboxInsert(db, tables, input)} SELECT ${relayWakeUp(tables)}`,
  );
}

/** The relay's wake-up, `pg_notify(<channel>, '')`, for a statement that writes outbox rows itself. */
export function relayWakeUp(tables: { outboxEvents: OutboxEventsTable }): SQL {
  return sql`pg_notify(${outboxChannel(tables.outboxEvents)}, '')`;
}

/** The outbox row's INSERT for `input` (not run), for a statement that also makes the change it describes. */
export function outboxInsert<Desc extends DescMessage>(db: Queryable, tables: { outboxEvents: OutboxEventsTable }, input: EnqueueInput<Desc>): SQLWrapper {
  return db.insert(tables.outboxEvents).values(outboxRow(input));
}

/**
 * The outbox insert of a prepared statement (db/prepared.ts preparedSql)
 * whose change its own CTEs may find does not apply (a compare-and-set):
 * the row is written only where `condition` holds, a predicate over those
 * CTEs such as sql`exists (select 1 from taken)`, so the event exists
 * exactly when the change does, and the statement can answer why it did not
 * apply instead of failing. The row's values are placeholders, filled by
 * outboxPlaceholderValues.
 */
export function outboxInsertWhere(tables: { outboxEvents: OutboxEventsTable }, condition: SQL): SQL {
  const t = tables.outboxEvents;
  const columns = sql.join([t.id, t.topic, t.key, t.type, t.payload, t.headers].map((column) => sql.identifier(column.name)), sql`, `);
  const value = (name: keyof OutboxRow) => sql.placeholder(`outbox_${name}`);
  return sql`(insert into ${t} (${columns})
    select ${value("id")}::uuid, ${value("topic")}::text, ${value("key")}::text, ${value("type")}::text, ${value("payload")}::bytea, ${value("headers")}::jsonb
    where ${condition})`;
}

/** outboxInsertWhere's placeholder values for the event `input`. */
export function outboxPlaceholderValues<Desc extends DescMessage>(input: EnqueueInput<Desc>): Record<string, unknown> {
  const row = outboxRow(input);
  return { outbox_id: row.id, outbox_topic: row.topic, outbox_key: row.key, outbox_type: row.type, outbox_payload: row.payload, outbox_headers: JSON.stringify(row.headers) };
}

type OutboxRow = ReturnType<typeof outboxRow>;

function outboxRow<Desc extends DescMessage>(input: EnqueueInput<Desc>) {
  const id = input.id ?? randomUUID();
  const traceparent = input.traceparent ?? activeTraceparent();
  const headers: Record<string, string> = {
    [EventHeaders.id]: id,
    [EventHeaders.type]: input.schema.typeName,
    [EventHeaders.contentType]: PROTOBUF_CONTENT_TYPE,
    ...(traceparent ? { [EventHeaders.traceparent]: traceparent } : {}),
  };
  return { id, topic: input.topic, key: input.key, type: input.schema.typeName, payload: toBinary(input.schema, input.message), headers };
}

function activeTraceparent(): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier[EventHeaders.traceparent];
}

/** Thrown for an event that cannot be decoded; retrying will not help (it ends on the DLQ). */
export class EventDecodeError extends Error {
  override readonly name = "EventDecodeError";
}

/** Whether `event` carries a `schema` message (for topics with several event types). */
export function isEventOf(schema: DescMessage, event: Pick<EventRecord, "headers">): boolean {
  return event.headers[EventHeaders.type] === schema.typeName;
}

/**
 * Decodes a delivered event as `schema`, checking its event-type header
 * first: decoding bytes of another message type would "succeed" with garbage.
 */
export function decodeEvent<Desc extends DescMessage>(schema: Desc, event: Pick<EventRecord, "topic" | "headers" | "value">): MessageShape<Desc> {
  const where = `event ${event.headers[EventHeaders.id] ?? "(no event-id)"} on ${event.topic}`;
  const type = event.headers[EventHeaders.type];
  if (type !== schema.typeName) {
    throw new EventDecodeError(`${where} has event-type ${type ?? "(missing)"}, expected ${schema.typeName}`);
  }
  const contentType = event.headers[EventHeaders.contentType];
  if (contentType !== undefined && contentType !== PROTOBUF_CONTENT_TYPE) {
    throw new EventDecodeError(`${where} has content-type ${contentType}, expected ${PROTOBUF_CONTENT_TYPE}`);
  }
  try {
    return fromBinary(schema, event.value);
  } catch (error) {
    throw new EventDecodeError(`${where} is not a valid ${schema.typeName}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
