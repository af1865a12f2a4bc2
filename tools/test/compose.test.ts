// deploy/docker-compose.yml checked statically (no container engine needed):
// every upstream the deploy render of the edge config points at is a compose
// service listening on that port, Envoy gets its config and descriptor set at
// the paths the config names, every Node service gets the variables its config
// spec reads (and none it does not), and the observability configs point at
// services that exist.
import test from "ava";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { authConfigSpec } from "@aviary/auth";
import { rateLimitConfigSpec } from "@aviary/ratelimit";
import { userConfigSpec } from "@aviary/user";
import { mediaConfigSpec } from "@aviary/media";
import { postConfigSpec } from "@aviary/post";
import { feedConfigSpec } from "@aviary/feed";
import { bffConfigSpec } from "@aviary/bff";
import { realtimeConfigSpec } from "@aviary/realtime";
import { notificationConfigSpec } from "@aviary/notification";
import { chatConfigSpec } from "@aviary/chat";
import { jwtProvider } from "../../deploy/envoy/routes.ts";
import { RATELIMIT_DOMAIN } from "../edge/envoy-config.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const deployDir = path.join(repoRoot, "deploy");
const readYaml = (file: string): any => parse(readFileSync(path.join(deployDir, file), "utf8"), { merge: true });

const compose = readYaml("docker-compose.yml");
// The init script the postgres image runs once (mounted into docker-entrypoint-initdb.d).
const postgresRoles = readFileSync(path.join(deployDir, "postgres/10-roles.sh"), "utf8");
const services = compose.services as Record<string, any>;
// The deploy render is JSON after its comment header.
const envoyConfig = JSON.parse(
  readFileSync(path.join(deployDir, "envoy/envoy.yaml"), "utf8")
    .split("\n")
    .filter((line) => !line.startsWith("#"))
    .join("\n"),
);

/** Every socket address of every cluster: { cluster, host, port }. */
function envoyUpstreams(): Array<{ cluster: string; host: string; port: number }> {
  const out: Array<{ cluster: string; host: string; port: number }> = [];
  for (const cluster of envoyConfig.static_resources.clusters as any[]) {
    for (const group of cluster.load_assignment?.endpoints ?? []) {
      for (const endpoint of group.lb_endpoints ?? []) {
        const address = endpoint.endpoint.address.socket_address;
        out.push({ cluster: cluster.name, host: address.address, port: address.port_value });
      }
    }
  }
  return out;
}

function exposed(service: any): number[] {
  return [...(service.expose ?? []), ...(service.ports ?? []).map((p: string) => String(p).split(":").pop())].map(Number);
}

/** Which Node service (and its config spec) a compose service runs. */
const nodeServices: Record<string, { spec: Record<string, { variable: string }>; hostVar: string; portVar: string }> = {
  auth: { spec: authConfigSpec, hostVar: "AUTH_HOST", portVar: "AUTH_PORT" },
  ratelimit: { spec: rateLimitConfigSpec, hostVar: "RATELIMIT_HOST", portVar: "RATELIMIT_PORT" },
  user: { spec: userConfigSpec, hostVar: "USER_HOST", portVar: "USER_PORT" },
  media: { spec: mediaConfigSpec, hostVar: "MEDIA_HOST", portVar: "MEDIA_PORT" },
  post: { spec: postConfigSpec, hostVar: "POST_HOST", portVar: "POST_PORT" },
  feed: { spec: feedConfigSpec, hostVar: "FEED_HOST", portVar: "FEED_PORT" },
  bff: { spec: bffConfigSpec, hostVar: "BFF_HOST", portVar: "BFF_PORT" },
  realtime: { spec: realtimeConfigSpec, hostVar: "REALTIME_HOST", portVar: "REALTIME_PORT" },
  notification: { spec: notificationConfigSpec, hostVar: "NOTIFICATION_HOST", portVar: "NOTIFICATION_PORT" },
  chat: { spec: chatConfigSpec, hostVar: "CHAT_HOST", portVar: "CHAT_PORT" },
};

/** The default of a compose `${VAR:-default}` value (what the stack runs with when VAR is unset). */
const composeDefault = (value: string): string => value.replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, "$1");

