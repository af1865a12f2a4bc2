// Spans when no exporter is configured: bare span contexts instead of SDK
// spans, with the ids and flags the SDK's default sampler would give them, so
// trace ids still reach logs and downstream services.
import test from "ava";
import { context, isSpanContextValid, ROOT_CONTEXT, trace, TraceFlags } from "@opentelemetry/api";
import { startTelemetry } from "../src/telemetry.ts";
import { headersGetter } from "../src/interceptors/tracing.ts";

// The first Telemetry of a process registers the global API; this one has no exporter.
const telemetry = startTelemetry({ serviceName: "telemetry-test" });
test.after.always(() => telemetry.shutdown());

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID = "00f067aa0ba902b7";
const parentFrom = (traceparent: string, tracestate?: string) =>
  telemetry.propagator.extract(ROOT_CONTEXT, new Headers({ traceparent, ...(tracestate === undefined ? {} : { tracestate }) }), headersGetter);

test("a span continues a sampled caller's trace with a fresh span id and records nothing", (t) => {
  const span = telemetry.tracer.startSpan("svc/Method", {}, parentFrom(`00-${TRACE_ID}-${PARENT_SPAN_ID}-01`, "vendor=value"));
  const ctx = span.spanContext();
  t.is(ctx.traceId, TRACE_ID);
  t.regex(ctx.spanId, /^[0-9a-f]{16}$/);
  t.not(ctx.spanId, PARENT_SPAN_ID);
  t.not(ctx.spanId, "0000000000000000");
  t.is(ctx.traceFlags, TraceFlags.SAMPLED);
  t.is(ctx.traceState?.serialize(), "vendor=value");
  t.false(span.isRecording());
});

test("an unsampled caller's trace stays unsampled, as the default parent-based sampler decides", (t) => {
  const span = telemetry.tracer.startSpan("svc/Method", {}, parentFrom(`00-${TRACE_ID}-${PARENT_SPAN_ID}-00`));
  t.is(span.spanContext().traceId, TRACE_ID);
  t.is(span.spanContext().traceFlags, TraceFlags.NONE);
});

test("without a caller's trace (or with root: true) a new sampled trace begins, ids differing per span", (t) => {
  const first = telemetry.tracer.startSpan("a", {}, ROOT_CONTEXT).spanContext();
  const second = telemetry.tracer.startSpan("b", { root: true }, parentFrom(`00-${TRACE_ID}-${PARENT_SPAN_ID}-01`)).spanContext();
  for (const ctx of [first, second]) {
    t.true(isSpanContextValid(ctx));
    t.regex(ctx.traceId, /^[0-9a-f]{32}$/);
    t.is(ctx.traceFlags, TraceFlags.SAMPLED);
  }
  t.not(first.traceId, second.traceId);
  t.not(second.traceId, TRACE_ID);
  t.not(first.spanId, second.spanId);
});

test("ids stay unique across many spans (the random pool is refilled, never reused)", (t) => {
  const ids = new Set<string>();
  for (let i = 0; i < 2_000; i++) ids.add(telemetry.tracer.startSpan("x", {}, ROOT_CONTEXT).spanContext().spanId);
  t.is(ids.size, 2_000);
});

test("startActiveSpan makes the span active inside the callback and returns its value", (t) => {
  const parent = parentFrom(`00-${TRACE_ID}-${PARENT_SPAN_ID}-01`);
  const result = context.with(parent, () =>
    telemetry.tracer.startActiveSpan("outer", (span) => {
      t.is(trace.getActiveSpan()?.spanContext().spanId, span.spanContext().spanId);
      t.is(span.spanContext().traceId, TRACE_ID);
      return 42;
    }),
  );
  t.is(result, 42);
  const explicit = telemetry.tracer.startActiveSpan("explicit", {}, ROOT_CONTEXT, (span) => span.spanContext().traceId);
  t.not(explicit, TRACE_ID);
});

test("the global tracer (client spans, libraries) is the same unexported one, and children join the active trace", (t) => {
  const parent = telemetry.tracer.startSpan("server", {}, parentFrom(`00-${TRACE_ID}-${PARENT_SPAN_ID}-01`));
  const child = context.with(trace.setSpan(context.active(), parent), () => trace.getTracer("aviary.runtime.client").startSpan("client"));
  t.false(child.isRecording());
  t.is(child.spanContext().traceId, TRACE_ID);
  t.not(child.spanContext().spanId, parent.spanContext().spanId);
});
