// `node tools/k8s/generate-k8s.ts` (run by `make k8s-manifests`) writes the
// generated half of the kustomize base in deploy/k8s/base: one Deployment per
// service and role, a Service for each part the mesh calls, HPA and
// PodDisruptionBudget per Deployment, NetworkPolicies derived from who calls
// whom (the *_URL settings below, and the edge's clusters), and a migration
// Job per service that owns a schema. Every environment variable set here is
// checked against the service's own config spec, so a renamed or removed
// setting fails the generator (and `make check-k8s`), not a pod at start.
// Options: --out DIR (default deploy/k8s/base).
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
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
import { moderationConfigSpec } from "@aviary/moderation";
import { auditConfigSpec } from "@aviary/audit";
import { edgeRoutes } from "../../deploy/envoy/routes.ts";

const repoRoot = path.resolve(import.meta.dirname, "../..");
type Spec = Record<string, { variable: string }>;
type Json = Record<string, unknown>;

/** A part of a service that runs as its own Deployment (`role` = the value of `<PREFIX>_ROLE`). */
interface Part {
  role?: string;
  /** The part the mesh and the edge call: it gets the Service named after the service. */
  serves?: boolean;
  replicas: number;
  maxReplicas: number;
  resources: { cpu: string; memory: string; cpuLimit: string; memoryLimit: string };
}

interface ServiceDef {
  name: string;
  spec: Spec;
  /** The variable prefix: `<PREFIX>_HOST`, `<PREFIX>_PORT`, `<PREFIX>_ROLE`. */
  prefix: string;
  port: number;
  /** Its PostgreSQL schema, when it owns one (migrations at start and as a Job). */
  schema?: string;
  /** The services it calls, by the *_URL setting that points at each. */
  calls: Record<string, string>;
  /** Settings with fixed values in every cluster. */
  literal?: Record<string, string>;
  /** Keys of the aviary-config ConfigMap it reads (besides the common ones its spec has). */
  config?: string[];
  /** Keys of the aviary-secrets Secret it reads (besides PAGE_TOKEN_SECRET and its database URL). */
  secrets?: string[];
  /** Keys of the optional aviary-providers Secret (mail, SMS, push credentials): unset when absent. */
  providers?: string[];
  parts: Part[];
  /** Seconds between SIGTERM and SIGKILL: runService drains in-flight calls and streams. */
  grace?: number;
}

const small = { cpu: "100m", memory: "192Mi", cpuLimit: "1", memoryLimit: "512Mi" };
const hashing = { cpu: "250m", memory: "384Mi", cpuLimit: "2", memoryLimit: "1Gi" };
const api = (resources = small, replicas = 2, maxReplicas = 10): Part => ({ role: "api", serves: true, replicas, maxReplicas, resources });
const single = (resources = small, replicas = 2, maxReplicas = 10): Part => ({ serves: true, replicas, maxReplicas, resources });
// Consumers scale with partitions (3 per topic by default): more replicas than that sit idle.
const worker = (role: string, resources = small): Part => ({ role, replicas: 2, maxReplicas: 3, resources });

const jwks = { AUTH_JWKS_URL: "auth" };

