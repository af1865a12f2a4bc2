// Tracing and metrics for one service process.
//
// Spans are always created (so trace ids exist in logs and propagate to other
// services) but only exported when an OTLP endpoint is configured. Metrics are
// scraped by Prometheus from `/metrics` on the service's own port: one port per
// service keeps Envoy, compose and k8s configs simple.
import { context, propagation, trace, ValueType } from "@opentelemetry/api";
import type { Counter, Histogram, Meter, TextMapPropagator, Tracer } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
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
  const tracerProvider = new NodeTracerProvider({ resource, spanProcessors });
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
