// The realtime stream through the real Envoy: gRPC, gRPC-web (the browser
// transport), Connect, and REST as newline-delimited JSON; heartbeats keeping
// a stream open past the edge's idle timeout (and the same stream cut without
// them); opening streams rate limited per user and per address.
import test from "ava";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { RealtimeService } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import { startEnvoy, type RunningEnvoy } from "../../services/runtime/test-support/envoy.ts";
import { startTestRateLimit, type TestRateLimit } from "../../services/ratelimit/test/harness.ts";
import { uniqueIp } from "../../services/auth/test/harness.ts";
import { eventually } from "../../services/runtime/test-support/infra.ts";
import { openStream, startTestRealtime, WAIT_MS, type Device, type TestRealtime } from "../../services/realtime/test/harness.ts";
import { restStream } from "../../services/realtime/test/rest-stream.ts";

/** The edge's idle timeout in this file: short, so the heartbeat test needs only seconds. */
const IDLE_SECONDS = 2;
const STREAMS_PER_USER = 3;
const STREAMS_PER_IP = 5;
const rules = [
  { name: "stream_open_per_user", entries: [{ key: "route_class", value: "stream_open" }, { key: "user_id" }], requests_per_unit: STREAMS_PER_USER, unit: "minute" },
  { name: "stream_open_per_ip", entries: [{ key: "route_class", value: "stream_open" }, { key: "remote_address" }], requests_per_unit: STREAMS_PER_IP, unit: "minute" },
];

let rt: TestRealtime;
let limiter: TestRateLimit;
let envoy: RunningEnvoy;
let quiet: { url: string; close(): Promise<void> };
let quietEdge: RunningEnvoy;

test.before(async () => {
  // Heartbeats well inside the edge's idle timeout on the main instance…
  rt = await startTestRealtime({ REALTIME_HEARTBEAT: `${(IDLE_SECONDS * 1000) / 4}ms`, LOG_LEVEL: "warn" });
  limiter = await startTestRateLimit({ RATELIMIT_RULES: JSON.stringify(rules), RATELIMIT_CACHE_TIMEOUT: "1s" });
  const upstreams = { auth: rt.user.auth.service.url, user: rt.user.service.url, realtime: rt.service.url };
  envoy = await startEnvoy({ upstreams, rateLimitService: limiter.service.url, rateLimitTimeoutMs: 2000, trustedProxyHops: 1, streamIdleSeconds: IDLE_SECONDS });
  // …and an instance whose heartbeats are far apart, behind an edge of its own.
  quiet = await rt.startInstance({ REALTIME_HEARTBEAT: "1m" });
  quietEdge = await startEnvoy({ upstreams: { ...upstreams, realtime: quiet.url }, streamIdleSeconds: IDLE_SECONDS });
});

test.after.always(async () => {
  await quietEdge?.stop();
  await envoy?.stop();
  await limiter?.close();
  await rt?.close();
});

/** Each device its own client address, so the per-address limit only bites where a test means it to. */
const fromIp = (device: Device, ip = uniqueIp()): Device => ({ ...device, call: { headers: { ...device.call.headers, "x-forwarded-for": ip } } });

const transports = {
  grpc: () => createGrpcTransport({ baseUrl: envoy.url }),
  "grpc-web": () => createGrpcWebTransport({ baseUrl: envoy.url }),
  connect: () => createConnectTransport({ baseUrl: envoy.url, httpVersion: "1.1" }),
} as const;

for (const [name, transport] of Object.entries(transports)) {
  test(`over ${name} through the edge: ready, live items in order, and a resume that replays what was missed`, async (t) => {
    const ana = fromIp(await rt.signUp());
    const first = openStream(transport(), ana);
    const { offset } = await first.ready();
    await rt.publish(ana.userId, 5, name);
    await first.until("5 live items", (r) => r.offsets().length === 5);
    first.cancel();
    const missed = await rt.publish(ana.userId, 10, `${name}-missed`);
    const resumed = openStream(transport(), fromIp(ana), { since: first.position() });
    t.true((await resumed.ready()).recovered);
    await resumed.until("the 10 missed", (r) => r.offsets().length === 10);
    t.deepEqual([...first.offsets(), ...resumed.offsets()], Array.from({ length: 15 }, (_, i) => offset + 1 + i));
    t.deepEqual(resumed.events().map((e) => e.id), missed);
    resumed.cancel();
  });
}

test("one user's devices on two instances, one through the edge and one direct: both get every item once, in order", async (t) => {
  const ana = fromIp(await rt.signUp());
  const viaEdge = openStream(transports.grpc(), ana);
  const direct = openStream(createGrpcTransport({ baseUrl: quiet.url }), await rt.anotherDevice(ana));
  const { offset } = await viaEdge.ready();
  await direct.ready();
  const ids = await rt.publish(ana.userId, 20, "two-instances");
  await viaEdge.until("20 through the edge", (r) => r.offsets().length >= 20);
  await direct.until("20 on the other instance", (r) => r.offsets().length >= 20);
  for (const reader of [viaEdge, direct]) {
    t.deepEqual(reader.offsets(), Array.from({ length: 20 }, (_, i) => offset + 1 + i));
    t.deepEqual(reader.events().filter((e) => e.offset > 0n).map((e) => e.id), ids);
  }
  viaEdge.cancel();
  direct.cancel();
});

