// A real Prometheus (Debian's package, deploy/local/infra.sh tool prometheus)
// scrapes real services during a short workload, and every PromQL
// expression the project ships — each Grafana dashboard query and each alert
// rule — must return data through its HTTP API.
//
// Started: auth (twice: the notification harness's, and one with SMTP to
// Mailpit for code deliveries), user, post, notification (ingest + push,
// with the local APNs server), realtime, chat, ratelimit, and the real Envoy
// edge in front of them (its /stats/prometheus scraped too), all on real
// PostgreSQL, Redis and Kafka. The workload: a register that mails a code, a
// like that becomes a notification and pushes (one delivered, one that
// keeps failing), an undecodable push request (dead-lettered), a CreatePost
// and a device stream through the edge (rate-limited routes), a stream
// opened and closed at the service, a chat typing call.
//
// Alert rules compare against thresholds a healthy short run never reaches
// (and `for:` durations it never lasts), so for each alert its inner
// expression — the rule without the trailing `> threshold` — is what must
// return data; the full rule is evaluated too (empty: nothing fires, except
// the dead-letter alert, which the parked request fires). Selectors of only
// server faults, 5xx or dead-lettered code deliveries, which a healthy run
// has none of, are widened to every outcome (faultsAsAny).
// deploy/prometheus/alerts.test.yml (promtool test rules, make
// check-alerts) covers when each alert fires and when it stays quiet.
import test from "ava";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { LikeCreatedSchema } from "@aviary/gen/aviary/events/v1/post_events_pb";
import { RealtimeService } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import { startTestAuth, type TestAuth } from "../../services/auth/test/harness.ts";
import { startTestChat, type TestChat } from "../../services/chat/test/harness.ts";
import { postEventsTopic } from "../../services/notification/src/index.ts";
import { startTestNotification, type TestNotification } from "../../services/notification/test/harness.ts";
import { startTestRateLimit, type TestRateLimit } from "../../services/ratelimit/test/harness.ts";
import { openStream, startTestRealtime, type TestRealtime } from "../../services/realtime/test/harness.ts";
import { startEnvoy, type RunningEnvoy } from "../../services/runtime/test-support/envoy.ts";
import { eventually, uniqueName } from "../../services/runtime/test-support/infra.ts";
import { mailCatcher, type MailCatcher } from "../../services/runtime/test-support/mailpit.ts";
import { startPrometheus, type RunningPrometheus } from "../../services/runtime/test-support/prometheus.ts";
import { alertExpressions, dashboardExpressions, interpolate } from "./promql.ts";

let prometheus: RunningPrometheus | undefined;
let mail: MailCatcher | undefined;
let codes: TestAuth | undefined;
let n: TestNotification | undefined;
let realtime: TestRealtime | undefined;
let chat: TestChat | undefined;
let limiter: TestRateLimit | undefined;
let envoy: RunningEnvoy | undefined;

test.after.always(async () => {
  await prometheus?.stop();
  await envoy?.stop();
  await chat?.close();
  await realtime?.close();
  await limiter?.close();
  await n?.close();
  await codes?.close();
});

/**
 * A healthy run has no server faults, no 5xx and no dead-lettered code
 * deliveries, so a selector of only those outcomes has no series yet: it is
 * widened to every outcome of the same metric, which runs the expression's
 * shape (metric, labels, aggregation, the ratio) over series that exist.
 */
const faultsAsAny = (expr: string) =>
  expr
    .replaceAll('status=~"unknown|internal|unavailable|data_loss|deadline_exceeded"', 'status=~".+"')
    .replaceAll('envoy_response_code_class="5"', 'envoy_response_code_class=~".+"')
    .replaceAll('auth_code_deliveries_total{outcome="dead_lettered"}', 'auth_code_deliveries_total{outcome=~".+"}');

