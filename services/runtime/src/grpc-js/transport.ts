// A connect `Transport` backed by a @grpc/grpc-js channel, so
// `createClient(Service, transport)` call sites and client interceptors stay
// as they are while the call itself is made by grpc-js (see server.ts here
// for why). Messages are the protobuf-es ones, encoded with toBinary.
//
// Deadlines are grpc-js' own (sent as grpc-timeout, enforced by the channel);
// the caller's signal cancels the call, and its reason (a ConnectError such
// as the caller's own DeadlineExceeded) is what the call rejects with, as
// with connect's transports. Failures are ConnectErrors with the code, the
// message, the trailers as metadata and the google.rpc details.
import type { DescMessage, DescMethodStreaming, DescMethodUnary, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import type { ContextValues, Interceptor, StreamRequest, StreamResponse, Transport, UnaryRequest, UnaryResponse } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { errorFromStatus, headersFromMetadata, metadataFromHeaders } from "./metadata.ts";

export interface GrpcJsTransportOptions {
  /** "http://host:port" (as for connect's transports) or "host:port". */
  baseUrl: string;
  /** Client interceptors, outermost first, seeing connect's request and response shapes. */
  interceptors?: Interceptor[];
  /** Deadline for calls that set none. */
  defaultTimeoutMs?: number;
  /** grpc-js channel options (keepalive, message limits…). */
  channelOptions?: grpc.ChannelOptions;
}

export interface GrpcJsTransport extends Transport {
  /** Closes the channel; calls after this fail. */
  close(): void;
}

type AnyRequest = UnaryRequest | StreamRequest;
type HeaderInit = ConstructorParameters<typeof Headers>[0];
type AnyResponse = UnaryResponse | StreamResponse;
type AnyFn = (req: AnyRequest) => Promise<AnyResponse>;

/** "http://user:8082/" → "user:8082"; a bare "host:port" is taken as it is. */
export function grpcTarget(baseUrl: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(baseUrl)) return baseUrl;
  const url = new URL(baseUrl);
  const port = url.port === "" ? (url.protocol === "https:" ? "443" : "80") : url.port;
  return `${url.hostname}:${port}`;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The error a call ends with when the caller's signal fired: its reason, as connect reports it. */
function abortError(signal: AbortSignal): ConnectError {
  return ConnectError.from(signal.reason, Code.Canceled);
}

export function createGrpcJsTransport(options: GrpcJsTransportOptions): GrpcJsTransport {
  const client = new grpc.Client(grpcTarget(options.baseUrl), grpc.credentials.createInsecure(), options.channelOptions);
  const interceptors = options.interceptors ?? [];
  const callOptions = (timeoutMs: number | undefined): grpc.CallOptions => {
    const ms = timeoutMs ?? options.defaultTimeoutMs;
    return ms === undefined ? {} : { deadline: Date.now() + ms };
  };
  // The channel's own call is the innermost function; interceptors wrap it once.
  const chain = (next: AnyFn): AnyFn => {
    let fn = next;
    for (let i = interceptors.length - 1; i >= 0; i--) fn = interceptors[i]!(fn);
    return fn;
  };

  /** Cancels `call` when `signal` fires; returns the cleanup. */
  const cancelOn = (signal: AbortSignal, call: grpc.ClientUnaryCall): (() => void) => {
    const cancel = () => call.cancel();
    signal.addEventListener("abort", cancel, { once: true });
    return () => signal.removeEventListener("abort", cancel);
  };

  const unaryCall = chain((req) => {
    const { method, signal } = req as UnaryRequest;
    const input = method.input;
    const output = method.output;
    if (signal.aborted) return Promise.reject(abortError(signal));
    return new Promise<UnaryResponse>((resolve, reject) => {
      let header = new Headers();
      let outcome: { error: grpc.ServiceError } | { value: MessageShape<DescMessage> } | undefined;
      const call = client.makeUnaryRequest(
        `/${method.parent.typeName}/${method.name}`,
        (message: MessageShape<DescMessage>) => asBuffer(toBinary(input, message)),
        (bytes: Buffer) => fromBinary(output, bytes),
        (req as UnaryRequest).message,
        metadataFromHeaders(req.header),
        callOptions(timeoutOf(req)),
        (error, value) => {
          outcome = error !== null ? { error } : { value: value ?? create(output) };
        },
      );
      const stop = cancelOn(signal, call);
      call.on("metadata", (metadata: grpc.Metadata) => (header = headersFromMetadata(metadata)));
      // grpc-js calls back first, then emits the status (with the trailers).
      call.on("status", (status: grpc.StatusObject) => {
        stop();
        if (outcome === undefined || "error" in outcome) {
          reject(signal.aborted ? abortError(signal) : errorFromStatus(outcome?.error ?? status));
          return;
        }
        resolve({ stream: false, service: method.parent, method, header, trailer: headersFromMetadata(status.metadata), message: outcome.value });
      });
    });
  });

  const streamCall = chain(async (req) => {
    const { method, signal } = req as StreamRequest;
    const input = method.input;
    const output = method.output;
    if (signal.aborted) throw abortError(signal);
    const path = `/${method.parent.typeName}/${method.name}`;
    const serialize = (message: MessageShape<DescMessage>) => asBuffer(toBinary(input, message));
    const deserialize = (bytes: Buffer) => fromBinary(output, bytes);
    const metadata = metadataFromHeaders(req.header);
    const opts = callOptions(timeoutOf(req));
    const messages = (req as StreamRequest).message;

    const trailer = new Headers();
    let readable: AsyncIterable<MessageShape<DescMessage>>;
    let call: grpc.ClientUnaryCall;
    if (method.methodKind === "server_streaming") {
      const first = await single(messages);
      const stream = client.makeServerStreamRequest(path, serialize, deserialize, first, metadata, opts);
      call = stream;
      readable = stream;
    } else if (method.methodKind === "bidi_streaming") {
      const stream = client.makeBidiStreamRequest(path, serialize, deserialize, metadata, opts);
      call = stream;
      readable = stream;
      void pump(messages, stream);
    } else {
      let settle: (result: { error: grpc.ServiceError | null; value: MessageShape<DescMessage> | undefined }) => void = () => {};
      const result = new Promise<{ error: grpc.ServiceError | null; value: MessageShape<DescMessage> | undefined }>((r) => (settle = r));
      const stream = client.makeClientStreamRequest(path, serialize, deserialize, metadata, opts, (error, value) => settle({ error, value }));
      call = stream;
      void pump(messages, stream);
      readable = (async function* () {
        const { error, value } = await result;
        if (error !== null) throw error;
        yield value ?? create(output);
      })();
    }
    const stop = cancelOn(signal, call);
    // The status always comes, last: it is what ends the response stream
    // (grpc-js also emits it as an "error" event, which would crash the
    // process unheard; the status carries the same).
    call.on("error", () => {});
    const status = new Promise<grpc.StatusObject>((resolve) =>
      call.on("status", (s: grpc.StatusObject) => {
        stop();
        headersFromMetadata(s.metadata, trailer);
        resolve(s);
      }),
    );
    // Like connect's transports, the call resolves once the response headers
    // arrived (or the call failed before any).
    const header = await new Promise<Headers>((resolve) => {
      call.once("metadata", (m: grpc.Metadata) => resolve(headersFromMetadata(m)));
      call.once("status", () => resolve(new Headers()));
    });
    return {
      stream: true,
      service: method.parent,
      method,
      header,
      trailer,
      message: responses(readable, call, status, signal),
    } satisfies StreamResponse;
  });

  const common = (method: DescMethodUnary | DescMethodStreaming, signal: AbortSignal | undefined, timeoutMs: number | undefined, header: HeaderInit | undefined, contextValues: ContextValues | undefined) => ({
    service: method.parent,
    requestMethod: "POST",
    url: `${options.baseUrl}/${method.parent.typeName}/${method.name}`,
    signal: signal ?? neverAborted,
    header: withTimeout(new Headers(header), timeoutMs),
    contextValues: contextValues ?? createContextValues(),
  });

  return {
    unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeaderInit | undefined,
      message: MessageInitShape<I>,
      contextValues?: ContextValues,
    ): Promise<UnaryResponse<I, O>> {
      const req: UnaryRequest<I, O> = { stream: false, method, message: create(method.input, message), ...common(method, signal, timeoutMs, header, contextValues) };
      return unaryCall(req as UnaryRequest) as Promise<UnaryResponse<I, O>>;
    },
    stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeaderInit | undefined,
      input: AsyncIterable<MessageInitShape<I>>,
      contextValues?: ContextValues,
    ): Promise<StreamResponse<I, O>> {
      const req: StreamRequest<I, O> = { stream: true, method, message: normalized(method.input, input), ...common(method, signal, timeoutMs, header, contextValues) };
      return streamCall(req as StreamRequest) as Promise<StreamResponse<I, O>>;
    },
    close: () => client.close(),
  };
}