export const services: ServiceDef[] = [
  {
    name: "auth",
    spec: authConfigSpec,
    prefix: "AUTH",
    port: 8081,
    schema: "auth",
    // The exporter role reads each owning service's share of a user's data (data exports).
    calls: { USER_URL: "user", POST_URL: "post", MEDIA_URL: "media", CHAT_URL: "chat", NOTIFICATION_URL: "notification", MODERATION_URL: "moderation" },
    literal: { AUTH_CODE_SINK: "/var/lib/aviary/codes.jsonl" },
    config: ["AUTH_PUBLIC_URL", "S3_ENDPOINT", "S3_REGION", "AUTH_EXPORT_BUCKET", "AUTH_BOOTSTRAP_ADMINS"],
    secrets: ["AUTH_SECRETS_KEY", "AUTH_KEY_ENCRYPTION_KEYS", "AUTH_SERVICE_CLIENTS", "S3_ACCESS_KEY", "S3_SECRET_KEY"],
    providers: ["AUTH_SMTP_URL", "AUTH_SMTP_FROM", "AUTH_SMS_BASE_URL", "AUTH_SMS_ACCOUNT_SID", "AUTH_SMS_AUTH_TOKEN", "AUTH_SMS_FROM"],
    parts: [api(hashing), worker("sender"), worker("exporter")],
  },
  {
    name: "ratelimit",
    spec: rateLimitConfigSpec,
    prefix: "RATELIMIT",
    port: 8090,
    calls: {},
    parts: [single()],
  },
  { name: "user", spec: userConfigSpec, prefix: "USER", port: 8082, schema: "users", calls: { ...jwks, MEDIA_URL: "media" }, parts: [single()] },
  {
    name: "media",
    spec: mediaConfigSpec,
    prefix: "MEDIA",
    port: 8083,
    schema: "media",
    calls: jwks,
    config: ["MEDIA_PUBLIC_URL", "S3_ENDPOINT", "S3_REGION", "S3_BUCKET"],
    secrets: ["S3_ACCESS_KEY", "S3_SECRET_KEY"],
    parts: [single()],
  },
  { name: "post", spec: postConfigSpec, prefix: "POST", port: 8084, schema: "posts", calls: { ...jwks, USER_URL: "user", MEDIA_URL: "media" }, parts: [single()] },
  {
    name: "feed",
    spec: feedConfigSpec,
    prefix: "FEED",
    port: 8085,
    schema: "feed",
    calls: { ...jwks, POST_URL: "post", USER_URL: "user" },
    literal: { FEED_FANOUT_THRESHOLD: "10000" },
    parts: [api(), worker("consumer")],
  },
  {
    name: "bff",
    spec: bffConfigSpec,
    prefix: "BFF",
    port: 8086,
    calls: { ...jwks, USER_URL: "user", FEED_URL: "feed", NOTIFICATION_URL: "notification", CHAT_URL: "chat" },
    parts: [single()],
  },
  {
    name: "realtime",
    spec: realtimeConfigSpec,
    prefix: "REALTIME",
    port: 8087,
    calls: { ...jwks, USER_URL: "user" },
    // Streams are drained (told to reconnect) on SIGTERM; give them time.
    grace: 60,
    parts: [single({ cpu: "200m", memory: "256Mi", cpuLimit: "2", memoryLimit: "1Gi" })],
  },
  {
    name: "notification",
    spec: notificationConfigSpec,
    prefix: "NOTIFICATION",
    port: 8088,
    schema: "notification",
    // Service tokens come from the auth service directly (AUTH_URL), not through the edge.
    calls: { ...jwks, AUTH_URL: "auth", USER_URL: "user" },
    secrets: ["NOTIFICATION_CLIENT_SECRET"],
    providers: ["APNS_URL", "APNS_KEY_ID", "APNS_TEAM_ID", "APNS_KEY", "APNS_TOPIC", "FCM_SERVICE_ACCOUNT", "WEBPUSH_VAPID_PUBLIC_KEY", "WEBPUSH_VAPID_PRIVATE_KEY", "WEBPUSH_SUBJECT"],
    parts: [api(), worker("consumer"), worker("push")],
  },
  {
    name: "chat",
    spec: chatConfigSpec,
    prefix: "CHAT",
    port: 8089,
    schema: "chat",
    calls: { ...jwks, USER_URL: "user", MEDIA_URL: "media" },
    parts: [api(), worker("delivery")],
  },
  {
    name: "moderation",
    spec: moderationConfigSpec,
    prefix: "MODERATION",
    port: 8091,
    schema: "moderation",
    calls: { ...jwks },
    parts: [single()],
  },
  {
    name: "audit",
    spec: auditConfigSpec,
    prefix: "AUDIT",
    port: 8092,
    schema: "audit",
    calls: { ...jwks },
    // The chain's anchors (AUDIT_ANCHOR_BUCKET): in production a bucket of another account, or with object lock.
    config: ["S3_ENDPOINT", "S3_REGION", "AUDIT_ANCHOR_BUCKET"],
    secrets: ["S3_ACCESS_KEY", "S3_SECRET_KEY"],
    parts: [single()],
  },
];