/** An alert's expression without its trailing comparison: what has data while nothing fires. */
const innerOf = (expr: string) => expr.replace(/\s*(>|<|>=|<=|==|!=)\s*[-+]?[\d.]+(e[-+]?\d+)?\s*$/i, "");

test("every dashboard and alert expression returns data from a real Prometheus scraping the services", async (t) => {
  t.timeout(6 * 60_000);
  mail = await mailCatcher();
  const [smtpHost = "", smtpPort = ""] = mail.smtp.split(":");
  codes = await startTestAuth({
    AUTH_DELIVERY_TOPIC: uniqueName("auth_code_deliveries_prom"),
    AUTH_SMTP_HOST: smtpHost,
    AUTH_SMTP_PORT: smtpPort,
    AUTH_SMTP_USER: "aviary",
    AUTH_SMTP_PASS: "smtp-test-password",
    AUTH_SMTP_FROM: "Aviary <no-reply@aviary.test>",
  });
  // Two sends per device, so the failing device gives up quickly.
  n = await startTestNotification({ PUSH_MAX_ATTEMPTS: "2" });
  const user = n.post.user;
  realtime = await startTestRealtime({}, { user });
  chat = await startTestChat({}, { user });
  // Rules for the route classes the workload uses (the edge sends route_class + user_id descriptors), limits it never reaches.
  limiter = await startTestRateLimit({
    RATELIMIT_RULES: JSON.stringify([
      { name: "write_per_user", entries: [{ key: "route_class", value: "write" }, { key: "user_id" }], requests_per_unit: 1000, unit: "minute" },
      { name: "stream_open_per_user", entries: [{ key: "route_class", value: "stream_open" }, { key: "user_id" }], requests_per_unit: 1000, unit: "minute" },
    ]),
  });
  const auth = n.auth.service.url;
  const limiterUrl = limiter.service.url;
  envoy = await startEnvoy({
    upstreams: { auth, auth_jwks: auth, user: user.service.url, post: n.post.service.url, notification: n.service.url, realtime: realtime.service.url, chat: chat.service.url },
    rateLimitService: limiter.service.url,
  });
  const targets = [
    { service: "auth", url: auth },
    { service: "auth-codes", url: codes.service.url },
    { service: "user", url: user.service.url },
    { service: "post", url: n.post.service.url },
    { service: "notification", url: n.service.url },
    { service: "realtime", url: realtime.service.url },
    { service: "chat", url: chat.service.url },
    { service: "ratelimit", url: limiter.service.url },
    { service: "edge", url: envoy.adminUrl, metricsPath: "/stats/prometheus" },
  ];
  prometheus = await startPrometheus(targets);
  await prometheus.scraped(1);

  // --- the workload ---------------------------------------------------------
  // A code mailed by the sender role (auth_code_deliveries_*), and a wrong guess at it (a cache lookup that hits: cache_lookups_total).
  const email = `${uniqueName("prom")}@aviary.test`;
  await codes.client.register({ identity: { case: "email", value: email }, password: "a-long-test-password-1234" });
  await codes.client.verifyIdentity({ identity: { case: "email", value: email }, code: "000000" }).catch(() => undefined);
  // A like → notification → push: one iOS device delivered, one that answers 503 until the worker gives up.
  const author = await n.signUp();
  await n.registerDevice(author, "ios");
  const failing = await n.registerDevice(author, "ios");
  n.apns.respond(failing.token, [
    { status: 503, reason: "ServiceUnavailable" },
    { status: 503, reason: "ServiceUnavailable" },
  ]);
  const postId = crypto.randomUUID();
  await n.publish(postEventsTopic, postId, LikeCreatedSchema, { postId, likerId: crypto.randomUUID(), postAuthorId: author.userId, createdAt: timestampFromDate(new Date()) });
  // A push request without a valid event id: parked on <topic>.dlq at once (events_consumed_total{outcome="dead_lettered"}).
  await n.bus.publish([
    { topic: n.env["NOTIFICATION_EVENTS_TOPIC"]!, key: "garbage", value: new Uint8Array([0xff, 0x00]), headers: { "event-id": "not-a-uuid", "event-type": "aviary.events.v1.NotificationCreated" } },
  ]);
  // A write through the edge (rate-limited, transcoded, JWT-verified) that goes out through the post outbox.
  const created = await fetch(`${envoy.url}/v1/posts`, {
    method: "POST",
    headers: { authorization: `Bearer ${author.token}`, "content-type": "application/json" },
    body: JSON.stringify({ text: "scraped" }),
  });
  t.is(created.status, 200, await created.clone().text());
  // A device stream held open through the edge, one opened and ended at the service (Subscribe's duration is recorded when it ends).
  const device = await realtime.signUp();
  // The edge asks the limiter about each stream open, but the limiter answers
  // "allow" without a decision past its 40 ms budget (counted as a fail-open),
  // which one call can hit on a busy machine (it did under a CPU hog): open
  // and end streams through the edge until one open was decided.
  const edgeTransport = createGrpcTransport({ baseUrl: envoy.url });
  await eventually(
    "the limiter to decide a stream open through the edge",
    async () => {
      const probe = openStream(edgeTransport, device);
      await probe.ready();
      probe.cancel();
      await probe.ended;
      const exposition = await (await fetch(`${limiterUrl}/metrics`)).text();
      return /^ratelimit_decisions_total\{[^}]*rule="stream_open/m.test(exposition);
    },
    120_000,
    100,
  );
  const held = openStream(edgeTransport, device);
  const ended = openStream(createClient(RealtimeService, createGrpcTransport({ baseUrl: realtime.service.url })), device);
  await held.ready();
  await ended.ready();
  ended.cancel();
  await ended.ended;
  // A typing call on a conversation that does not exist: counted whatever its outcome.
  await chat.client.setTyping({ conversationId: crypto.randomUUID() }, device.call).catch(() => undefined);
  // Unary calls at realtime and a post lookup that is NOT_FOUND (an outcome other than ok).
  await realtime.client.setPresence({}, device.call).catch(() => undefined);
  await n.post.client.getPost({ postId: crypto.randomUUID() }, author.call).catch(() => undefined);

  // --- every expression must answer -----------------------------------------
  const dashboardVars = { service: "post", rateInterval: "1m" };
  const checks = [
    ...dashboardExpressions().map(({ where, expr }) => ({ where, query: faultsAsAny(interpolate(expr, dashboardVars)), full: undefined as string | undefined })),
    ...alertExpressions().map(({ where, expr }) => ({ where: `${where} (inner expression)`, query: faultsAsAny(innerOf(expr)), full: expr })),
  ];
  t.true(checks.length > 40, `${checks.length} expressions`);
  // Poll Prometheus until every expression has data (consumers and the push worker run asynchronously), then assert.
  const deadline = Date.now() + 4 * 60_000;
  let empty = checks;
  while (empty.length > 0 && Date.now() < deadline) {
    await prometheus.scraped(1);
    const answers = await Promise.all(empty.map(async (check) => ({ check, samples: await prometheus!.query(check.query) })));
    empty = answers.filter((a) => a.samples.length === 0).map((a) => a.check);
  }
  for (const check of checks) t.false(empty.includes(check), `${check.where}: no data for ${check.query}`);
  // The whole rules evaluate too; of them, only the dead-letter alert has reason to fire here (the parked push request).
  for (const check of checks.filter((c) => c.full !== undefined)) {
    const firing = await prometheus.query(check.full!);
    if (check.where.includes("AviaryDeadLetters")) t.true(firing.some((s) => s.metric["group"] === n!.env["NOTIFICATION_PUSH_GROUP"]), "AviaryDeadLetters fires for the push group");
    else t.deepEqual(firing, [], `${check.where} fires in a healthy run`);
  }
  held.cancel();
  await held.ended;
});