test("every upstream of the deploy edge config is a compose service listening on that port", (t) => {
  const upstreams = envoyUpstreams();
  t.true(upstreams.length >= 3, "auth, auth_jwks, otel_collector at least");
  for (const { cluster, host, port } of upstreams) {
    // The stats listener's cluster is Envoy's own admin interface, inside its container.
    if (host === "127.0.0.1") continue;
    const service = services[host];
    t.truthy(service, `cluster ${cluster} points at ${host}, which compose lacks`);
    if (!service) continue;
    t.true(exposed(service).includes(port), `${host} does not expose ${port} (cluster ${cluster})`);
    const node = nodeServices[host];
    if (node) {
      // An *_internal cluster is the service's grpc-js listener (<SERVICE>_INTERNAL_PORT).
      const portVar = cluster.endsWith("_internal") ? node.portVar.replace(/_PORT$/, "_INTERNAL_PORT") : node.portVar;
      t.is(String(service.environment[portVar]), String(port), `${host} listens on ${portVar}`);
      t.is(service.environment[node.hostVar], "0.0.0.0", `${host} must listen beyond loopback`);
    }
    if (host === "otel-collector") {
      const collector = readYaml("otel/collector.yaml");
      t.is(collector.receivers.otlp.protocols.grpc.endpoint, `0.0.0.0:${port}`);
    }
  }
  // The rate-limit service is in the stack and speaks the edge's domain.
  t.is(services["ratelimit"].environment.RATELIMIT_DOMAIN, RATELIMIT_DOMAIN);
});

test("Envoy gets the generated config and the descriptor set at the paths the config names", (t) => {
  const envoy = services["envoy"];
  t.regex(envoy.image, /^envoyproxy\/envoy:v1\.40\./);
  const mounts = new Map<string, string>((envoy.volumes as string[]).map((v) => {
    const [source, target] = v.split(":");
    return [target!, source!];
  }));
  const configArg = (envoy.command as string[])[(envoy.command as string[]).indexOf("-c") + 1];
  t.is(mounts.get(configArg!), "./envoy/envoy.yaml");
  const transcoder = JSON.stringify(envoyConfig).match(/"proto_descriptor":"([^"]+)"/);
  t.truthy(transcoder);
  t.is(mounts.get(transcoder![1]!), "../gen/aviary.binpb");
  const listener = envoyConfig.static_resources.listeners[0].address.socket_address;
  t.true((envoy.ports as string[]).includes(`${listener.port_value}:${listener.port_value}`));
  for (const dependency of ["auth", "ratelimit"]) t.is(envoy.depends_on[dependency].condition, "service_healthy");
});

test("every Node service gets the variables its config needs, and only variables its config reads", (t) => {
  for (const [name, { spec }] of Object.entries(nodeServices)) {
    const service = services[name];
    t.truthy(service, `${name} is in compose`);
    t.is(service.build.dockerfile, "deploy/Dockerfile");
    t.is(service.build.args.SERVICE, name);
    const known = new Set(Object.values(spec).map((v) => v.variable));
    const env = service.environment as Record<string, string>;
    for (const variable of Object.keys(env)) t.true(known.has(variable), `${name}: ${variable} is not in its config spec`);
    for (const required of ["REDIS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"]) t.truthy(env[required], `${name}: ${required}`);
    t.is(env["OTEL_EXPORTER_OTLP_ENDPOINT"], "http://otel-collector:4318");
    t.true(exposed(services["otel-collector"]).includes(4318));
  }
  const auth = services["auth"].environment as Record<string, string>;
  t.regex(auth["DATABASE_URL"]!, /^postgres:\/\/auth:.+@postgres:5432\/aviary$/);
  t.is(auth["REDIS_URL"], "redis://redis:6379");
  t.is(auth["KAFKA_BROKERS"], "kafka:9092");
  t.is(auth["TRUSTED_PROXY_HOPS"], "1");
  t.truthy(auth["PAGE_TOKEN_SECRET"]);
  // The edge verifies exactly what the service signs.
  t.is(auth["AUTH_ISSUER"], jwtProvider.issuer);
  t.true((jwtProvider.audiences as readonly string[]).includes(auth["AUTH_AUDIENCE"]!));
  // Every URL points at a compose service on a port it exposes.
  for (const [name, { spec }] of Object.entries(nodeServices)) {
    const env = services[name].environment as Record<string, string>;
    for (const variable of ["DATABASE_URL", "REDIS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"]) {
      if (!env[variable] || !Object.values(spec).some((v) => v.variable === variable)) continue;
      const url = new URL(env[variable]!.replace(/\$\{[^}]+\}/g, "x"));
      t.truthy(services[url.hostname], `${name} ${variable} → ${url.hostname}`);
      t.true(exposed(services[url.hostname]).includes(Number(url.port)), `${name} ${variable} port ${url.port}`);
    }
  }
  // The realtime service: device streams behind the edge, verifying tokens with
  // the auth service's keys, asking the user service about visibility, Redis for
  // history and fan-out.
  const realtime = services["realtime"].environment as Record<string, string>;
  t.is(realtime["REDIS_URL"], "redis://redis:6379");
  t.is(realtime["TRUSTED_PROXY_HOPS"], "1");
  t.is(realtime["AUTH_ISSUER"], jwtProvider.issuer);
  t.true((jwtProvider.audiences as readonly string[]).includes(realtime["AUTH_AUDIENCE"]!));
  for (const variable of ["AUTH_JWKS_URL", "USER_URL"]) {
    const url = new URL(realtime[variable]!);
    t.truthy(services[url.hostname], `realtime ${variable} → ${url.hostname}`);
    t.true(exposed(services[url.hostname]).includes(Number(url.port)), `realtime ${variable} port ${url.port}`);
  }
  t.is(new URL(realtime["AUTH_JWKS_URL"]!).pathname, jwtProvider.jwksPath);
  const [kafkaHost, kafkaPort] = auth["KAFKA_BROKERS"]!.split(":");
  t.true(exposed(services[kafkaHost!]).includes(Number(kafkaPort)));
  t.is(services["kafka"].environment.KAFKA_ADVERTISED_LISTENERS, `PLAINTEXT://${auth["KAFKA_BROKERS"]}`);
});

