// The server's direct path for gRPC server streams (direct-stream.ts), with
// RealtimeService.Subscribe's contract as the vehicle: plain gRPC goes the
// direct way, every other protocol through connect, and the direct way keeps
// the standard chain's rules (auth, validation, deadline, sanitised errors,
// span and metrics, shutdown) and gRPC's framing.
import http2 from "node:http2";
import test from "ava";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createClient, type ServiceImpl } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { BadRequestSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { RealtimeService, Rotate_Reason, SubscribeRequestSchema, SubscribeResponseSchema, type SubscribeResponse } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import { requirePrincipal } from "../src/context.ts";
import { directServerStream } from "../src/direct-stream.ts";
import { eventually } from "../test-support/infra.ts";
import { Code, ConnectError, startFixture, stubAuth, type Fixture } from "./server-fixture.ts";

const ready = (streamId: string): SubscribeResponse => create(SubscribeResponseSchema, { frame: { case: "ready", value: { streamId } } });
const rotate = create(SubscribeResponseSchema, { frame: { case: "rotate", value: { reason: Rotate_Reason.MAX_AGE } } });

/** What the direct handler does is picked by the caller's user id (the token's `sub`). */
const signals = new Map<string, AbortSignal>();

const connectImpl: Partial<ServiceImpl<typeof RealtimeService>> = {
  async *subscribe(_request, ctx) {
    requirePrincipal(ctx);
    yield ready("connect");
    yield rotate;
  },
};

const direct = directServerStream(RealtimeService.method.subscribe, async (_request, ctx, out) => {
  const { userId } = requirePrincipal(ctx);
  signals.set(userId, ctx.signal);
  if (userId.startsWith("hold")) {
    // Until the call ends (cancel, deadline, shutdown).
    out.send(ready(`direct:${userId}`));
    await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
    // "hold-quietly" returns instead of throwing, as the device stream does.
    if (userId.startsWith("hold-quietly")) return;
    throw ctx.signal.reason;
  }
  if (userId.startsWith("careless")) {
    out.send(ready("direct"));
    throw new Error("SELECT secret FROM internal.accounts failed at db.internal:5432");
  }
  if (userId.startsWith("bulk")) {
    // More than any flow-control window: the handler must wait for onWritable.
    for (let i = 0; i < 2_000; i++) {
      const frame = create(SubscribeResponseSchema, { frame: { case: "ready", value: { streamId: `${i}:${"x".repeat(1_000)}` } } });
      if (!out.send(frame)) await new Promise<void>((resolve) => out.onWritable(resolve));
    }
    return;
  }
  out.send(ready(`direct:${userId}`));
  out.send(rotate);
});

let fixture: Fixture;
test.before(async () => {
  fixture = await startFixture({
    routes: (router) => {
      router.service(AuthService, stubAuth);
      router.service(RealtimeService, connectImpl);
    },
    directStreams: [direct],
    deadlines: { defaultTimeoutMs: 300, maxTimeoutMs: 600, streamMaxTimeoutMs: 60_000 },
  });
});
test.after.always(async () => fixture.close());

const grpc = () => createClient(RealtimeService, createGrpcTransport({ baseUrl: fixture.url }));
const bearer = async (sub: string) => ({ authorization: `Bearer ${await fixture.token({ sub })}` });

async function collect(stream: AsyncIterable<SubscribeResponse>): Promise<{ frames: SubscribeResponse[]; error?: ConnectError }> {
  const frames: SubscribeResponse[] = [];
  try {
    for await (const frame of stream) frames.push(frame);
    return { frames };
  } catch (e) {
    return { frames, error: ConnectError.from(e) };
  }
}
const streamIds = (frames: SubscribeResponse[]) => frames.map((f) => (f.frame.case === "ready" ? f.frame.value.streamId : f.frame.case));

/** A raw HTTP/2 gRPC call: what a non-connect client (or the edge) puts on the wire. */
async function rawCall(body: Buffer, headers: Record<string, string>): Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; data: Buffer }> {
  const session = http2.connect(fixture.url);
  try {
    return await new Promise((resolve, reject) => {
      const req = session.request({ ":method": "POST", ":path": "/aviary.realtime.v1.RealtimeService/Subscribe", "content-type": "application/grpc", te: "trailers", ...headers });
      let responseHeaders: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      req.on("response", (h) => (responseHeaders = h));
      req.on("trailers", (t) => (trailers = t));
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => resolve({ headers: responseHeaders, trailers, data: Buffer.concat(chunks) }));
      req.on("error", reject);
      req.end(body);
    });
  } finally {
    session.close();
  }
}
const envelope = (payload: Uint8Array, flags = 0) => Buffer.concat([Buffer.from([flags, ...[24, 16, 8, 0].map((s) => (payload.length >>> s) & 0xff)]), payload]);
const requestBytes = toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, {}));

