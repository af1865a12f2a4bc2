// The generated edge config against the contracts: every client-facing proto
// service (read from gen/aviary.binpb, not from a list) is transcoded, routed
// and has a cluster; the committed deploy/envoy/envoy.yaml is what the
// generator writes; the edge's public allow-list is the auth service's.
// `envoy --mode validate` on both renders is a make gate (check-envoy).
import test from "ava";
import { readFileSync } from "node:fs";
import path from "node:path";
import { publicProcedures } from "@aviary/auth";
import { defaultRules, rateLimitConfigFromEnv } from "@aviary/ratelimit";
import { authRoute, edgeRoutes } from "../../deploy/envoy/routes.ts";
import { clientFacingServices, readDescriptorSet } from "../edge/descriptors.ts";
import { deployConfigFile, descriptorSetPath, renderDeployConfig, renderLoopbackConfig, repoRoot } from "../edge/generate-envoy.ts";
import { RATELIMIT_DOMAIN, RATELIMIT_FILTER_TIMEOUT_MS } from "../edge/envoy-config.ts";

interface Route {
  name: string;
  match: { path?: string; safe_regex?: { regex: string }; headers?: Array<{ name: string; string_match: { exact: string } }> };
  route?: { cluster: string; retry_policy?: unknown; rate_limits?: unknown[] };
  typed_per_filter_config?: Record<string, { requirement_name?: string; disabled?: boolean }>;
}
interface Filter {
  name: string;
  typed_config: Record<string, unknown>;
}
interface Rendered {
  static_resources: {
    clusters: Array<{ name: string; load_assignment?: { endpoints: Array<{ lb_endpoints: Array<{ endpoint: { address: { socket_address: { address: string; port_value: number } } } }> }> } }>;
    listeners: Array<{ filter_chains: Array<{ filters: Array<{ typed_config: { http_filters: Filter[]; route_config: { virtual_hosts: Array<{ routes: Route[] }> } } }> }> }>;
  };
}

const services = clientFacingServices(readDescriptorSet(descriptorSetPath));
const loopback = (extra: { rateLimitService?: { host: string; port: number } } = {}) =>
  renderLoopbackConfig({ listenPort: 18080, adminPort: 19901, upstreams: { auth: { host: "127.0.0.1", port: 18081 } }, ...extra }) as Rendered;

function parts(config: Rendered) {
  const hcm = config.static_resources.listeners[0]!.filter_chains[0]!.filters[0]!.typed_config;
  return { filters: hcm.http_filters, routes: hcm.route_config.virtual_hosts[0]!.routes, clusters: config.static_resources.clusters.map((c) => c.name) };
}

test("the descriptor set has client-facing services (the test would prove nothing otherwise)", (t) => {
  t.true(services.some((s) => s.typeName === "aviary.auth.v1.AuthService"));
});

test("every client-facing service is transcoded, and every RPC has its REST and gRPC routes to an existing cluster", (t) => {
  for (const config of [loopback(), renderDeployConfig() as Rendered]) {
    const { filters, routes, clusters } = parts(config);
    const transcoder = filters.find((f) => f.name === "envoy.filters.http.grpc_json_transcoder");
    t.deepEqual([...(transcoder?.typed_config["services"] as string[])].sort(), services.map((s) => s.typeName).sort());
    for (const service of services) {
      for (const method of service.methods) {
        const grpc = routes.find((r) => r.match.path === method.grpcPath);
        t.truthy(grpc, `no gRPC route for ${method.grpcPath}`);
        t.true(clusters.includes(grpc!.route!.cluster));
        for (const binding of method.rest) {
          const rest = routes.find((r) => r.name === `${method.grpcPath} ${binding.verb} ${binding.template}`);
          t.truthy(rest, `no route for ${binding.verb} ${binding.template}`);
          t.is(rest!.match.headers?.[0]?.string_match.exact, binding.verb);
          t.true(clusters.includes(rest!.route!.cluster));
        }
      }
    }
  }
});

test("filter order: claims stripped first, CORS and gRPC-web before jwt_authn, transcoder last before the router", (t) => {
  const names = parts(loopback()).filters.map((f) => f.name.replace("envoy.filters.http.", ""));
  t.deepEqual(names, ["header_mutation", "cors", "grpc_web", "jwt_authn", "buffer", "grpc_json_transcoder", "router"]);
});

test("the edge's public methods are exactly the auth service's public procedures", (t) => {
  t.deepEqual(new Set(authRoute.publicMethods.map((m) => `${authRoute.service}/${m}`)), new Set(publicProcedures));
  const { routes } = parts(loopback());
  for (const route of routes.filter((r) => r.route?.cluster === authRoute.cluster)) {
    const method = route.name.split(" ")[0]!.split("/").at(-1)!;
    const jwt = route.typed_per_filter_config?.["envoy.filters.http.jwt_authn"];
    if (authRoute.publicMethods.includes(method) && !route.name.startsWith("/grpc.health")) t.true(jwt?.disabled, route.name);
    else t.is(jwt?.requirement_name, "user", route.name);
  }
});