test("the notification service: its identity matches the auth service's AUTH_SERVICE_CLIENTS entry, its peers exist, the BFF reads it", (t) => {
  const notification = services["notification"].environment as Record<string, string>;
  const auth = services["auth"].environment as Record<string, string>;
  // client_id:scope+scope:sha256 — compose cannot hash, so the default digest must be the default secret's.
  const entries = composeDefault(auth["AUTH_SERVICE_CLIENTS"]!).split(",").map((entry) => entry.split(":"));
  const entry = entries.find(([clientId]) => clientId === "notification");
  t.truthy(entry, "the auth service knows the notification client");
  t.deepEqual(entry![1]!.split("+").sort(), ["user.devices.read", "user.devices.write", "user.profiles.read"]);
  t.regex(auth["AUTH_SERVICE_CLIENTS"]!, /\$\{AVIARY_NOTIFICATION_CLIENT_SECRET_SHA256:-[0-9a-f]{64}\}/);
  t.regex(notification["NOTIFICATION_CLIENT_SECRET"]!, /^\$\{AVIARY_NOTIFICATION_CLIENT_SECRET:-.+\}$/);
  t.is(entry![2], createHash("sha256").update(composeDefault(notification["NOTIFICATION_CLIENT_SECRET"]!)).digest("hex"));
  t.is(notification["NOTIFICATION_ROLE"], "all");
  t.is(notification["TRUSTED_PROXY_HOPS"], "1");
  t.is(notification["KAFKA_BROKERS"], auth["KAFKA_BROKERS"]);
  // Live updates reach the realtime service's streams: the same Redis and prefix.
  const realtime = services["realtime"].environment as Record<string, string>;
  t.is(notification["REDIS_URL"], realtime["REDIS_URL"]);
  t.is(notification["REALTIME_REDIS_URL"], realtime["REALTIME_REDIS_URL"]);
  t.is(notification["REALTIME_REDIS_PREFIX"], realtime["REALTIME_REDIS_PREFIX"]);
  t.regex(notification["DATABASE_URL"]!, /^postgres:\/\/notification:.+@postgres:5432\/aviary$/);
  t.regex(postgresRoles, /CREATE SCHEMA notification AUTHORIZATION notification;/);
  // The auth service directly (service tokens are not routed by the edge), the user service, and the BFF's unread section.
  const bff = services["bff"].environment as Record<string, string>;
  for (const [name, value] of [["notification AUTH_URL", notification["AUTH_URL"]], ["notification USER_URL", notification["USER_URL"]], ["notification AUTH_JWKS_URL", notification["AUTH_JWKS_URL"]], ["bff NOTIFICATION_URL", bff["NOTIFICATION_URL"]], ["bff CHAT_URL", bff["CHAT_URL"]]] as const) {
    const url = new URL(value!);
    t.truthy(services[url.hostname], `${name} → ${url.hostname}`);
    t.true(exposed(services[url.hostname]).includes(Number(url.port)), `${name} port ${url.port}`);
  }
  t.is(new URL(notification["AUTH_URL"]!).hostname, "auth");
  t.is(new URL(bff["NOTIFICATION_URL"]!).port, String(notification["NOTIFICATION_INTERNAL_PORT"]));
  t.is(new URL(bff["CHAT_URL"]!).hostname, "chat");
  t.is(new URL(bff["CHAT_URL"]!).port, String((services["chat"].environment as Record<string, string>)["CHAT_INTERNAL_PORT"]));
  // Every push provider variable is optional: unset, the default stack runs with none (pushes recorded as skipped).
  for (const [variable, value] of Object.entries(notification)) {
    if (/^(APNS|FCM|WEBPUSH)_/.test(variable)) t.is(composeDefault(value), "", `${variable} defaults to unset`);
  }
});

