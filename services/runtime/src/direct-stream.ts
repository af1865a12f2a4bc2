// A direct path for long-lived gRPC server streams (a device's realtime
// stream): the server writes each message straight onto the HTTP/2 stream
// instead of through connect's generic pipeline.
//
// Why: connect serves every call through a chain of async iterables (the
// handler's generator, the interceptors', serialization, enveloping, the node
// adapter's writer), each holding closures, promises and a generator object
// for as long as the call lives, and each allocating on every message. For a
// unary call that is nothing; for 10,000 streams held for an hour it was about
// 30 KiB of heap per stream and most of the CPU an idle stream costs (a
// heartbeat went through every stage). Here a held stream is its HTTP/2
// stream, a context and whatever the handler keeps.
//
// Only plain gRPC over HTTP/2 (application/grpc or application/grpc+proto,
// no compression) comes this way; that is what the edge sends for gRPC,
// gRPC-web and REST clients alike. Anything else (Connect, gRPC-web or JSON
// straight to the service, HTTP/1.1, a compressed request) is served by
// connect as before, by the same handler logic behind the service's
// ServiceImpl. The rules of the standard interceptor chain are applied here
// from the same functions: shutdown refusal, the SERVER span and RPC
// metrics, the deadline, authentication, field validation, error
// sanitisation.
import type http2 from "node:http2";
import { fromBinary, toBinary, type DescMessage, type DescMethodServerStreaming, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues, type ContextValues } from "@connectrpc/connect";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { context, type TextMapGetter } from "@opentelemetry/api";
import { peerKey, type CallContext, type Peer } from "./context.ts";
import type { CallAuthenticator } from "./interceptors/auth.ts";
import type { ErrorSanitizer } from "./interceptors/errors.ts";
import { callTimeoutMs, type DeadlineOptions } from "./interceptors/deadline.ts";
import { observeServerCall } from "./interceptors/tracing.ts";
import type { Telemetry } from "./telemetry.ts";
import { assertValid } from "./validation.ts";

/** Where a direct stream's handler writes its messages. */
export interface DirectStreamOut<T> {
  /** Writes a message; false when the transport is backed up (wait for onWritable before writing more). */
  send(message: T): boolean;
  /** Calls `listener` once the transport can take more. */
  onWritable(listener: () => void): void;
}

/** What a direct stream's handler gets of its call: what asCaller and the context helpers read. */
export type DirectStreamContext = CallContext;

/** A server-streaming method served directly; `serve` resolves when the stream ends normally, rejects with its error. */
export interface DirectServerStream<I extends DescMessage = DescMessage, O extends DescMessage = DescMessage> {
  readonly method: DescMethodServerStreaming<I, O>;
  serve(request: MessageShape<I>, ctx: DirectStreamContext, out: DirectStreamOut<MessageShape<O>>): Promise<void>;
}

/** Typed constructor for a direct stream (infers the message types from the method). */
export function directServerStream<I extends DescMessage, O extends DescMessage>(
  method: DescMethodServerStreaming<I, O>,
  serve: DirectServerStream<I, O>["serve"],
): DirectServerStream<I, O> {
  return { method, serve };
}

/** What the server lends the direct path: the standard chain's rules and its shutdown. */
export interface DirectStreamEnvironment {
  telemetry: Pick<Telemetry, "tracer" | "propagator" | "rpcMetrics">;
  authenticate: CallAuthenticator | undefined;
  sanitize: ErrorSanitizer;
  deadlines: DeadlineOptions | undefined;
  readMaxBytes: number;
  peer: (req: http2.Http2ServerRequest) => Peer;
  /** True once the server is shutting down: new calls are refused. */
  closing: () => boolean;
}

type Ender = (reason: ConnectError) => void;

