// Tracing and metrics for one service process.
//
// Spans are always created (so trace ids exist in logs and propagate to other
// services) but only exported when an OTLP endpoint is configured; with
// nothing to export them to, the tracer makes bare span contexts (ids and
// flags, as the SDK's default sampler would set them) instead of recording
// SDK spans that would be thrown away: a cost on every call. Metrics are
// scraped by Prometheus from `/metrics` on the service's own port: one port per
// service keeps Envoy, compose and k8s configs simple.
import { randomFillSync } from "node:crypto";
import { context, INVALID_SPAN_CONTEXT, isSpanContextValid, propagation, trace, TraceFlags, ValueType } from "@opentelemetry/api";
import type { Context, Counter, Histogram, Meter, Span, SpanOptions, TextMapPropagator, Tracer } from "@opentelemetry/api";
import { isTracingSuppressed, W3CTraceContextPropagator } from "@opentelemetry/core";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-node";
import type { SpanExporter, SpanProcessor } from "@opentelemetry/sdk-trace-node";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import http2 from "node:http2";
import type { HttpHandler, HttpResponse } from "./server.ts";
import { observeProcess } from "./metrics.ts";

export interface TelemetryOptions {
  serviceName: string;
  serviceVersion?: string;
  /** OTLP/HTTP base endpoint (e.g. http://otel-collector:4318); spans are not exported when unset. */
  otlpEndpoint?: string | URL;
  /**
   * An extra exporter fed synchronously (SimpleSpanProcessor), e.g. an
   * InMemorySpanExporter in tests.
   */
  spanExporter?: SpanExporter;
}

/** The RPC instruments the tracing interceptor records into. */
export interface RpcMetrics {
  /** `rpc.server.duration`, milliseconds. */
  readonly duration: Histogram;
  /** `rpc.server.requests`, one per finished call. */
  readonly requests: Counter;
}

export interface Telemetry {
  readonly serviceName: string;
  readonly tracer: Tracer;
  /** W3C tracecontext; used directly so tests with several providers never depend on globals. */
  readonly propagator: TextMapPropagator;
  readonly meter: Meter;
  readonly rpcMetrics: RpcMetrics;
  /** Serves the Prometheus text format; server.ts mounts it at /metrics. */
  readonly metricsHandler: HttpHandler;
  /** Flushes and stops exporters. */
  shutdown(): Promise<void>;
}

// The OpenTelemetry API globals (tracer provider, context manager, propagator)
// can be set once per process. The first Telemetry registers them, so code that
// uses the global API (logs' trace ids, client interceptors, libraries) sees
// spans; later ones (several servers in one test process) are self-contained.
let globalOwner: object | undefined;

// Latency buckets in milliseconds: fine-grained where unary RPCs live.
const DURATION_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 10000, 30000];

function tracesUrl(endpoint: string | URL): string {
  const base = endpoint.toString().replace(/\/+$/, "");
  return base.endsWith("/v1/traces") ? base : `${base}/v1/traces`;
}

/**
 * Random ids from a pool of random bytes (one fill per few hundred ids), never
 * all zeros (an invalid W3C id).
 */
function randomIds(): (bytes: 8 | 16) => string {
  const pool = Buffer.allocUnsafe(4096);
  let offset = pool.length;
  return (bytes) => {
    for (;;) {
      if (offset + bytes > pool.length) {
        randomFillSync(pool);
        offset = 0;
      }
      const start = offset;
      offset += bytes;
      for (let i = start; i < offset; i++) if (pool[i] !== 0) return pool.toString("hex", start, offset);
    }
  };
}

/**
 * The tracer when no span is exported. A span is the context alone
 * (trace.wrapSpanContext: a non-recording span), with what the SDK's default
 * sampler (parent-based, always on) would give it: the parent's trace id,
 * flags and trace state, or a new sampled trace; a fresh span id. So trace
 * ids still reach logs and downstream services exactly as before, without
 * the SDK span (attributes, events, clock reads) built for no one.
 */
class UnexportedTracer implements Tracer {
  readonly #id = randomIds();