test("the chat service: one all-role container on its own schema, the realtime service's Redis and prefix, the notification service's Kafka, peers that exist", (t) => {
  const chat = services["chat"].environment as Record<string, string>;
  const realtime = services["realtime"].environment as Record<string, string>;
  const notification = services["notification"].environment as Record<string, string>;
  t.is(chat["CHAT_ROLE"], "all");
  t.is(chat["TRUSTED_PROXY_HOPS"], "1");
  t.is(chat["AUTH_ISSUER"], jwtProvider.issuer);
  t.true((jwtProvider.audiences as readonly string[]).includes(chat["AUTH_AUDIENCE"]!));
  // Members' streams are the realtime service's; the notification service reads the chat topic on the same Kafka.
  t.is(chat["REDIS_URL"], realtime["REDIS_URL"]);
  t.is(chat["REALTIME_REDIS_URL"], realtime["REALTIME_REDIS_URL"]);
  t.is(chat["REALTIME_REDIS_PREFIX"], realtime["REALTIME_REDIS_PREFIX"]);
  t.is(chat["KAFKA_BROKERS"], notification["KAFKA_BROKERS"]);
  t.is(chat["CHAT_EVENTS_TOPIC"], undefined, "the default topic…");
  t.is(notification["CHAT_EVENTS_TOPIC"], undefined, "…the one the notification service reads by default");
  t.regex(chat["DATABASE_URL"]!, /^postgres:\/\/chat:.+@postgres:5432\/aviary$/);
  t.regex(postgresRoles, /CREATE SCHEMA chat AUTHORIZATION chat;/);
  t.regex(postgresRoles, /GRANT CONNECT, CREATE ON DATABASE "\$POSTGRES_DB" TO [^;]*\bchat\b[^;]*;/);
  t.truthy(services["postgres"].environment["AVIARY_CHAT_DB_PASSWORD"]);
  for (const variable of ["AUTH_JWKS_URL", "USER_URL"]) {
    const url = new URL(chat[variable]!);
    t.truthy(services[url.hostname], `chat ${variable} → ${url.hostname}`);
    t.true(exposed(services[url.hostname]).includes(Number(url.port)), `chat ${variable} port ${url.port}`);
  }
  t.true((services["chat"].healthcheck.test as string[]).join(" ").includes(`127.0.0.1:${chat["CHAT_PORT"]}/readyz`));
});

test("the stack has every part of the design brief, with healthchecks behind every service_healthy dependency", (t) => {
  for (const name of ["envoy", "auth", "ratelimit", "kafka", "postgres", "redis", "minio", "otel-collector", "jaeger", "prometheus", "grafana"]) {
    t.truthy(services[name], name);
  }
  t.is(services["kafka"].image, "apache/kafka:3.9.1");
  t.regex(services["postgres"].image, /^postgres:15/);
  t.regex(services["redis"].image, /^redis:7/);
  t.is(services["kafka"].environment.KAFKA_PROCESS_ROLES, "broker,controller");
  for (const [name, service] of Object.entries(services)) {
    t.false(String(service.image ?? "").endsWith(":latest"), `${name} pins its image`);
    for (const [dependency, condition] of Object.entries((service.depends_on ?? {}) as Record<string, { condition: string }>)) {
      t.truthy(services[dependency], `${name} depends on unknown ${dependency}`);
      if (condition.condition === "service_healthy") t.truthy(services[dependency].healthcheck, `${name} waits for ${dependency} to be healthy, which has no healthcheck`);
    }
  }
  // Named volumes are declared.
  for (const [name, service] of Object.entries(services)) {
    for (const volume of (service.volumes ?? []) as string[]) {
      const source = volume.split(":")[0]!;
      if (!source.startsWith(".") && !source.startsWith("/")) t.true(source in compose.volumes, `${name}: volume ${source}`);
    }
  }
  t.true((services["postgres"].volumes as string[]).includes("./postgres/10-roles.sh:/docker-entrypoint-initdb.d/10-roles.sh:ro"));
});

