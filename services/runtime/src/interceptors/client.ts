// Outgoing calls: a CLIENT span per call whose context travels in the
// `traceparent` header, so a request keeps one trace id across services; and a
// helper that builds typed clients over HTTP/2 with that interceptor in place.
import { ConnectError, createClient } from "@connectrpc/connect";
import type { Client, Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import type { DescService } from "@bufbuild/protobuf";
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { TextMapPropagator, TextMapSetter, Tracer } from "@opentelemetry/api";
import { codeName, isServerFault } from "./tracing.ts";
import { followStream } from "./stream.ts";
import { createGrpcJsTransport } from "../grpc-js/transport.ts";

const headersSetter: TextMapSetter<Headers> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

/** Tracer and propagator to use; defaults to the global OpenTelemetry API (set up by startTelemetry). */
export interface ClientTelemetry {
  tracer?: Tracer;
  propagator?: TextMapPropagator;
}

export function createTracePropagationInterceptor(telemetry: ClientTelemetry = {}, system: "grpc" | "connect_rpc" = "grpc"): Interceptor {
  return (next) => async (req) => {
    const tracer = telemetry.tracer ?? trace.getTracer("aviary.runtime.client");
    const span = tracer.startSpan(`${req.service.typeName}/${req.method.name}`, {
      kind: SpanKind.CLIENT,
      attributes: { "rpc.system": system, "rpc.service": req.service.typeName, "rpc.method": req.method.name },
    });
    const ctx = trace.setSpan(context.active(), span);
    if (telemetry.propagator !== undefined) telemetry.propagator.inject(ctx, req.header, headersSetter);
    else propagation.inject(ctx, req.header, headersSetter);

    const finish = (error: unknown) => {
      const code = error === undefined ? undefined : ConnectError.from(error).code;
      if (system === "grpc") span.setAttribute("rpc.grpc.status_code", code ?? 0);
      else if (code !== undefined) span.setAttribute("rpc.connect_rpc.error_code", codeName(code));
      if (isServerFault(code)) span.setStatus({ code: SpanStatusCode.ERROR, message: codeName(code) });
      span.end();
    };
    try {
      const res = await context.with(ctx, () => next(req));
      if (!res.stream) {
        finish(undefined);
        return res;
      }
      return { ...res, message: followStream(res.message, { onEnd: finish }) };
    } catch (e) {
      finish(e);
      throw e;
    }
  };
}

export interface ServiceClientOptions {
  /** Extra interceptors, run inside the tracing one. */
  interceptors?: Interceptor[];
  /** Wire protocol, both over HTTP/2 (default "grpc"). */
  protocol?: "grpc" | "connect";
  /**
   * Which library makes the calls (default "connect", connect-node). With
   * "grpc-js" a @grpc/grpc-js channel does (grpc-js/transport.ts; gRPC
   * only, `protocol` is ignored), and `baseUrl` is the peer's grpc-js
   * listener (ServerOptions.grpcJsPort).
   */
  transport?: "connect" | "grpc-js";
  /** Deadline for calls that set none. */
  defaultTimeoutMs?: number;
  telemetry?: ClientTelemetry;
}

/**
 * Whether `baseUrl` names a peer's grpc-js listener: the `grpc://host:port`
 * form peer URLs take (USER_URL=grpc://user:9082) when a service calls its
 * peers' internal listeners rather than their connect-node ports.
 */
export function isGrpcJsPeerUrl(baseUrl: string): boolean {
  return /^grpc:\/\//i.test(baseUrl);
}

export function createServiceTransport(baseUrl: string, options: ServiceClientOptions = {}): Transport {
  if (isGrpcJsPeerUrl(baseUrl)) options = { ...options, transport: "grpc-js" };
  const protocol = options.transport === "grpc-js" ? "grpc" : (options.protocol ?? "grpc");
  const interceptors = [createTracePropagationInterceptor(options.telemetry, protocol === "grpc" ? "grpc" : "connect_rpc"), ...(options.interceptors ?? [])];
  const common = {
    baseUrl,
    interceptors,
    ...(options.defaultTimeoutMs === undefined ? {} : { defaultTimeoutMs: options.defaultTimeoutMs }),
  };
  if (options.transport === "grpc-js") return createGrpcJsTransport(common);
  // No compression between services: connect-node asks for gzip by default, and a peer then
  // gzips every answer over 1 KiB (a BatchGetPosts page), which both sides paid for in CPU
  // (8 % of the feed's, measured) to save bytes on a loopback or in-cluster hop.
  const uncompressed = { acceptCompression: [] };
  return protocol === "grpc" ? createGrpcTransport({ ...common, ...uncompressed }) : createConnectTransport({ ...common, ...uncompressed, httpVersion: "2" });
}

/** A typed client for `service` at `baseUrl` (e.g. "http://user:8080"). */
export function createServiceClient<T extends DescService>(service: T, baseUrl: string, options: ServiceClientOptions = {}): Client<T> {
  return createClient(service, createServiceTransport(baseUrl, options));
}
