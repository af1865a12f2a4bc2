// The auth service split into its roles: an api process that only enqueues
// codes and a sender process that delivers them, sharing the database, the
// delivery topic and AUTH_SECRETS_KEY. Also what startup refuses, and that a
// sender told to insist on TLS never falls back to plaintext.
import test from "ava";
import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { ConfigError } from "@aviary/runtime/config";
import { openEventBus } from "@aviary/runtime/bus/open";
import { deadLetterTopic, EventHeaders, type DeliveredEvent } from "@aviary/runtime/bus/bus";
import { eventually, infra, uniqueName } from "../../runtime/test-support/infra.ts";
import { mailCatcher, messagesTo } from "../../runtime/test-support/mailpit.ts";
import { authConfigFromEnv, startAuthService, type RunningAuthService } from "../src/index.ts";
import { password, rejection, startTestAuth, uniqueEmail } from "./harness.ts";

test("split roles need AUTH_SECRETS_KEY, a well-formed one, and whole provider settings", (t) => {
  const error = t.throws(() => authConfigFromEnv({ AUTH_ROLE: "sender", AUTH_SMS_ACCOUNT_SID: "AC1", AUTH_SMTP_HOST: "mail.example.org" }), { instanceOf: ConfigError });
  const variables = error!.problems.map((p) => p.variable).sort();
  t.deepEqual(variables, ["AUTH_SECRETS_KEY", "AUTH_SMS_AUTH_TOKEN", "AUTH_SMS_FROM", "AUTH_SMTP_FROM"]);
  const short = t.throws(() => authConfigFromEnv({ AUTH_SECRETS_KEY: "c2hvcnQ=" }), { instanceOf: ConfigError });
  t.regex(short!.message, /AUTH_SECRETS_KEY/);
  t.is(authConfigFromEnv({ AUTH_ROLE: "api", AUTH_SECRETS_KEY: randomBytes(32).toString("base64") }).role, "api");
});

test("the api role enqueues, the sender role delivers; the sender serves no RPCs", async (t) => {
  const mail = await mailCatcher();
  const urls = await infra();
  const key = randomBytes(32).toString("base64");
  const topic = uniqueName("auth_code_deliveries_roles");
  const [host = "", port = ""] = mail.smtp.split(":");
  const api = await startTestAuth({ AUTH_ROLE: "api", AUTH_SECRETS_KEY: key, AUTH_DELIVERY_TOPIC: topic });
  t.teardown(() => api.close());
  const senderEnv = {
    AUTH_PORT: "0",
    AUTH_INTERNAL_PORT: "0",
    AUTH_ROLE: "sender",
    AUTH_SECRETS_KEY: key,
    AUTH_DELIVERY_TOPIC: topic,
    AUTH_SENDER_GROUP: uniqueName("auth_sender_roles"),
    DATABASE_URL: api.databaseUrl,
    REDIS_URL: urls.redisUrl,
    KAFKA_BROKERS: urls.kafkaBrokers.join(","),
    AUTH_SMTP_HOST: host,
    AUTH_SMTP_PORT: port,
    AUTH_SMTP_FROM: "Aviary <no-reply@aviary.test>",
    LOG_LEVEL: "silent",
  };
  const email = uniqueEmail("roles");
  await api.client.register({ identity: { case: "email", value: email }, password });
  // Nothing is sent while no sender runs: the delivery waits in Kafka.
  await api.service.eventsFlushed(10_000);
  t.is((await messagesTo(mail, email)).length, 0);

  const sender: RunningAuthService = await startAuthService(authConfigFromEnv(senderEnv));
  t.teardown(() => sender.close());
  await eventually("the email through the sender role", async () => (await messagesTo(mail, email)).length === 1, 30_000, 100);
  const [message] = await messagesTo(mail, email);
  const code = /\b(\d{6})\b/.exec(message!.text)?.[1] ?? "";
  t.truthy((await api.client.verifyIdentity({ identity: { case: "email", value: email }, code })).userId);

  const senderClient = createClient(AuthService, createGrpcTransport({ baseUrl: sender.url }));
  t.is((await rejection(senderClient.getJwks({}))).code, Code.Unimplemented, "the sender role serves health only");
  t.is((await fetch(`${sender.url}/healthz`)).status, 200);
});

test("AUTH_SMTP_REQUIRE_TLS against a server without STARTTLS: nothing goes out in plaintext, the delivery is dead-lettered", async (t) => {
  const mail = await mailCatcher();
  const [host = "", port = ""] = mail.smtp.split(":");
  const topic = uniqueName("auth_code_deliveries_tls");
  const auth = await startTestAuth({
    AUTH_DELIVERY_TOPIC: topic,
    AUTH_SMTP_HOST: host,
    AUTH_SMTP_PORT: port,
    AUTH_SMTP_REQUIRE_TLS: "true",
    AUTH_SMTP_FROM: "Aviary <no-reply@aviary.test>",
    AUTH_DELIVERY_MAX_ATTEMPTS: "2",
  });
  t.teardown(() => auth.close());
  const bus = await openEventBus({ brokers: (await infra()).kafkaBrokers, clientId: "auth-tls-test" });
  t.teardown(() => bus.close());
  const parked: DeliveredEvent[] = [];
  const subscription = await bus.subscribe({ groupId: uniqueName("auth_tls_dlq"), topics: [deadLetterTopic(topic)], handle: async (event) => void parked.push(event) });
  t.teardown(() => subscription.stop());
  const email = uniqueEmail("tls");
  await auth.client.register({ identity: { case: "email", value: email }, password });
  await eventually("the dead letter", () => parked.length > 0, 30_000);
  t.regex(parked[0]!.headers[EventHeaders.deadLetterReason] ?? "", /SMTP/);
  t.is((await messagesTo(mail, email)).length, 0, "nothing arrived");
});
