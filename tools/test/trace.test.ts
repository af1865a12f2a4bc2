// One trace end to end, asserted through a real trace backend: Jaeger v2
// (deploy/local/infra.sh tool jaeger) receives OTLP from the real Envoy edge
// (gRPC) and from the auth, user, post and feed services (HTTP). A CreatePost
// through the edge must yield one trace holding, in parent/child order: the
// edge span → the post service's SERVER span → the outbox relay's PRODUCER
// span → the feed's Kafka CONSUMER span → the feed fan-out span → the
// realtime publish (the feed's live hint).
import test from "ava";
import { randomBytes } from "node:crypto";
import { startTestAuth, type TestAuth } from "../../services/auth/test/harness.ts";
import { startTestUser, type TestUser } from "../../services/user/test/harness.ts";
import { startTestFeed, CONSUMER_WAIT_MS, type TestFeed } from "../../services/feed/test/harness.ts";
import { startEnvoy, type RunningEnvoy } from "../../services/runtime/test-support/envoy.ts";
import { JAEGER_BUILD_TIMEOUT_MS, startJaeger, type JaegerSpan, type JaegerTrace, type RunningJaeger } from "../../services/runtime/test-support/jaeger.ts";

let jaeger: RunningJaeger | undefined;
let auth: TestAuth | undefined;
let user: TestUser | undefined;
let feed: TestFeed | undefined;
let envoy: RunningEnvoy | undefined;

test.after.always(async () => {
  await envoy?.stop();
  await feed?.close();
  await user?.close();
  await auth?.close();
  await jaeger?.stop();
});

const kindOf = (span: JaegerSpan) => span.tags?.find((tag) => tag.key === "span.kind")?.value;
const parentOf = (span: JaegerSpan) => span.references?.find((ref) => ref.refType === "CHILD_OF")?.spanID;

/** Polls the query API until `complete` holds for the trace (or the deadline passes, then fails saying what is there). */
async function waitForTrace(traceId: string, complete: (trace: JaegerTrace) => boolean, timeoutMs: number): Promise<JaegerTrace> {
  const deadline = Date.now() + timeoutMs;
  let last: JaegerTrace | undefined;
  for (;;) {
    last = await jaeger!.trace(traceId);
    if (last && complete(last)) return last;
    if (Date.now() > deadline) {
      const seen = last ? last.spans.map((s) => `${last!.processes[s.processID]?.serviceName}:${s.operationName}`).join(", ") : "nothing";
      throw new Error(`trace ${traceId} incomplete after ${timeoutMs} ms; Jaeger has: ${seen}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

test("a CreatePost through the edge is one trace: edge → post → relay → Kafka consume → fan-out → realtime publish", async (t) => {
  // A cold Jaeger build (once per machine) is the slow part; then well under a minute.
  t.timeout(JAEGER_BUILD_TIMEOUT_MS + 4 * 60_000);
  jaeger = await startJaeger();
  const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpHttpUrl };
  auth = await startTestAuth(otel);
  user = await startTestUser(otel, auth);
  feed = await startTestFeed(otel, { postEnv: otel, deps: { auth, user } });
  envoy = await startEnvoy({
    upstreams: { auth: auth.service.url, user: user.service.url, post: feed.post.service.url, feed: feed.service.url },
    otlpCollector: jaeger.otlpGrpcUrl,
  });
  const author = await feed.signUp();

  // The client starts the trace (as an instrumented app would), so the test knows its id.
  const traceId = randomBytes(16).toString("hex");
  const clientSpanId = randomBytes(8).toString("hex");
  const res = await fetch(`${envoy.url}/v1/posts`, {
    method: "POST",
    headers: { authorization: `Bearer ${author.token}`, "content-type": "application/json", traceparent: `00-${traceId}-${clientSpanId}-01` },
    body: JSON.stringify({ text: "traced from the edge to the feed" }),
  });
  t.is(res.status, 200, await res.clone().text());
  const { post } = (await res.json()) as { post: { postId: string } };

  const service = (trace: JaegerTrace, span: JaegerSpan) => trace.processes[span.processID]?.serviceName;
  const find = (trace: JaegerTrace, serviceName: string, predicate: (span: JaegerSpan) => boolean) =>
    trace.spans.filter((span) => service(trace, span) === serviceName && predicate(span));
  const chain = (trace: JaegerTrace) => {
    const edge = find(trace, "aviary-edge", (s) => parentOf(s) === clientSpanId)[0];
    const server = find(trace, "post", (s) => s.operationName === "aviary.post.v1.PostService/CreatePost" && kindOf(s) === "server")[0];
    const relay = find(trace, "post", (s) => s.operationName === "publish aviary.post.events" && kindOf(s) === "producer")[0];
    const consume = find(trace, "feed", (s) => s.operationName === "process aviary.post.events" && kindOf(s) === "consumer")[0];
    const fanout = find(trace, "feed", (s) => s.operationName === "feed fan-out")[0];
    const realtime = find(trace, "feed", (s) => s.operationName.startsWith("realtime "))[0];
    return { edge, server, relay, consume, fanout, realtime };
  };
  const trace = await waitForTrace(traceId, (tr) => Object.values(chain(tr)).every((span) => span !== undefined), CONSUMER_WAIT_MS + 30_000);
  const { edge, server, relay, consume, fanout, realtime } = chain(trace);
  t.log([edge, server, relay, consume, fanout, realtime].map((s) => `${service(trace, s!)} ${s!.operationName} (${kindOf(s!) ?? "internal"})`).join(" → "));

  // Every span of the trace shares its id; each link of the chain descends from the previous one.
  t.true(trace.spans.every((span) => span.traceID === traceId));
  const byId = new Map(trace.spans.map((span) => [span.spanID, span]));
  const descends = (child: JaegerSpan, ancestor: JaegerSpan) => {
    for (let span: JaegerSpan | undefined = child; span !== undefined; ) {
      const parent = parentOf(span);
      if (parent === ancestor.spanID) return true;
      span = parent === undefined ? undefined : byId.get(parent);
    }
    return false;
  };
  t.true(descends(server!, edge!), "the post service's SERVER span descends from the edge span");
  t.is(parentOf(relay!), server!.spanID, "the relay's PRODUCER span is a child of the span that wrote the outbox row");
  t.is(parentOf(consume!), relay!.spanID, "the feed's CONSUMER span is a child of the relay's span (traceparent in the Kafka headers)");
  t.is(parentOf(fanout!), consume!.spanID, "the fan-out runs in the CONSUMER span");
  t.is(parentOf(realtime!), fanout!.spanID, "the realtime publish runs in the fan-out");
  t.is(relay!.tags?.find((tag) => tag.key === "messaging.system")?.value, "kafka");
  t.truthy(post.postId);
});