test("only idempotent unary methods are retried", (t) => {
  const retried = parts(loopback()).routes.filter((r) => r.route?.retry_policy !== undefined).map((r) => r.name.split(" ")[0]!.split("/").at(-1));
  t.deepEqual([...new Set(retried)].sort(), [...new Set(edgeRoutes.flatMap((route) => route.idempotentMethods))].sort());
});

test("the rate-limit filter, cluster and per-route descriptors appear only with rateLimitService", (t) => {
  const without = parts(loopback());
  t.false(without.filters.some((f) => f.name === "envoy.filters.http.ratelimit"));
  t.false(without.clusters.includes("ratelimit"));
  const limited = parts(loopback({ rateLimitService: { host: "127.0.0.1", port: 18089 } }));
  t.true(limited.filters.findIndex((f) => f.name === "envoy.filters.http.ratelimit") > limited.filters.findIndex((f) => f.name === "envoy.filters.http.jwt_authn"));
  t.true(limited.clusters.includes("ratelimit"));
  const login = limited.routes.find((r) => r.name === "/aviary.auth.v1.AuthService/Login POST /v1/auth/login");
  t.deepEqual(login?.route?.rate_limits, [{ actions: [{ generic_key: { descriptor_key: "route_class", descriptor_value: "auth_public" } }, { remote_address: {} }] }]);
  const filter = limited.filters.find((f) => f.name === "envoy.filters.http.ratelimit")!.typed_config;
  t.like(filter, { domain: "aviary", failure_mode_deny: false, timeout: "0.05s", rate_limited_as_resource_exhausted: true });
  // One source of x-ratelimit-* headers: the service (response_headers_to_add).
  t.is(filter["enable_x_ratelimit_headers"], undefined);
});

type Action = { generic_key?: { descriptor_key: string; descriptor_value: string }; remote_address?: object; metadata?: { descriptor_key: string } };

test("edge and rate-limit service agree: domain, timeout budget, and every route's descriptor has exactly one default rule", (t) => {
  const config = rateLimitConfigFromEnv({});
  t.is(config.domain, RATELIMIT_DOMAIN);
  t.true(config.cacheTimeoutMs < RATELIMIT_FILTER_TIMEOUT_MS, "the service answers (fail open) before Envoy gives up on it");
  t.is(config.responseHeaders, "all");
  const limited = parts(loopback({ rateLimitService: { host: "127.0.0.1", port: 18089 } }));
  const used = new Set<string>();
  for (const route of limited.routes) {
    if (route.name === "cors-preflight" || route.name === "api-docs" || route.name === "api-openapi") {
      t.is(route.route?.rate_limits, undefined);
      continue;
    }
    const limits = route.route?.rate_limits as Array<{ actions: Action[] }> | undefined;
    t.is(limits?.length, 1, route.name);
    const actions = limits![0]!.actions;
    // The entry shape the service sees: keys in order, the generic_key's value fixed.
    const entries = actions.map((a) => a.generic_key ?? { descriptor_key: a.remote_address ? "remote_address" : a.metadata!.descriptor_key, descriptor_value: undefined });
    const rule = defaultRules.find(
      (r) => r.entries.length === entries.length && r.entries.every((e, i) => e.key === entries[i]!.descriptor_key && e.value === entries[i]!.descriptor_value),
    );
    t.truthy(rule, `${route.name}: no default rule for ${JSON.stringify(entries)}`);
    used.add(rule!.name);
  }
  t.deepEqual([...used].sort(), defaultRules.map((r) => r.name).sort(), "every default rule is used by some route");
});

test("the deploy render rate-limits through ratelimit:8090", (t) => {
  const deploy = renderDeployConfig() as Rendered;
  const { filters } = parts(deploy);
  t.true(filters.some((f) => f.name === "envoy.filters.http.ratelimit"));
  const cluster = deploy.static_resources.clusters.find((c) => c.name === "ratelimit");
  t.deepEqual(cluster?.load_assignment?.endpoints[0]?.lb_endpoints[0]?.endpoint.address.socket_address, { address: "ratelimit", port_value: 8090 });
});

test("deploy/envoy/envoy.yaml is what the generator writes (run `make envoy-config`)", (t) => {
  const committed = readFileSync(path.join(repoRoot, "deploy/envoy/envoy.yaml"), "utf8");
  t.is(committed, deployConfigFile());
});