test("plain gRPC is served by the direct path, Connect and gRPC-web by connect, with the same principal rules", async (t) => {
  const headers = await bearer("u-ana");
  t.deepEqual(streamIds((await collect(grpc().subscribe({}, { headers }))).frames), ["direct:u-ana", "rotate"]);
  for (const transport of [createConnectTransport({ baseUrl: fixture.url, httpVersion: "2" }), createConnectTransport({ baseUrl: fixture.url, httpVersion: "1.1" })]) {
    t.deepEqual(streamIds((await collect(createClient(RealtimeService, transport).subscribe({}, { headers }))).frames), ["connect", "rotate"]);
  }
});

test("the direct path frames messages and ends with grpc-status 0 in trailers, readable by a raw HTTP/2 client", async (t) => {
  const reply = await rawCall(envelope(requestBytes), await bearer("u-raw"));
  t.is(Number(reply.headers[":status"]), 200);
  t.is(reply.headers["content-type"], "application/grpc+proto");
  t.is(reply.trailers["grpc-status"], "0");
  const frames: SubscribeResponse[] = [];
  for (let at = 0; at < reply.data.length; ) {
    const length = reply.data.readUInt32BE(at + 1);
    frames.push(fromBinary(SubscribeResponseSchema, reply.data.subarray(at + 5, at + 5 + length)));
    at += 5 + length;
  }
  t.deepEqual(streamIds(frames), ["direct:u-raw", "rotate"]);
});

test("no token, a bad token or a revoked session: UNAUTHENTICATED as a trailers-only response with the challenge", async (t) => {
  const none = await rawCall(envelope(requestBytes), {});
  t.is(none.headers["grpc-status"], String(Code.Unauthenticated));
  t.regex(String(none.headers["www-authenticate"]), /^Bearer error="invalid_request"/);
  t.is(none.data.length, 0);
  const bad = await collect(grpc().subscribe({}, { headers: { authorization: "Bearer not-a-token" } }));
  t.is(bad.error?.code, Code.Unauthenticated);
  fixture.revoked.add("s-revoked");
  const revoked = await collect(grpc().subscribe({}, { headers: { authorization: `Bearer ${await fixture.token({ sub: "u-revoked", sid: "s-revoked" })}` } }));
  t.is(revoked.error?.code, Code.Unauthenticated);
  t.is(revoked.frames.length, 0);
});

test("field rules run before the handler: too many or malformed presence ids are INVALID_ARGUMENT with BadRequest details", async (t) => {
  const headers = await bearer("u-invalid");
  signals.delete("u-invalid");
  const tooMany = await collect(grpc().subscribe({ presenceUserIds: Array.from({ length: 101 }, () => crypto.randomUUID()) }, { headers }));
  t.is(tooMany.error?.code, Code.InvalidArgument);
  const malformed = await collect(grpc().subscribe({ presenceUserIds: ["not-a-uuid"] }, { headers }));
  t.is(malformed.error?.code, Code.InvalidArgument);
  const violations = malformed.error?.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field)) ?? [];
  t.true(violations.some((f) => f.startsWith("presence_user_ids")), JSON.stringify(violations));
  t.false(signals.has("u-invalid"), "the handler never ran");
});

test("malformed request bodies are refused: no message, two messages, a compressed flag without an encoding", async (t) => {
  const headers = await bearer("u-malformed");
  t.is((await rawCall(Buffer.alloc(0), headers)).headers["grpc-status"], String(Code.InvalidArgument));
  t.is((await rawCall(Buffer.concat([envelope(requestBytes), envelope(requestBytes)]), headers)).headers["grpc-status"], String(Code.InvalidArgument));
  t.is((await rawCall(envelope(requestBytes, 1), headers)).headers["grpc-status"], String(Code.Internal));
  t.is((await rawCall(envelope(Buffer.from([0xff, 0xff, 0xff])), headers)).headers["grpc-status"], String(Code.InvalidArgument));
});