/** Settings every service reads from aviary-config when its spec has them. */
const commonConfig = ["AUTH_ISSUER", "AUTH_AUDIENCE", "TRUSTED_PROXY_HOPS", "LOG_LEVEL", "OTEL_EXPORTER_OTLP_ENDPOINT", "KAFKA_BROKERS", "REDIS_URL"];
// Peers call each other's internal listener (grpc-js, <PREFIX>_INTERNAL_PORT = port + 1000:
// docs/decisions.md, "Internal transport"); the key set is plain HTTP on the main port.
const internalPortOf = (s: ServiceDef) => s.port + 1000;
const urlOf = (target: ServiceDef, variable: string) =>
  variable === "AUTH_JWKS_URL" ? `http://${target.name}:${target.port}/.well-known/jwks.json` : `grpc://${target.name}:${internalPortOf(target)}`;
/** Whether another service calls `s`'s RPCs (not only its key set): then it serves the internal listener. */
const calledInternally = (s: ServiceDef) => services.some((caller) => Object.entries(caller.calls).some(([variable, target]) => target === s.name && variable !== "AUTH_JWKS_URL"));

const byName = new Map(services.map((s) => [s.name, s]));
const service = (name: string): ServiceDef => {
  const found = byName.get(name);
  if (!found) throw new Error(`no service ${name}`);
  return found;
};
const labels = (s: ServiceDef, part: Part) => ({ "app.kubernetes.io/name": s.name, "app.kubernetes.io/component": part.role ?? "server", "app.kubernetes.io/part-of": "aviary" });
const deploymentName = (s: ServiceDef, part: Part) => (part.role && !part.serves ? `${s.name}-${part.role}` : s.name);
const secretKey = (variable: string) => variable.toLowerCase().replaceAll("_", "-");

function env(s: ServiceDef, part: Part): Json[] {
  const known = new Set(Object.values(s.spec).map((v) => v.variable));
  const out: Json[] = [];
  const add = (name: string, source: Json) => {
    if (!known.has(name)) throw new Error(`${s.name}: ${name} is not in its config spec`);
    out.push({ name, ...source });
  };
  add(`${s.prefix}_HOST`, { value: "0.0.0.0" });
  add(`${s.prefix}_PORT`, { value: String(s.port) });
  if (calledInternally(s) && part.serves) add(`${s.prefix}_INTERNAL_PORT`, { value: String(internalPortOf(s)) });
  if (part.role) add(`${s.prefix}_ROLE`, { value: part.role });
  for (const [variable, value] of Object.entries(s.literal ?? {})) add(variable, { value });
  for (const [variable, target] of Object.entries(s.calls)) add(variable, { value: urlOf(service(target), variable) });
  for (const key of [...commonConfig.filter((k) => known.has(k)), ...(s.config ?? [])]) add(key, { valueFrom: { configMapKeyRef: { name: "aviary-config", key } } });
  if (s.schema) add("DATABASE_URL", { valueFrom: { secretKeyRef: { name: "aviary-secrets", key: `${s.name}-database-url` } } });
  for (const key of [...(known.has("PAGE_TOKEN_SECRET") ? ["PAGE_TOKEN_SECRET"] : []), ...(s.secrets ?? [])]) add(key, { valueFrom: { secretKeyRef: { name: "aviary-secrets", key: secretKey(key) } } });
  for (const key of s.providers ?? []) add(key, { valueFrom: { secretKeyRef: { name: "aviary-providers", key: secretKey(key), optional: true } } });
  return out;
}

const securityContext = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } };
const podSecurity = { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } };
const probe = (pathName: string, periodSeconds: number, failureThreshold: number) => ({ httpGet: { path: pathName, port: "http" }, periodSeconds, timeoutSeconds: 3, failureThreshold });

