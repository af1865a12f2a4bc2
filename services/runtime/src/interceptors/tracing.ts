// One SERVER span per RPC (continuing the caller's W3C trace), plus the RPC
// duration/request metrics. Outermost of the standard chain, so it measures
// everything else and sees the final, already-sanitised status.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Interceptor } from "@connectrpc/connect";
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Attributes, Context, TextMapGetter } from "@opentelemetry/api";
import type { Telemetry } from "../telemetry.ts";
import { followStream } from "./stream.ts";

// OpenTelemetry RPC semantic-convention attribute names. Spelled out rather
// than imported from the "incubating" semconv entry point, which OTel says not
// to depend on (it changes between minor versions).
const RPC_SYSTEM = "rpc.system";
const RPC_SERVICE = "rpc.service";
const RPC_METHOD = "rpc.method";
const RPC_GRPC_STATUS_CODE = "rpc.grpc.status_code";
const RPC_CONNECT_RPC_ERROR_CODE = "rpc.connect_rpc.error_code";
/** Metric-only: the Connect code name ("ok", "not_found", …), one label for all protocols. */
const STATUS = "status";

export const headersGetter: TextMapGetter<Headers> = {
  keys: (carrier) => [...carrier.keys()],
  get: (carrier, key) => carrier.get(key) ?? undefined,
};

// Spelled once per code: the name is asked on every call.
const CODE_NAMES = new Map<Code, string>(
  Object.values(Code)
    .filter((code): code is Code => typeof code === "number")
    .map((code) => [code, (Code[code] ?? "unknown").replace(/[A-Z]/g, (c, i: number) => (i === 0 ? "" : "_") + c.toLowerCase())]),
);

/** "InvalidArgument" → "invalid_argument", the Connect protocol's spelling. */
export function codeName(code: Code | undefined): string {
  if (code === undefined) return "ok";
  return CODE_NAMES.get(code) ?? "unknown";
}

// Codes that mean the server failed (gRPC's guidance for server span status);
// the others are the caller's problem and leave the span status unset.
const SERVER_FAULTS = new Set<Code>([Code.Unknown, Code.DeadlineExceeded, Code.Unimplemented, Code.Internal, Code.Unavailable, Code.DataLoss]);

export function isServerFault(code: Code | undefined): boolean {
  return code !== undefined && SERVER_FAULTS.has(code);
}

/** "grpc" for gRPC and gRPC-web (their status model), "connect_rpc" for the Connect protocol. */
function rpcSystem(header: Headers): "grpc" | "connect_rpc" {
  return (header.get("content-type") ?? "").startsWith("application/grpc") ? "grpc" : "connect_rpc";
}

/** A server call being traced and measured: its span's context, and how it ends. */
export interface ServerCallObservation {
  /** The span's context: run the call's work inside it. */
  readonly context: Context;
  /** Ends the span and records the metrics; `error` undefined means OK. */
  finish(error: unknown): void;
}

/** What a procedure's calls share: the span name, and the attribute sets (read-only) for the span and each status's metrics. */
interface ProcedureAttributes {
  readonly spanName: string;
  readonly span: Attributes;
  readonly byStatus: Map<string, Attributes>;
}

// Built once per procedure and protocol family rather than per call; the
// metrics SDK still hashes them on each record, but no object is spread per call.
const procedureAttributes = new Map<string, ProcedureAttributes>();

function attributesOf(system: "grpc" | "connect_rpc", service: string, method: string): ProcedureAttributes {
  const key = `${system} ${service}/${method}`;
  let found = procedureAttributes.get(key);
  if (found === undefined) {
    found = { spanName: `${service}/${method}`, span: { [RPC_SYSTEM]: system, [RPC_SERVICE]: service, [RPC_METHOD]: method }, byStatus: new Map() };
    procedureAttributes.set(key, found);
  }
  return found;
}

function metricAttributes(procedure: ProcedureAttributes, status: string): Attributes {
  let attributes = procedure.byStatus.get(status);
  if (attributes === undefined) {
    attributes = { ...procedure.span, [STATUS]: status };
    procedure.byStatus.set(status, attributes);
  }
  return attributes;
}

/**
 * Starts the SERVER span and the clock of one call, continuing the trace in
 * the request headers (`carrier`, read through `getter`). Shared by the
 * interceptor and the server's direct streaming path.
 */
export function observeServerCall<C>(
  telemetry: Pick<Telemetry, "tracer" | "propagator" | "rpcMetrics">,
  call: { service: string; method: string; system: "grpc" | "connect_rpc"; carrier: C; getter: TextMapGetter<C> },
): ServerCallObservation {
  const { tracer, propagator, rpcMetrics } = telemetry;
  const { system } = call;
  const procedure = attributesOf(system, call.service, call.method);
  // Extract into the root context: whatever happens to be active in the
  // server's own async context must not become the parent of a request.
  const parent = propagator.extract(ROOT_CONTEXT, call.carrier, call.getter);
  const span = tracer.startSpan(procedure.spanName, { kind: SpanKind.SERVER, attributes: procedure.span }, parent);
  const started = performance.now();
  return {
    context: trace.setSpan(parent, span),
    finish(error) {
      const code = error === undefined ? undefined : ConnectError.from(error).code;
      if (system === "grpc") span.setAttribute(RPC_GRPC_STATUS_CODE, code ?? 0);
      else if (code !== undefined) span.setAttribute(RPC_CONNECT_RPC_ERROR_CODE, codeName(code));
      if (isServerFault(code)) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: codeName(code) });
      }
      span.end();
      const attributes = metricAttributes(procedure, codeName(code));
      rpcMetrics.duration.record(performance.now() - started, attributes);
      rpcMetrics.requests.add(1, attributes);
    },
  };
}

export function createTracingInterceptor(telemetry: Pick<Telemetry, "tracer" | "propagator" | "rpcMetrics">): Interceptor {
  return (next) => async (req) => {
    const call = observeServerCall(telemetry, {
      service: req.service.typeName,
      method: req.method.name,
      system: rpcSystem(req.header),
      carrier: req.header,
      getter: headersGetter,
    });
    try {
      const res = await context.with(call.context, () => next(req));
      if (!res.stream) {
        call.finish(undefined);
        return res;
      }
      return {
        ...res,
        // Handlers of streaming methods run while the response is iterated,
        // so each pull re-enters the span's context.
        message: followStream(res.message, { pull: (p) => context.with(call.context, p), onEnd: call.finish }),
      };
    } catch (e) {
      call.finish(e);
      throw e;
    }
  };
}