test("REST: the stream is newline-delimited JSON, frames arrive while it stays open, and resume works with query parameters", async (t) => {
  const ana = fromIp(await rt.signUp());
  const stream = restStream(envoy.url, ana, "");
  const ready = () => (stream.lines[0] as { ready?: { position: { epoch: string; offset?: string } } } | undefined)?.ready;
  await waitFor("the ready line", () => ready() !== undefined);
  const ids = await rt.publish(ana.userId, 3, "rest");
  await waitFor("three event lines", () => stream.lines.filter((l) => (l as { event?: unknown }).event).length === 3);
  const events = stream.lines.flatMap((l) => {
    const event = (l as { event?: { id: string; offset: string } }).event;
    return event ? [event] : [];
  });
  t.deepEqual(events.map((e) => e.id), ids);
  const start = Number(ready()!.position.offset ?? "0");
  t.deepEqual(events.map((e) => Number(e.offset)), [start + 1, start + 2, start + 3], "offsets travel as JSON strings (uint64)");
  stream.close();
  const missed = await rt.publish(ana.userId, 2, "rest-missed");
  const resumed = restStream(envoy.url, fromIp(ana), `?since.epoch=${ready()!.position.epoch}&since.offset=${start + 3}`);
  await waitFor("ready and two replayed lines", () => resumed.lines.length >= 3);
  t.true((resumed.lines[0] as { ready: { recovered?: boolean } }).ready.recovered);
  t.deepEqual(resumed.lines.slice(1, 3).map((l) => (l as { event: { id: string } }).event.id), missed);
  resumed.close();
  // Bad input is a JSON status, and no stream.
  const bad = restStream(envoy.url, fromIp(ana), "?since.epoch=not%20valid&since.offset=1");
  await bad.done;
  t.like(bad.lines[0], { code: Code.InvalidArgument });
});

const waitFor = (what: string, condition: () => boolean) => eventually(what, condition, WAIT_MS, 10);

test("heartbeats keep a stream open past the edge's idle timeout; without them the edge cuts it", async (t) => {
  const ana = await rt.signUp();
  const kept = openStream(transports.grpc(), fromIp(ana));
  await kept.ready();
  const cut = openStream(createGrpcTransport({ baseUrl: quietEdge.url }), ana);
  await cut.ready();
  // Three idle timeouts' worth of heartbeats (4 per timeout): the stream outlived the timeout three times over.
  await kept.until("12 heartbeats", (r) => r.frames.filter((f) => f.frame.case === "heartbeat").length >= 12, 60_000);
  t.false(kept.isEnded());
  await cut.until("the idle stream to be cut", (r) => r.isEnded(), 60_000);
  t.truthy(await cut.ended, "cut by the edge, not ended by the service");
  t.is(cut.frames.filter((f) => f.frame.case === "heartbeat").length, 0);
  kept.cancel();
});

test("opening streams is rate limited per user and per client address at the edge", async (t) => {
  const ana = await rt.signUp();
  const opened = [];
  for (let i = 0; i < STREAMS_PER_USER; i++) {
    const s = openStream(transports.grpc(), fromIp(ana));
    await s.ready();
    opened.push(s);
  }
  const over = openStream(transports.grpc(), fromIp(ana));
  t.is(ConnectError.from(await over.ended).code, Code.ResourceExhausted, "the user's fourth open in the window");
  // Another user from one address: the address's limit, whoever opens.
  const ip = uniqueIp();
  const users = await Promise.all(Array.from({ length: STREAMS_PER_IP + 1 }, () => rt.signUp()));
  const fromOne = [];
  for (const user of users.slice(0, STREAMS_PER_IP)) {
    const s = openStream(transports.grpc(), fromIp(user, ip));
    await s.ready();
    fromOne.push(s);
  }
  const overIp = openStream(transports.grpc(), fromIp(users[STREAMS_PER_IP]!, ip));
  t.is(ConnectError.from(await overIp.ended).code, Code.ResourceExhausted, "the address's sixth open, by a user with none yet");
  for (const s of [...opened, ...fromOne]) s.cancel();
});

test("a stream without a token is refused at the edge", async (t) => {
  const anonymous = openStream(createClient(RealtimeService, transports.grpc()), { userId: "", sessionId: "", token: "", email: "", call: { headers: { "x-forwarded-for": uniqueIp() } } });
  t.is(ConnectError.from(await anonymous.ended).code, Code.Unauthenticated);
});