test("Prometheus scrapes every Node service's /metrics and Envoy's stats; Grafana and the collector point at existing services", (t) => {
  const prometheus = readYaml("prometheus/prometheus.yml");
  const jobs = new Map<string, any>((prometheus.scrape_configs as any[]).map((job) => [job.job_name, job]));
  for (const name of Object.keys(nodeServices)) {
    const job = jobs.get(name);
    t.truthy(job, `scrape job for ${name}`);
    t.is(job.metrics_path, "/metrics");
    t.deepEqual(job.static_configs[0].targets, [`${name}:${services[name].environment[nodeServices[name]!.portVar]}`]);
  }
  t.is(jobs.get("envoy").metrics_path, "/stats/prometheus");
  for (const job of jobs.values()) {
    for (const target of job.static_configs[0].targets as string[]) {
      const [host] = target.split(":");
      if (host !== "localhost") t.truthy(services[host!], `scrape target ${target}`);
    }
  }
  const grafana = parse(readFileSync(path.join(deployDir, "grafana/provisioning/datasources/datasources.yml"), "utf8"));
  const urls = (grafana.datasources as any[]).map((d) => new URL(d.url));
  t.deepEqual((grafana.datasources as any[]).map((d) => d.type).sort(), ["jaeger", "prometheus"]);
  for (const url of urls) t.true(exposed(services[url.hostname]).includes(Number(url.port)), url.href);
  const collector = readYaml("otel/collector.yaml");
  const jaeger = new URL(`http://${collector.exporters["otlp/jaeger"].endpoint}`);
  t.true(exposed(services[jaeger.hostname]).includes(Number(jaeger.port)));
  t.deepEqual(collector.service.pipelines.traces.exporters, ["otlp/jaeger"]);
  const mount = (services["otel-collector"].volumes as string[])[0]!.split(":");
  t.is(mount[0], "./otel/collector.yaml");
  t.true((services["otel-collector"].command as string[]).includes(`--config=${mount[1]}`));
});

test("the Dockerfile runs `node services/<name>/src/main.ts` on Node 24 after npm ci", (t) => {
  const dockerfile = readFileSync(path.join(deployDir, "Dockerfile"), "utf8");
  t.regex(dockerfile, /^ARG NODE_IMAGE=node:24[.\w-]*$/m);
  t.regex(dockerfile, /RUN npm ci\b/);
  t.regex(dockerfile, /services\/\$\{SERVICE\}\/src\/main\.ts/);
  // Every workspace manifest is copied before npm ci (or the lockfile does not match).
  const workspaces = ["gen", ...Object.keys(nodeServices).map((s) => `services/${s}`), "services/runtime"];
  for (const w of workspaces) t.regex(dockerfile, new RegExp(`COPY ${w}/package\\.json`), w);
});

test("the moderation service: its own schema and role, the same Kafka and events topic as auth and post, which apply its events", (t) => {
  const moderation = services["moderation"].environment as Record<string, string>;
  const auth = services["auth"].environment as Record<string, string>;
  const post = services["post"].environment as Record<string, string>;
  t.is(moderation["TRUSTED_PROXY_HOPS"], "1");
  t.is(moderation["AUTH_ISSUER"], jwtProvider.issuer);
  t.is(moderation["KAFKA_BROKERS"], auth["KAFKA_BROKERS"]);
  t.is(moderation["KAFKA_BROKERS"], post["KAFKA_BROKERS"]);
  for (const env of [moderation, auth, post]) t.is(env["MODERATION_EVENTS_TOPIC"], undefined, "every side on the default topic");
  t.regex(moderation["DATABASE_URL"]!, /^postgres:\/\/moderation:.+@postgres:5432\/aviary$/);
  t.regex(postgresRoles, /CREATE SCHEMA moderation AUTHORIZATION moderation;/);
  t.regex(postgresRoles, /GRANT CONNECT, CREATE ON DATABASE "\$POSTGRES_DB" TO [^;]*\bmoderation\b[^;]*;/);
  t.truthy(services["postgres"].environment["AVIARY_MODERATION_DB_PASSWORD"]);
  t.true(exposed(services["moderation"]).includes(Number(moderation["MODERATION_PORT"])));
});
