// How a trace crosses the event pipeline. The producer's context is stored
// with the event (the outbox row's `traceparent` header, written at enqueue
// time in the producer's transaction); the outbox relay publishes each event
// under a PRODUCER span, child of that context, and replaces the header with
// its own span's context; each consumer handles the event under a CONSUMER
// span, child of the header's context. So one trace reads: RPC → relay
// publish → consume → what the handler does (fan-out, realtime publish, …).
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Context, Link, Span, TextMapGetter, TextMapPropagator, TextMapSetter, Tracer } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { EventHeaders, type DeliveredEvent, type EventRecord, type SubscribeOptions } from "./bus.ts";

/** Tracer and propagator of the service that publishes or consumes; the global tracer and W3C tracecontext when absent. */
export interface EventTelemetry {
  tracer?: Tracer;
  propagator?: TextMapPropagator;
}

// Events always carry W3C tracecontext (the header is part of the event
// contract), whatever the process registered globally.
const w3c = new W3CTraceContextPropagator();

const headersGetter: TextMapGetter<Record<string, string>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};
const headersSetter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

function tracerOf(telemetry: EventTelemetry | undefined, name: string): Tracer {
  return telemetry?.tracer ?? trace.getTracer(name);
}

/** The context an event's headers carry (the root context when they carry none). */
export function eventContext(headers: Record<string, string>, telemetry?: EventTelemetry): Context {
  return (telemetry?.propagator ?? w3c).extract(ROOT_CONTEXT, headers, headersGetter);
}

function messagingAttributes(system: string, operation: "send" | "process", record: Pick<EventRecord, "topic" | "headers">) {
  return {
    "messaging.system": system,
    "messaging.operation.type": operation,
    "messaging.destination.name": record.topic,
    ...(record.headers[EventHeaders.id] === undefined ? {} : { "messaging.message.id": record.headers[EventHeaders.id] }),
  };
}

function endSpan(span: Span, error: unknown): void {
  if (error !== undefined) {
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  }
  span.end();
}

/** Publishing a batch of records: one PRODUCER span per record, child of the context its headers carry. */
export interface PublishTrace {
  /** The records to send: their `traceparent` now names their PRODUCER span. */
  readonly records: EventRecord[];
  /** Ends the spans; `error` undefined means published. */
  end(error?: unknown): void;
}

export function tracePublish(records: EventRecord[], system: string, telemetry?: EventTelemetry): PublishTrace {
  const tracer = tracerOf(telemetry, "aviary.runtime.outbox");
  const spans: Span[] = [];
  const traced = records.map((record) => {
    const parent = eventContext(record.headers, telemetry);
    const span = tracer.startSpan(`publish ${record.topic}`, { kind: SpanKind.PRODUCER, attributes: messagingAttributes(system, "send", record) }, parent);
    spans.push(span);
    const headers = { ...record.headers };
    delete headers[EventHeaders.traceparent];
    (telemetry?.propagator ?? w3c).inject(trace.setSpan(parent, span), headers, headersSetter);
    return { ...record, headers };
  });
  return {
    records: traced,
    end(error) {
      for (const span of spans) endSpan(span, error);
    },
  };
}

/**
 * Runs `handle` under a CONSUMER span `process <topic>`: the child of the
 * event's producer context when there is one event, else (a batch) a root
 * span linked to each event's context.
 */
export async function traceConsume<T>(
  events: ReadonlyArray<Pick<EventRecord, "topic" | "headers"> & { attempt?: number }>,
  attributes: { system: string; groupId: string },
  telemetry: EventTelemetry | undefined,
  handle: () => Promise<T>,
): Promise<T> {
  const tracer = tracerOf(telemetry, "aviary.runtime.bus");
  const [first] = events;
  if (first === undefined) return handle();
  const single = events.length === 1;
  const parent = single ? eventContext(first.headers, telemetry) : ROOT_CONTEXT;
  const links: Link[] = single
    ? []
    : events.flatMap((event) => {
        const spanContext = trace.getSpanContext(eventContext(event.headers, telemetry));
        return spanContext ? [{ context: spanContext }] : [];
      });
  const span = tracer.startSpan(
    `process ${first.topic}`,
    {
      kind: SpanKind.CONSUMER,
      links,
      attributes: {
        ...messagingAttributes(attributes.system, "process", single ? first : { topic: first.topic, headers: {} }),
        "messaging.consumer.group.name": attributes.groupId,
        ...(single && first.attempt !== undefined ? { "messaging.delivery.attempt": first.attempt } : {}),
        ...(single ? {} : { "messaging.batch.message_count": events.length }),
      },
    },
    parent,
  );
  return within(parent, span, handle);
}

/** Runs `work` under an INTERNAL span of the active context (e.g. a consumer's fan-out). */
export async function inSpan<T>(telemetry: EventTelemetry | undefined, name: string, attributes: Record<string, string | number>, work: () => Promise<T>): Promise<T> {
  return within(context.active(), tracerOf(telemetry, "aviary.runtime").startSpan(name, { attributes }), work);
}

/** Runs `work` with `span` active (under `parent`), and ends the span with its outcome. */
async function within<T>(parent: Context, span: Span, work: () => Promise<T>): Promise<T> {
  try {
    const result = await context.with(trace.setSpan(parent, span), work);
    endSpan(span, undefined);
    return result;
  } catch (error) {
    endSpan(span, error);
    throw error;
  }
}

/**
 * The subscriber with its handlers under CONSUMER spans (`traceConsume`):
 * what both adapters run, so every consumer's work joins the producer's trace.
 */
export function tracedSubscriber(options: SubscribeOptions, system: string): SubscribeOptions {
  const { handle, handleBatch, telemetry } = options;
  const attributes = { system, groupId: options.groupId };
  return {
    ...options,
    handle: (event) => traceConsume([event], attributes, telemetry, () => handle(event)),
    ...(handleBatch === undefined ? {} : { handleBatch: (events: DeliveredEvent[]) => traceConsume(events, attributes, telemetry, () => handleBatch(events)) }),
  };
}