// A signal for calls made without one: never aborts, shared by all of them.
const neverAborted = new AbortController().signal;

// The call's deadline travels to the innermost function in a header the
// channel never sends (grpc-js takes the deadline from call options), so
// interceptors can read or change it like connect's timeout headers.
const TIMEOUT_HEADER = "grpc-timeout";

function withTimeout(header: Headers, timeoutMs: number | undefined): Headers {
  if (timeoutMs !== undefined) header.set(TIMEOUT_HEADER, `${Math.max(0, Math.ceil(timeoutMs))}m`);
  return header;
}

function timeoutOf(req: AnyRequest): number | undefined {
  const value = req.header.get(TIMEOUT_HEADER);
  if (value === null) return undefined;
  const m = /^(\d+)m$/.exec(value);
  return m === null ? undefined : Number(m[1]);
}

async function single<T>(source: AsyncIterable<T>): Promise<T> {
  for await (const item of source) return item;
  throw new ConnectError("a server-streaming call needs its request message", Code.Internal);
}

async function* normalized<I extends DescMessage>(schema: I, source: AsyncIterable<MessageInitShape<I>>): AsyncIterable<MessageShape<I>> {
  for await (const item of source) yield create(schema, item);
}

/** Writes every request message, then half-closes; a failing source cancels the call. */
async function pump(source: AsyncIterable<MessageShape<DescMessage>>, call: grpc.ClientWritableStream<MessageShape<DescMessage>>): Promise<void> {
  try {
    for await (const message of source) {
      if (!call.write(message)) await new Promise<void>((resolve) => call.once("drain", () => resolve()));
    }
    call.end();
  } catch {
    call.cancel();
  }
}

/**
 * The response messages: those received, then the call's status as the
 * ConnectError connect would raise for it. A consumer that stops early
 * cancels the call.
 */
async function* responses(
  source: AsyncIterable<MessageShape<DescMessage>>,
  call: grpc.ClientUnaryCall,
  status: Promise<grpc.StatusObject>,
  signal: AbortSignal,
): AsyncIterable<MessageShape<DescMessage>> {
  let ended = false;
  try {
    const it = source[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<MessageShape<DescMessage>>;
      try {
        next = await it.next();
      } catch {
        // The messages received before a failure were yielded; the status says why.
        break;
      }
      if (next.done === true) break;
      yield next.value;
    }
    const end = await status;
    ended = true;
    if (end.code !== grpc.status.OK) throw signal.aborted ? abortError(signal) : errorFromStatus(end);
  } finally {
    if (!ended) call.cancel();
  }
}