function deployment(s: ServiceDef, part: Part): Json {
  const name = deploymentName(s, part);
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, labels: labels(s, part) },
    spec: {
      replicas: part.replicas,
      revisionHistoryLimit: 5,
      selector: { matchLabels: labels(s, part) },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels: labels(s, part), annotations: { "prometheus.io/scrape": "true", "prometheus.io/port": String(s.port), "prometheus.io/path": "/metrics" } },
        spec: {
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: s.grace ?? 30,
          securityContext: podSecurity,
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: labels(s, part) } }],
          containers: [
            {
              name: s.name,
              image: `aviary/${s.name}`,
              ports: [
                { name: "http", containerPort: s.port, protocol: "TCP" },
                ...(calledInternally(s) && part.serves ? [{ name: "internal", containerPort: internalPortOf(s), protocol: "TCP" }] : []),
              ],
              env: env(s, part),
              resources: { requests: { cpu: part.resources.cpu, memory: part.resources.memory }, limits: { cpu: part.resources.cpuLimit, memory: part.resources.memoryLimit } },
              // /healthz: the process answers; /readyz: its database, cache and bus do. The startup
              // probe covers the migrations every process runs before it listens.
              startupProbe: probe("/healthz", 2, 60),
              livenessProbe: probe("/healthz", 10, 3),
              readinessProbe: probe("/readyz", 5, 3),
              // Endpoints are removed before SIGTERM starts the drain.
              lifecycle: { preStop: { sleep: { seconds: 5 } } },
              securityContext,
              volumeMounts: [
                { name: "tmp", mountPath: "/tmp" },
                { name: "state", mountPath: "/var/lib/aviary" },
              ],
            },
          ],
          volumes: [
            { name: "tmp", emptyDir: {} },
            { name: "state", emptyDir: {} },
          ],
        },
      },
    },
  };
}

function scaling(name: string, matchLabels: Json, replicas: number, maxReplicas: number): Json[] {
  return [
    {
      apiVersion: "autoscaling/v2",
      kind: "HorizontalPodAutoscaler",
      metadata: { name, labels: matchLabels },
      spec: {
        scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name },
        minReplicas: replicas,
        maxReplicas,
        metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } } }],
      },
    },
    // maxUnavailable (not minAvailable) so a one-replica overlay still lets nodes drain.
    { apiVersion: "policy/v1", kind: "PodDisruptionBudget", metadata: { name, labels: matchLabels }, spec: { maxUnavailable: 1, selector: { matchLabels } } },
  ];
}

function kubeService(s: ServiceDef, part: Part): Json {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: s.name, labels: labels(s, part) },
    spec: {
      selector: labels(s, part),
      ports: [
        { name: "http", port: s.port, targetPort: "http", protocol: "TCP", appProtocol: "kubernetes.io/h2c" },
        ...(calledInternally(s) ? [{ name: "internal", port: internalPortOf(s), targetPort: "internal", protocol: "TCP", appProtocol: "kubernetes.io/h2c" }] : []),
      ],
    },
  };
}

/** Who calls each service: the edge (its clusters), and every service whose *_URL points at it. */
export function callersOf(name: string): string[] {
  const callers = services.filter((s) => Object.values(s.calls).includes(name)).map((s) => s.name);
  const edge = name === "ratelimit" || edgeRoutes.some((route) => route.cluster === name) ? ["edge"] : [];
  return [...edge, ...callers];
}

// Prometheus (or an agent) in a namespace labelled for it scrapes every pod's /metrics.
const scraperNamespace = { namespaceSelector: { matchLabels: { "aviary.dev/metrics-scraper": "true" } } };

function networkPolicies(): Json[] {
  const policies: Json[] = [
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "default-deny-ingress" },
      spec: { podSelector: {}, policyTypes: ["Ingress"] },
    },
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "edge" },
      spec: {
        podSelector: { matchLabels: { "app.kubernetes.io/name": "edge" } },
        policyTypes: ["Ingress"],
        ingress: [{ ports: [{ port: 8080, protocol: "TCP" }] }, { from: [scraperNamespace], ports: [{ port: 9902, protocol: "TCP" }] }],
      },
    },
  ];
  for (const s of services) {
    const callers = callersOf(s.name);
    const from = callers.map((caller) => ({ podSelector: { matchExpressions: [{ key: "app.kubernetes.io/name", operator: "In", values: [caller] }] } }));
    policies.push({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: s.name, annotations: { "aviary.dev/callers": callers.join(",") } },
      spec: {
        podSelector: { matchLabels: { "app.kubernetes.io/name": s.name } },
        policyTypes: ["Ingress"],
        ingress: [
          ...(from.length > 0 ? [{ from, ports: [{ port: s.port, protocol: "TCP" }, ...(calledInternally(s) ? [{ port: internalPortOf(s), protocol: "TCP" }] : [])] }] : []),
          { from: [scraperNamespace], ports: [{ port: s.port, protocol: "TCP" }] },
        ],
      },
    });
  }
  return policies;
}

