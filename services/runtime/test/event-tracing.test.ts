// How a trace crosses the event pipeline (bus/tracing.ts): the relay's
// PRODUCER span is a child of the context stored with the event and replaces
// its traceparent; the consumer's CONSUMER span is a child of that; work in
// the handler is a child of the CONSUMER span. Against the in-memory bus (the
// Kafka adapter wraps its subscriber the same way; tools/test/trace.test.ts
// runs the whole chain through Kafka and Jaeger).
import test from "ava";
import { context, SpanKind, trace } from "@opentelemetry/api";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-node";
import { EventHeaders, type EventRecord } from "../src/bus/bus.ts";
import { MemoryEventBus } from "../src/bus/memory.ts";
import { inSpan, tracePublish } from "../src/bus/tracing.ts";
import { startTelemetry } from "../src/telemetry.ts";
import { eventually } from "../test-support/infra.ts";

test("publish → consume → handler work is one trace, each span the child of the previous", async (t) => {
  const spans = new InMemorySpanExporter();
  const telemetry = startTelemetry({ serviceName: "event-tracing-test", spanExporter: spans });
  const bus = new MemoryEventBus();
  try {
    const rpc = telemetry.tracer.startSpan("rpc", { kind: SpanKind.SERVER });
    const stored: Record<string, string> = { [EventHeaders.id]: crypto.randomUUID() };
    telemetry.propagator.inject(trace.setSpan(context.active(), rpc), stored, { set: (c, k, v) => void (c[k] = v) });
    rpc.end();
    const record: EventRecord = { topic: "t.events", key: "k", value: new Uint8Array([1]), headers: stored };

    let delivered: string | undefined;
    const sub = await bus.subscribe({
      groupId: "g",
      topics: ["t.events"],
      telemetry,
      handle: (event) =>
        inSpan(telemetry, "work", {}, async () => {
          delivered = event.headers[EventHeaders.traceparent];
        }),
    });
    const published = tracePublish([record], bus.kind, telemetry);
    await bus.publish(published.records);
    published.end();
    await eventually("the delivery", () => delivered !== undefined);
    await sub.stop();

    const finished = spans.getFinishedSpans();
    const named = (name: string) => finished.find((s) => s.name === name)!;
    const [producer, consumer, work] = [named("publish t.events"), named("process t.events"), named("work")];
    t.is(producer.kind, SpanKind.PRODUCER);
    t.is(consumer.kind, SpanKind.CONSUMER);
    t.is(producer.parentSpanContext?.spanId, rpc.spanContext().spanId);
    t.is(consumer.parentSpanContext?.spanId, producer.spanContext().spanId);
    t.is(work.parentSpanContext?.spanId, consumer.spanContext().spanId);
    t.true([producer, consumer, work].every((s) => s.spanContext().traceId === rpc.spanContext().traceId));
    // The published copy names the relay's span; the stored row keeps the writer's.
    t.true(delivered!.includes(producer.spanContext().spanId));
    t.true(stored[EventHeaders.traceparent]!.includes(rpc.spanContext().spanId));
    t.is(consumer.attributes["messaging.consumer.group.name"], "g");
  } finally {
    await bus.close();
    await telemetry.shutdown();
  }
});