  startSpan(_name: string, options?: SpanOptions, ctx: Context = context.active()): Span {
    if (isTracingSuppressed(ctx)) return trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
    const parent = options?.root === true ? undefined : trace.getSpanContext(ctx);
    if (parent === undefined || !isSpanContextValid(parent)) return trace.wrapSpanContext({ traceId: this.#id(16), spanId: this.#id(8), traceFlags: TraceFlags.SAMPLED });
    return trace.wrapSpanContext({
      traceId: parent.traceId,
      spanId: this.#id(8),
      traceFlags: parent.traceFlags & TraceFlags.SAMPLED,
      ...(parent.traceState === undefined ? {} : { traceState: parent.traceState }),
    });
  }

  startActiveSpan<F extends (span: Span) => unknown>(name: string, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, options: SpanOptions, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, options: SpanOptions, ctx: Context, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, ...rest: [F] | [SpanOptions, F] | [SpanOptions, Context, F]): ReturnType<F> {
    const fn = rest[rest.length - 1] as F;
    const options = rest.length > 1 ? (rest[0] as SpanOptions) : undefined;
    const parent = rest.length > 2 ? (rest[1] as Context) : context.active();
    const span = this.startSpan(name, options, parent);
    return context.with(trace.setSpan(parent, span), () => fn(span) as ReturnType<F>);
  }
}

/** The SDK provider (registration, context manager, shutdown) handing out the tracer above. */
class UnexportedTracerProvider extends NodeTracerProvider {
  readonly #tracer = new UnexportedTracer();
  override getTracer(): Tracer {
    return this.#tracer;
  }
}

export function startTelemetry(options: TelemetryOptions): Telemetry {
  const resource = resourceFromAttributes({
    "service.name": options.serviceName,
    ...(options.serviceVersion === undefined ? {} : { "service.version": options.serviceVersion }),
  });

  const spanProcessors: SpanProcessor[] = [];
  if (options.otlpEndpoint !== undefined) {
    spanProcessors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: tracesUrl(options.otlpEndpoint) })));
  }
  if (options.spanExporter !== undefined) {
    spanProcessors.push(new SimpleSpanProcessor(options.spanExporter));
  }
  const tracerProvider = spanProcessors.length > 0 ? new NodeTracerProvider({ resource, spanProcessors }) : new UnexportedTracerProvider({ resource });
  const propagator = new W3CTraceContextPropagator();

  const owner = {};
  if (globalOwner === undefined) {
    // register() installs the AsyncLocalStorage context manager as well.
    tracerProvider.register({ propagator });
    globalOwner = owner;
  }

  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const serializer = new PrometheusSerializer();
  const meterProvider = new MeterProvider({ resource, readers: [prometheus] });
  const meter = meterProvider.getMeter("aviary.runtime");

  const rpcMetrics: RpcMetrics = {
    duration: meter.createHistogram("rpc.server.duration", {
      description: "Duration of inbound RPCs",
      unit: "ms",
      valueType: ValueType.DOUBLE,
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_MS },
    }),
    requests: meter.createCounter("rpc.server.requests", {
      description: "Inbound RPCs, by outcome",
      unit: "{request}",
      valueType: ValueType.INT,
    }),
  };

  const stopObservingProcess = observeProcess(meter);

  const reply = (res: HttpResponse, status: number, body: string) => {
    const headers = { "content-type": status === 200 ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8" };
    // The HTTP/1.1 and HTTP/2 response classes have incompatible writeHead overloads.
    if (res instanceof http2.Http2ServerResponse) res.writeHead(status, headers);
    else res.writeHead(status, headers);
    res.end(body);
  };
  const metricsHandler: HttpHandler = (_req, res) => {
    prometheus.collect().then(
      ({ resourceMetrics }) => {
        reply(res, 200, serializer.serialize(resourceMetrics));
      },
      () => {
        reply(res, 500, "# metrics collection failed\n");
      },
    );
  };

  return {
    serviceName: options.serviceName,
    tracer: tracerProvider.getTracer("aviary.runtime"),
    propagator,
    meter,
    rpcMetrics,
    metricsHandler,
    async shutdown() {
      stopObservingProcess();
      if (globalOwner === owner) {
        trace.disable();
        context.disable();
        propagation.disable();
        globalOwner = undefined;
      }
      await Promise.allSettled([tracerProvider.shutdown(), meterProvider.shutdown()]);
    },
  };
}