/**
 * Every process migrates its own schema before it listens (database.migrate under a
 * PostgreSQL advisory lock, so replicas never race). The Job runs exactly that call
 * from the same image ahead of a rollout; the pods' own run is then a no-op.
 */
function migrationJob(s: ServiceDef): Json {
  const script = [
    `const { openDatabase } = await import("@aviary/runtime/db/open");`,
    `const { migrationsFolder } = await import("@aviary/${s.name}");`,
    `const database = await openDatabase({ url: process.env.DATABASE_URL });`,
    `await database.migrate(migrationsFolder, { schema: "${s.schema}" });`,
    `await database.close();`,
    `console.log("${s.name}: schema ${s.schema} migrated");`,
  ].join(" ");
  const jobLabels = { "app.kubernetes.io/name": s.name, "app.kubernetes.io/component": "migrate", "app.kubernetes.io/part-of": "aviary" };
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: `${s.name}-migrate`, labels: jobLabels },
    spec: {
      backoffLimit: 4,
      activeDeadlineSeconds: 600,
      // Jobs are immutable: a finished one is removed, so the next apply (a new image) creates it again.
      ttlSecondsAfterFinished: 300,
      template: {
        metadata: { labels: jobLabels },
        spec: {
          restartPolicy: "OnFailure",
          automountServiceAccountToken: false,
          securityContext: podSecurity,
          containers: [
            {
              name: "migrate",
              image: `aviary/${s.name}`,
              command: ["node", "--disable-warning=ExperimentalWarning", "--input-type=module", "-e", script],
              env: [{ name: "DATABASE_URL", valueFrom: { secretKeyRef: { name: "aviary-secrets", key: `${s.name}-database-url` } } }],
              resources: { requests: { cpu: "50m", memory: "128Mi" }, limits: { cpu: "500m", memory: "256Mi" } },
              securityContext,
              volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
            },
          ],
          volumes: [{ name: "tmp", emptyDir: {} }],
        },
      },
    },
  };
}

function document(header: string, objects: Json[]): string {
  return `# ${header}\n# Generated by tools/k8s/generate-k8s.ts from the services' config specs. Do not edit: run make k8s-manifests.\n${objects.map((o) => stringify(o, { lineWidth: 0 })).join("---\n")}`;
}

export function renderBase(): Record<string, string> {
  const workloads: Json[] = [];
  for (const s of services) {
    for (const part of s.parts) {
      workloads.push(deployment(s, part));
      if (part.serves) workloads.push(kubeService(s, part));
      workloads.push(...scaling(deploymentName(s, part), labels(s, part), part.replicas, part.maxReplicas));
    }
  }
  return {
    "services.yaml": document("Every service: a Deployment per role, the Service its callers use, HPA and PodDisruptionBudget.", workloads),
    "networkpolicies.yaml": document("Ingress allowed only from the edge and each service's callers (derived from the *_URL settings), plus the metrics scraper.", networkPolicies()),
    "migrations.yaml": document("One migration Job per schema-owning service (the same call every process makes at start).", services.filter((s) => s.schema).map(migrationJob)),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { out: { type: "string" } } });
  const out = path.resolve(values.out ?? path.join(repoRoot, "deploy/k8s/base"));
  mkdirSync(out, { recursive: true });
  for (const [file, text] of Object.entries(renderBase())) writeFileSync(path.join(out, file), text);
  console.log(`wrote ${Object.keys(renderBase()).join(", ")} to ${path.relative(process.cwd(), out) || "."}`);
}
