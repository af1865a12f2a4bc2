// Serves the handlers services already give connect's router on a
// @grpc/grpc-js Server instead: the same `ServiceImpl` objects, the same
// protobuf-es messages (toBinary/fromBinary), the same interceptor chain.
//
// Why: connect-node spends most of a call's CPU in its own machinery (a
// chain of async iterables per call, linked abort controllers, a
// DOMException when each call's signal is aborted at its end), and every
// internal hop pays that on both sides. grpc-js frames and dispatches a call
// with far less. This module keeps what our handlers rely on and drops the
// rest:
// - interceptors see connect's UnaryRequest/StreamRequest: `header` is the
//   call's metadata as Headers (plus content-type and the remaining deadline
//   as grpc-timeout, so the deadline and tracing interceptors read what they
//   read from connect), `contextValues` carries the peer, `signal` ends on
//   client cancellation and server shutdown;
// - handlers get a HandlerContext of the same shape, so asCaller(ctx),
//   getPrincipal(ctx) and timeoutMs() work unchanged;
// - errors leave as gRPC statuses with connect's encoding (details in
//   grpc-status-details-bin, error metadata as trailers).
// Unlike connect, a unary call's signal is not aborted when the call ends
// well: nothing of ours waits for that, and it is the DOMException per call.
import type { DescMessage, DescMethod, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { create, fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextKey, createContextValues, createMethodImplSpec, createServiceImplSpec } from "@connectrpc/connect";
import type { ConnectRouter, ContextValues, HandlerContext, Interceptor, MethodImplSpec, StreamRequest, StreamResponse, UnaryRequest, UnaryResponse } from "@connectrpc/connect";
import type { Readable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { callControllerKey, peerKey, type Peer } from "../context.ts";
import { encodeMessage } from "../encoding-memo.ts";
import { headersFromMetadata, metadataFromHeaders, statusFromError } from "./metadata.ts";

type AnyRequest = UnaryRequest | StreamRequest;
type AnyResponse = UnaryResponse | StreamResponse;
type AnyFn = (req: AnyRequest) => Promise<AnyResponse>;
type Ender = (reason: ConnectError) => void;
/** The parts of a grpc-js server call (any kind) this adapter uses. */
interface SurfaceCall {
  readonly metadata: grpc.Metadata;
  readonly cancelled: boolean;
  getDeadline(): grpc.Deadline;
  getPeer(): string;
  sendMetadata(metadata: grpc.Metadata): void;
  once(event: "cancelled", listener: () => void): unknown;
  off(event: "cancelled", listener: () => void): unknown;
}

/** What gets served: every method of the services registered on a router. */
export type MethodSpecs = MethodImplSpec[];

/**
 * `router`, also recording each method implementation registered on it into
 * `specs`, so one `routes(router)` function feeds both connect-node and grpc-js.
 */
export function recordingRouter(router: ConnectRouter, specs: MethodSpecs): ConnectRouter {
  const recording: ConnectRouter = {
    get handlers() {
      return router.handlers;
    },
    service(service, implementation, options) {
      router.service(service, implementation, options);
      specs.push(...Object.values(createServiceImplSpec(service, implementation).methods));
      return recording;
    },
    rpc(method, impl, options) {
      router.rpc(method, impl, options);
      specs.push(createMethodImplSpec(method, impl));
      return recording;
    },
  };
  return recording;
}

export interface GrpcJsServerOptions {
  /** The chain every call goes through, outermost first (the server's standard chain). */
  interceptors: readonly Interceptor[];
  /** Largest accepted request message (grpc-js answers RESOURCE_EXHAUSTED above it). */
  readMaxBytes: number;
  /** The peer of a call from its socket address ("ip" or "[ipv6]", port stripped) and its metadata. */
  peer: (remoteAddress: string, header: (name: string) => string | undefined) => Peer;
  /** Extra grpc-js server options (keepalive, limits). */
  channelOptions?: grpc.ServerOptions;
}

export interface GrpcJsServer {
  readonly server: grpc.Server;
  /** Ends every open call's signal with `reason` (shutdown, once unary calls had their time to drain). */
  abortAll(reason: ConnectError): void;
  /** Binds `host:port` (0 picks a free port) and resolves with the port. */
  listen(host: string, port: number): Promise<number>;
  /** Stops taking calls, waits up to `ms` for open ones, then cuts the rest. */
  close(ms: number): Promise<void>;
}

/** "127.0.0.1:5000" or "[::1]:5000" (grpc-js' getPeer) → the address without the port. */
function addressOf(peer: string): string {
  const bracketed = /^\[([^\]]*)\]:\d+$/.exec(peer);
  if (bracketed !== null) return bracketed[1] ?? "";
  const colon = peer.lastIndexOf(":");
  return colon > 0 && peer.indexOf(":") === colon ? peer.slice(0, colon) : peer;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function decode<I extends DescMessage>(schema: I, bytes: Buffer): MessageShape<I> {
  try {
    return fromBinary(schema, bytes);
  } catch (e) {
    throw new ConnectError("the request message cannot be decoded", Code.InvalidArgument, undefined, undefined, e);
  }
}

/** One call's connect-shaped state: what interceptors and the handler read. */
interface CallState {
  readonly header: Headers;
  readonly values: ContextValues;
  readonly controller: AbortController;
  readonly timeoutMs: () => number | undefined;
  /** Leaves the server's set of open calls. */
  done(): void;
}

// How the innermost function (the handler's side of the chain) finds its
// call's state: interceptors pass the request on by spreading it, and keep
// its contextValues.
const callStateKey = createContextKey<CallState | undefined>(undefined, { description: "aviary.grpc-js.call" });

function stateOf(req: AnyRequest): CallState {
  const state = req.contextValues.get(callStateKey);
  if (state === undefined) throw new ConnectError("grpc-js call state missing", Code.Internal);
  return state;
}

export function createGrpcJsServer(specs: MethodSpecs, options: GrpcJsServerOptions): GrpcJsServer {
  const server = new grpc.Server({
    "grpc.max_receive_message_length": options.readMaxBytes,
    ...options.channelOptions,
  });
  const open = new Set<Ender>();
  const interceptors = [...options.interceptors];

  const begin = (call: SurfaceCall): CallState => {
    const header = headersFromMetadata(call.metadata);
    header.set("content-type", "application/grpc+proto");
    const deadline = call.getDeadline();
    const deadlineAt = deadline instanceof Date ? deadline.getTime() : deadline;
    const timeoutMs = Number.isFinite(deadlineAt) ? () => Math.max(0, deadlineAt - Date.now()) : () => undefined;
    // The deadline interceptor reads the client's deadline from grpc-timeout,
    // which grpc-js takes out of the metadata; put back what is left of it.
    const left = timeoutMs();
    if (left !== undefined) header.set("grpc-timeout", `${Math.ceil(left)}m`);
    const controller = new AbortController();
    const end: Ender = (reason) => {
      if (!controller.signal.aborted) controller.abort(reason);
    };
    open.add(end);
    const onCancelled = () =>
      end(left !== undefined && timeoutMs() === 0 ? new ConnectError("deadline exceeded", Code.DeadlineExceeded) : new ConnectError("the client cancelled the call", Code.Canceled));
    call.once("cancelled", onCancelled);
    const values = createContextValues().set(
      peerKey,
      options.peer(addressOf(call.getPeer()), (name) => header.get(name) ?? undefined),
    );
    const state: CallState = {
      header,
      values,
      controller,
      timeoutMs,
      done: () => {
        open.delete(end);
        call.off("cancelled", onCancelled);
      },
    };
    // The deadline interceptor aborts this controller at the deadline rather
    // than linking a second one to it.
    values.set(callStateKey, state).set(callControllerKey, controller);
    return state;
  };

  const commonRequest = (spec: MethodImplSpec, state: CallState) => ({
    service: spec.method.parent,
    requestMethod: "POST",
    url: `/${spec.method.parent.typeName}/${spec.method.name}`,
    signal: state.controller.signal,
    header: state.header,
    contextValues: state.values,
  });

  const handlerContext = (spec: MethodImplSpec, req: AnyRequest, state: CallState, response: { header: Headers; trailer: Headers }): HandlerContext => ({
    method: spec.method,
    service: spec.method.parent,
    signal: req.signal,
    timeoutMs: state.timeoutMs,
    requestMethod: "POST",
    requestHeader: req.header,
    responseHeader: response.header,
    responseTrailer: response.trailer,
    protocolName: "grpc",
    values: req.contextValues,
    url: `/${spec.method.parent.typeName}/${spec.method.name}`,
  });

  const fail = (error: unknown): grpc.StatusObject & Error => {
    const status = statusFromError(ConnectError.from(error));
    return Object.assign(new Error(status.details), status);
  };

  const sendHeader = (call: SurfaceCall, header: Headers) => {
    let any = false;
    header.forEach(() => (any = true));
    if (any) call.sendMetadata(metadataFromHeaders(header));
  };

  /** Iterates a handler's (already intercepted) response stream onto a writable call. */
  const writeAll = async <O extends DescMessage>(call: grpc.ServerWritableStream<unknown, MessageShape<O>>, messages: AsyncIterable<MessageShape<O>>, signal: AbortSignal) => {
    for await (const message of messages) {
      if (call.cancelled) break;
      if (!call.write(message)) {
        await new Promise<void>((resolve) => {
          const go = () => {
            call.off("drain", go);
            signal.removeEventListener("abort", go);
            resolve();
          };
          call.once("drain", go);
          signal.addEventListener("abort", go, { once: true });
        });
      }
    }
  };

  async function* decodeAll<I extends DescMessage>(schema: I, source: AsyncIterable<Buffer>): AsyncIterable<MessageShape<I>> {
    for await (const chunk of source) yield decode(schema, chunk);
  }

  const serveUnary = (spec: MethodImplSpec & { kind: "unary" }): grpc.handleUnaryCall<Buffer, MessageShape<DescMessage>> => {
    const method = spec.method;
    const invoke: AnyFn = async (req) => {
      const response = { header: new Headers(), trailer: new Headers() };
      const output = await spec.impl((req as UnaryRequest).message, handlerContext(spec, req, stateOf(req), response));
      return { stream: false, message: create(method.output, output), method, service: method.parent, ...response };
    };
    // The interceptors are closures over `next`: built once per method, not per call.
    const chain = applyInterceptors(invoke, interceptors);
    return (call, callback) => {
      const s = begin(call);
      let message: MessageShape<DescMessage>;
      try {
        message = decode(method.input, call.request);
      } catch (e) {
        s.done();
        callback(fail(e));
        return;
      }
      chain({ stream: false, message, method, ...commonRequest(spec, s) } as UnaryRequest).then(
        (res) => {
          s.done();
          sendHeader(call, res.header);
          callback(null, res.message as MessageShape<DescMessage>, metadataFromHeaders(res.trailer));
        },
        (e: unknown) => {
          s.done();
          callback(fail(e));
        },
      );
    };
  };

  /** Server-, client- and bidi-streaming methods: the request and the response as async iterables, as connect hands them to interceptors. */
  const serveStream = (spec: MethodImplSpec) => {
    const method = spec.method as DescMethod & { methodKind: "server_streaming" | "client_streaming" | "bidi_streaming" };
    const invoke: AnyFn = async (req) => {
      const response = { header: new Headers(), trailer: new Headers() };
      const ctx = handlerContext(spec, req, stateOf(req), response);
      const input = (req as StreamRequest).message;
      let output: AsyncIterable<MessageShape<DescMessage>>;
      if (spec.kind === "server_streaming") output = normalized(method.output, spec.impl(await single(input), ctx));
      else if (spec.kind === "bidi_streaming") output = normalized(method.output, spec.impl(input, ctx));
      else if (spec.kind === "client_streaming") output = once(create(method.output, await spec.impl(input, ctx)));
      else throw new ConnectError("not a streaming method", Code.Internal);
      return { stream: true, message: output, method, service: method.parent, ...response } as StreamResponse;
    };
    const chain = applyInterceptors(invoke, interceptors);

    return (call: SurfaceCall & { request?: Buffer }, respond: (res: StreamResponse, signal: AbortSignal) => Promise<void>, failWith: (error: unknown) => void) => {
      const s = begin(call);
      const input: AsyncIterable<MessageShape<DescMessage>> =
        spec.kind === "server_streaming"
          ? once(decode(method.input, call.request ?? Buffer.alloc(0)))
          : // Not the stream's own async iterator: at the end of the input it
            // destroys the stream, response half and all, and the status
            // would never be sent.
            decodeAll(method.input, (call as unknown as Readable).iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>);
      const run = async () => {
        const res = (await chain({ stream: true, message: input, method, ...commonRequest(spec, s) } as StreamRequest)) as StreamResponse;
        await respond(res, s.controller.signal);
      };
      run().then(
        () => s.done(),
        (e: unknown) => {
          s.done();
          failWith(e);
        },
      );
    };
  };

  for (const spec of specs) {
    const path = `/${spec.method.parent.typeName}/${spec.method.name}`;
    const output = spec.method.output;
    // encodeMessage: a response marked unchanging (a cached page) is encoded once.
    const serialize = (message: MessageShape<DescMessage>) => asBuffer(encodeMessage(output, message));
    const raw = (bytes: Buffer) => bytes;
    switch (spec.kind) {
      case "unary":
        server.register(path, serveUnary(spec), serialize, raw, "unary");
        break;
      case "server_streaming":
      case "bidi_streaming": {
        const serve = serveStream(spec);
        const handler = (call: grpc.ServerWritableStream<Buffer, MessageShape<DescMessage>>) =>
          serve(
            call,
            async (res, signal) => {
              sendHeader(call, res.header);
              await writeAll(call, res.message, signal);
              // A handler that just returns once its signal fires (a
              // subscription at shutdown) still ends with the reason.
              if (signal.aborted) throw signal.reason;
              call.end(metadataFromHeaders(res.trailer));
            },
            (e) => call.emit("error", fail(e)),
          );
        server.register(path, handler, serialize, raw, spec.kind === "server_streaming" ? "serverStream" : "bidi");
        break;
      }
      case "client_streaming": {
        const serve = serveStream(spec);
        const handler = (call: grpc.ServerReadableStream<Buffer, MessageShape<DescMessage>>, callback: grpc.sendUnaryData<MessageShape<DescMessage>>) =>
          serve(
            call,
            async (res) => {
              sendHeader(call, res.header);
              let last: MessageShape<DescMessage> | undefined;
              for await (const message of res.message) last = message;
              callback(null, last, metadataFromHeaders(res.trailer));
            },
            (e) => callback(fail(e)),
          );
        server.register(path, handler, serialize, raw, "clientStream");
        break;
      }
    }
  }

  return {
    server,
    abortAll(reason) {
      for (const end of [...open]) end(reason);
    },
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        const target = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
        server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error)));
      }),
    close: async (ms) => {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, ms)))),
      ]);
      clearTimeout(timer);
      server.forceShutdown();
    },
  };
}

/** connect's applyInterceptors (not exported by its package): the first interceptor is the outermost. */
function applyInterceptors(next: AnyFn, interceptors: readonly Interceptor[]): AnyFn {
  let fn = next;
  for (let i = interceptors.length - 1; i >= 0; i--) fn = interceptors[i]!(fn);
  return fn;
}

async function* once<T>(value: T): AsyncIterable<T> {
  yield value;
}

/** The one message of a server-streaming request. */
async function single<T>(source: AsyncIterable<T>): Promise<T> {
  for await (const item of source) return item;
  throw new ConnectError("protocol error: missing request message", Code.InvalidArgument);
}

async function* normalized<O extends DescMessage>(schema: O, source: AsyncIterable<MessageInitShape<O>>): AsyncIterable<MessageShape<O>> {
  for await (const item of source) yield create(schema, item);
}

