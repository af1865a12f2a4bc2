// deploy/k8s checked against the edge config and the services (statically; `make
// check-k8s` builds the overlays and validates them with kubeconform): every
// upstream of the deploy render of the edge config is a Service of the base on
// that port, selecting pods that listen there; every NetworkPolicy admits the
// edge where the edge routes to the service; the edge mounts the files at the
// paths its config names; every Deployment has the probes, resources and
// autoscaling the base promises.
import test from "ava";
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import { services } from "../k8s/generate-k8s.ts";

const repoRoot = path.resolve(import.meta.dirname, "../..");
const base = path.join(repoRoot, "deploy/k8s/base");
const objects: any[] = ["services.yaml", "networkpolicies.yaml", "migrations.yaml", "edge.yaml", "external.yaml"].flatMap((file) =>
  parseAllDocuments(readFileSync(path.join(base, file), "utf8")).map((doc) => doc.toJS()),
);
const ofKind = (kind: string) => objects.filter((o) => o.kind === kind);
const named = (kind: string, name: string) => ofKind(kind).find((o) => o.metadata.name === name);
const envoyConfig = JSON.parse(
  readFileSync(path.join(repoRoot, "deploy/envoy/envoy.yaml"), "utf8")
    .split("\n")
    .filter((line) => !line.startsWith("#"))
    .join("\n"),
);
const upstreams: Array<{ cluster: string; host: string; port: number }> = (envoyConfig.static_resources.clusters as any[]).flatMap((cluster) =>
  (cluster.load_assignment?.endpoints ?? []).flatMap((group: any) =>
    (group.lb_endpoints ?? []).map((e: any) => ({ cluster: cluster.name, host: e.endpoint.address.socket_address.address, port: e.endpoint.address.socket_address.port_value })),
  ),
);

test("every upstream of the deploy edge config is a Service on that port, selecting pods that listen on it", (t) => {
  t.true(upstreams.length > 5);
  for (const { cluster, host, port } of upstreams) {
    if (host === "127.0.0.1") continue; // the stats listener's own admin interface
    const service = named("Service", host);
    t.truthy(service, `cluster ${cluster} → ${host}: no Service`);
    if (!service) continue;
    t.true((service.spec.ports as any[]).some((p) => p.port === port), `${host} Service lacks port ${port}`);
    if (service.spec.type === "ExternalName") continue;
    const selector = service.spec.selector as Record<string, string>;
    const pods = ofKind("Deployment").filter((d) => Object.entries(selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v));
    t.is(pods.length, 1, `${host}: one Deployment behind the Service`);
    const container = pods[0]?.spec.template.spec.containers[0];
    t.true((container?.ports as any[] | undefined)?.some((p) => p.containerPort === port) ?? false, `${host} pods listen on ${port}`);
  }
});

test("services call each other's internal listener: every grpc:// peer URL is a Service port whose pods serve grpc-js on it", (t) => {
  let peers = 0;
  for (const deployment of ofKind("Deployment")) {
    for (const variable of (deployment.spec.template.spec.containers[0].env ?? []) as any[]) {
      if (typeof variable.value !== "string" || !variable.value.startsWith("grpc://")) continue;
      peers++;
      const url = new URL(variable.value);
      const where = `${deployment.metadata.name} ${variable.name}`;
      const service = named("Service", url.hostname);
      t.is((service?.spec.ports as any[] | undefined)?.find((p) => p.port === Number(url.port))?.targetPort, "internal", where);
      const selector = (service?.spec.selector ?? {}) as Record<string, string>;
      const pods = ofKind("Deployment").filter((d) => Object.entries(selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v));
      t.is(pods.length, 1, where);
      const container = pods[0]?.spec.template.spec.containers[0];
      t.true((container?.ports as any[] | undefined)?.some((p) => p.name === "internal" && p.containerPort === Number(url.port)) ?? false, `${where}: pods listen`);
      t.true((container?.env as any[] | undefined)?.some((e) => /_INTERNAL_PORT$/.test(e.name) && e.value === url.port) ?? false, `${where}: pods serve it`);
    }
  }
  // user, media, post, feed, chat, notification, moderation and auth are all someone's peer.
  t.true(peers >= 15, `${peers} peer URLs`);
});