test("a handler's own failure after frames went out is INTERNAL without its details, in the trailers", async (t) => {
  const result = await collect(grpc().subscribe({}, { headers: await bearer("careless-1") }));
  t.deepEqual(streamIds(result.frames), ["direct"]);
  t.is(result.error?.code, Code.Internal);
  t.is(result.error?.rawMessage, "internal error");
  t.true(fixture.logs.some((l) => l["msg"] === "unhandled error in handler" && l["procedure"] === "aviary.realtime.v1.RealtimeService/Subscribe"));
});

test("a client's deadline ends the stream with DEADLINE_EXCEEDED and aborts the handler's signal", async (t) => {
  // Long enough for the handler to be reached first even on a busy machine (the test checks that it was).
  const result = await collect(grpc().subscribe({}, { headers: await bearer("hold-deadline"), timeoutMs: 3_000 }));
  t.is(result.error?.code, Code.DeadlineExceeded);
  t.deepEqual(streamIds(result.frames), ["direct:hold-deadline"]);
  // The client's own timer may end its side first; the server's ends the handler's.
  await eventually("the handler's signal to abort", () => signals.get("hold-deadline")?.aborted === true, 5_000);
});

test("a handler that just returns when its signal fires still ends with the reason (the server's own deadline here)", async (t) => {
  // No client-side timer: the raw client only sends grpc-timeout, so the server's timer ends the call.
  const result = await rawCall(envelope(requestBytes), { ...(await bearer("hold-quietly-deadline")), "grpc-timeout": "3S" });
  t.is(result.trailers["grpc-status"], String(Code.DeadlineExceeded), "in the trailers: the handler had sent its first frame");
  t.true(signals.get("hold-quietly-deadline")?.aborted);
});

test("a client that goes away aborts the handler's signal (Canceled)", async (t) => {
  const abort = new AbortController();
  const stream = grpc().subscribe({}, { headers: await bearer("hold-cancel"), signal: abort.signal });
  for await (const frame of stream) {
    t.is(frame.frame.case, "ready");
    break;
  }
  abort.abort();
  await eventually("the handler's signal to abort", () => signals.get("hold-cancel")?.aborted === true, 5_000);
  t.is(ConnectError.from(signals.get("hold-cancel")?.reason).code, Code.Canceled);
});

test("a handler writing more than the flow-control window waits for onWritable and loses nothing", async (t) => {
  const result = await collect(grpc().subscribe({}, { headers: await bearer("bulk-1") }));
  t.is(result.error, undefined);
  t.is(result.frames.length, 2_000);
  t.deepEqual(
    result.frames.map((f) => (f.frame.case === "ready" ? Number(f.frame.value.streamId.split(":")[0]) : -1)),
    Array.from({ length: 2_000 }, (_, i) => i),
  );
});

// Serial (ava runs these before the concurrent tests): the span list is the file's own.
test.serial("each direct stream is one SERVER span with its gRPC status, and counted in the RPC metrics", async (t) => {
  fixture.spans.reset();
  await collect(grpc().subscribe({}, { headers: await bearer("u-traced") }));
  await collect(grpc().subscribe({}, { headers: await bearer("careless-traced") }));
  const spans = fixture.spans.getFinishedSpans().filter((s) => s.name === "aviary.realtime.v1.RealtimeService/Subscribe");
  t.deepEqual(spans.map((s) => s.attributes["rpc.grpc.status_code"]).sort(), [0, Code.Internal]);
  const metrics = await fetch(`${fixture.url}/metrics`).then((r) => r.text());
  t.regex(metrics, /rpc_server_requests[^{]*\{[^}]*rpc_method="Subscribe"[^}]*status="internal"/);
});

test("shutdown ends open direct streams with UNAVAILABLE after the frames already sent", async (t) => {
  // A generous drain budget: close() returns once the stream has ended, and a busy machine must not turn the ending into a cut.
  const own = await startFixture({ routes: (router) => router.service(RealtimeService, connectImpl), directStreams: [direct], shutdownTimeoutMs: 15_000 });
  const client = createClient(RealtimeService, createGrpcTransport({ baseUrl: own.url }));
  const headers = { authorization: `Bearer ${await own.token({ sub: "hold-shutdown" })}` };
  const open = collect(client.subscribe({}, { headers }));
  await eventually("the stream to be in its handler", () => signals.get("hold-shutdown") !== undefined && !signals.get("hold-shutdown")!.aborted, 5_000);
  const closing = own.close();
  const ended = await open;
  t.deepEqual(streamIds(ended.frames), ["direct:hold-shutdown"]);
  t.is(ended.error?.code, Code.Unavailable);
  await closing;
});