/** The direct streams of one server, by request path. */
export interface DirectStreams {
  /** The stream for this request, when it can be served directly. */
  match(req: http2.Http2ServerRequest): DirectServerStream | undefined;
  serve(entry: DirectServerStream, req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void;
  /** Aborts every open direct stream with `reason` (shutdown, after the service ended its streams its own way). */
  abortAll(reason: ConnectError): void;
}

const GRPC_PROTO = /^application\/grpc(\+proto)?$/;
/** Frames up to this size are kept for sending again (see `send`). */
const REUSED_FRAME_MAX_BYTES = 64;

const incomingHeadersGetter: TextMapGetter<http2.IncomingHttpHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

function firstValue(v: string | string[] | undefined): string | null {
  return (Array.isArray(v) ? v[0] : v) ?? null;
}

/** gRPC trailers (or trailers-only headers) for an outcome; an error's metadata travels with them. */
function statusTrailers(error: ConnectError | undefined): Record<string, string> {
  const trailer = new Headers();
  if (error !== undefined) error.metadata.forEach((value, key) => trailer.append(key, value));
  setTrailerStatus(trailer, error);
  return Object.fromEntries(trailer);
}

export function createDirectStreams(entries: readonly DirectServerStream[], env: DirectStreamEnvironment): DirectStreams {
  const byPath = new Map(entries.map((e) => [`/${e.method.parent.typeName}/${e.method.name}`, e]));
  const open = new Set<Ender>();

  const match: DirectStreams["match"] = (req) => {
    if (req.httpVersionMajor !== 2) return undefined;
    const entry = byPath.get(req.url ?? "");
    if (entry === undefined) return undefined;
    const type = req.headers["content-type"];
    if (typeof type !== "string" || !GRPC_PROTO.test(type)) return undefined;
    const encoding = req.headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return undefined;
    return entry;
  };

  // The frames go straight onto the raw stream; the compat response object
  // node made for the request only carries the trailers (it answers the
  // stream's wantTrailers event with whatever was added to it).
  const serve = (entry: DirectServerStream, req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void => {
    const stream = req.stream;
    if (env.closing()) {
      // Like the chain's outermost interceptor: refused before anything is traced.
      stream.respond({ ":status": 200, "content-type": "application/grpc+proto", ...statusTrailers(new ConnectError("server is shutting down", Code.Unavailable)) }, { endStream: true });
      return;
    }
    const { method } = entry;
    const procedure = `${method.parent.typeName}/${method.name}`;
    const call = observeServerCall(env.telemetry, { service: method.parent.typeName, method: method.name, system: "grpc", carrier: req.headers, getter: incomingHeadersGetter });
    const controller = new AbortController();
    const end: Ender = (reason) => {
      if (!controller.signal.aborted) controller.abort(reason);
    };
    open.add(end);
    const header = { get: (name: string) => firstValue(req.headers[name]) };
    const timeoutMs = callTimeoutMs(header, true, env.deadlines);
    const deadlineAt = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    const deadline = timeoutMs === undefined ? undefined : setTimeout(() => end(new ConnectError("deadline exceeded", Code.DeadlineExceeded)), timeoutMs);
    // The client went away (or reset the stream): the handler's signal ends the stream.
    const onClose = () => end(new ConnectError("the client closed the stream", Code.Canceled));
    stream.once("close", onClose);

    let responded = false;
    const respond = () => {
      if (responded || stream.destroyed) return;
      responded = true;
      stream.respond({ ":status": 200, "content-type": "application/grpc+proto" }, { waitForTrailers: true });
    };
    // A small frame sent again as the same object (a heartbeat at an
    // unchanged offset) is encoded once; nothing larger is kept.
    let lastMessage: unknown;
    let lastFrame: Uint8Array | undefined;
    const out: DirectStreamOut<MessageShape<DescMessage>> = {
      send(message) {
        if (stream.destroyed || stream.closed) return true;
        respond();
        let frame = message === lastMessage ? lastFrame : undefined;
        if (frame === undefined) {
          frame = encodeEnvelope(0, toBinary(method.output, message));
          lastMessage = frame.length <= REUSED_FRAME_MAX_BYTES ? message : undefined;
          lastFrame = lastMessage === undefined ? undefined : frame;
        }
        return stream.write(frame);
      },
      onWritable(listener) {
        if (stream.destroyed || !stream.writableNeedDrain) queueMicrotask(listener);
        else stream.once("drain", listener);
      },
    };
    const finish = (error: ConnectError | undefined) => {
      open.delete(end);
      clearTimeout(deadline);
      stream.off("close", onClose);
      call.finish(error);
      if (stream.destroyed || stream.closed) return;
      const trailers = statusTrailers(error);
      if (!responded) {
        // Trailers-only: the status in the one HEADERS frame (what the edge's transcoder maps to an HTTP status).
        responded = true;
        stream.respond({ ":status": 200, "content-type": "application/grpc+proto", ...trailers }, { endStream: true });
        return;
      }
      res.addTrailers(trailers);
      stream.end();
    };

    const run = async (): Promise<void> => {
      const body = await readBody(req, env.readMaxBytes);
      const values: ContextValues = createContextValues().set(peerKey, env.peer(req));
      await env.authenticate?.(method, firstValue(req.headers["authorization"]), values);
      const request = decodeRequest(method.input, body);
      assertValid(method.input, request);
      const ctx: DirectStreamContext = {
        values,
        signal: controller.signal,
        timeoutMs: () => (deadlineAt === undefined ? undefined : Math.max(0, deadlineAt - Date.now())),
      };
      await entry.serve(request, ctx, out);
    };
    context
      .with(call.context, run)
      .then(
        // A handler that just returns once its signal fires (the device
        // stream does) still ends with the reason: the deadline, the shutdown.
        () => finish(controller.signal.aborted ? env.sanitize(controller.signal.reason, { procedure, signal: controller.signal }) : undefined),
        (e: unknown) => finish(env.sanitize(e, { procedure, signal: controller.signal })),
      );
  };

  return {
    match,
    serve,
    abortAll(reason) {
      for (const end of [...open]) end(reason);
    },
  };
}

/** The request body, at most `limit` bytes. */
async function readBody(req: http2.Http2ServerRequest, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    // The envelope prefix is 5 bytes on top of the message.
    if (size > limit + 5) throw new ConnectError(`message larger than ${limit} bytes`, Code.ResourceExhausted);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/** The one enveloped, uncompressed message of a server-streaming request. */
function decodeRequest<I extends DescMessage>(schema: I, body: Buffer): MessageShape<I> {
  if (body.length < 5) throw new ConnectError("protocol error: missing request message", Code.InvalidArgument);
  const flags = body[0]!;
  const length = body.readUInt32BE(1);
  if (body.length !== 5 + length) throw new ConnectError("protocol error: a server-streaming request carries exactly one message", Code.InvalidArgument);
  if ((flags & 0b1) !== 0) throw new ConnectError("protocol error: compressed message without grpc-encoding", Code.Internal);
  try {
    return fromBinary(schema, body.subarray(5));
  } catch (e) {
    throw new ConnectError("the request message cannot be decoded", Code.InvalidArgument, undefined, undefined, e);
  }
}