test("the edge mounts its config, descriptor set and docs where the config reads them", (t) => {
  const edge = named("Deployment", "edge");
  const container = edge.spec.template.spec.containers[0];
  t.regex(container.image, /^envoyproxy\/envoy:v1\.40\./);
  const configPath = container.args[container.args.indexOf("-c") + 1];
  const mount = container.volumeMounts.find((m: any) => m.name === "config").mountPath;
  const projected = edge.spec.template.spec.volumes.find((v: any) => v.name === "config").projected.sources.flatMap((s: any) => s.configMap.items.map((i: any) => `${mount}/${i.path}`));
  t.true(projected.includes(configPath));
  const descriptor = JSON.stringify(envoyConfig).match(/"proto_descriptor":"([^"]+)"/)![1];
  t.true(projected.includes(descriptor));
  t.true(projected.includes(`${mount}/docs/openapi.json`));
  const listen = envoyConfig.static_resources.listeners[0].address.socket_address.port_value;
  t.is(named("Service", "edge").spec.ports[0].port, listen);
});

test("NetworkPolicies: default deny, the edge open, every service open to the edge where the edge routes to it and to its callers", (t) => {
  t.deepEqual(named("NetworkPolicy", "default-deny-ingress").spec, { podSelector: {}, policyTypes: ["Ingress"] });
  const edgeClusters = new Set(upstreams.map((u) => u.host));
  for (const s of services) {
    const policy = named("NetworkPolicy", s.name);
    t.truthy(policy, s.name);
    const allowed = (policy.spec.ingress as any[]).flatMap((rule) => (rule.from ?? []).flatMap((f: any) => f.podSelector?.matchExpressions?.[0]?.values ?? []));
    if (edgeClusters.has(s.name)) t.true(allowed.includes("edge"), `${s.name} admits the edge`);
    for (const caller of services.filter((c) => Object.values(c.calls).includes(s.name))) t.true(allowed.includes(caller.name), `${s.name} admits ${caller.name}`);
    // Callers of its RPCs also reach its internal grpc-js listener (port + 1000); the scraper only the main port.
    const calledInternally = services.some((c) => Object.entries(c.calls).some(([variable, target]) => target === s.name && variable !== "AUTH_JWKS_URL"));
    for (const rule of policy.spec.ingress as any[]) {
      const scraper = (rule.from ?? []).some((f: any) => f.namespaceSelector !== undefined);
      const ports = [{ port: s.port, protocol: "TCP" }, ...(calledInternally && !scraper ? [{ port: s.port + 1000, protocol: "TCP" }] : [])];
      t.deepEqual(rule.ports, ports, s.name);
    }
  }
});

test("every Deployment has probes, requests and limits, an HPA and a PDB; every role is a Deployment", (t) => {
  for (const deployment of ofKind("Deployment")) {
    const name = deployment.metadata.name;
    const container = deployment.spec.template.spec.containers[0];
    t.truthy(container.readinessProbe && container.livenessProbe, `${name} probes`);
    if (name !== "edge") {
      t.is(container.readinessProbe.httpGet.path, "/readyz", name);
      t.is(container.livenessProbe.httpGet.path, "/healthz", name);
    }
    t.truthy(container.resources.requests.cpu && container.resources.limits.memory, `${name} resources`);
    t.is(named("HorizontalPodAutoscaler", name)?.spec.scaleTargetRef.name, name);
    t.truthy(named("PodDisruptionBudget", name), `${name} PDB`);
  }
  const roles = ofKind("Deployment").flatMap((d) => ((d.spec.template.spec.containers[0].env ?? []) as any[]).filter((e) => /_ROLE$/.test(e.name)).map((e) => `${e.name}=${e.value}`));
  for (const role of ["AUTH_ROLE=api", "AUTH_ROLE=sender", "FEED_ROLE=api", "FEED_ROLE=consumer", "NOTIFICATION_ROLE=api", "NOTIFICATION_ROLE=consumer", "NOTIFICATION_ROLE=push", "CHAT_ROLE=api", "CHAT_ROLE=delivery"]) {
    t.true(roles.includes(role), role);
  }
  // A migration Job for every schema-owning service, on its own database URL.
  t.deepEqual(ofKind("Job").map((j) => j.metadata.name).sort(), services.filter((s) => s.schema).map((s) => `${s.name}-migrate`).sort());
});
