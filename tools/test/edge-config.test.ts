// The generated edge config against the contracts: every client-facing proto
// service (read from gen/aviary.binpb, not from a list) is transcoded, routed
// and has a cluster; the committed deploy/envoy/envoy.yaml is what the
// generator writes; the edge's public allow-list is the auth service's.
// `envoy --mode validate` on both renders is a make gate (check-envoy).
import test from "ava";
import { readFileSync } from "node:fs";
import path from "node:path";
import { publicProcedures } from "@aviary/auth";
import { authRoute } from "../../deploy/envoy/routes.ts";
import { clientFacingServices, readDescriptorSet } from "../edge/descriptors.ts";
import { deployConfigFile, descriptorSetPath, renderDeployConfig, renderLoopbackConfig, repoRoot } from "../edge/generate-envoy.ts";

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
    clusters: Array<{ name: string }>;
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
    t.deepEqual(new Set(transcoder?.typed_config["services"] as string[]), new Set(services.map((s) => s.typeName)));
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
  t.deepEqual(new Set(retried), new Set(authRoute.idempotentMethods));
});

test("the rate-limit filter, cluster and per-route descriptors appear only with rateLimitService", (t) => {
  const without = parts(loopback());
  t.false(without.filters.some((f) => f.name === "envoy.filters.http.ratelimit"));
  t.false(without.clusters.includes("ratelimit"));
  const limited = parts(loopback({ rateLimitService: { host: "127.0.0.1", port: 18089 } }));
  t.true(limited.filters.findIndex((f) => f.name === "envoy.filters.http.ratelimit") > limited.filters.findIndex((f) => f.name === "envoy.filters.http.jwt_authn"));
  t.true(limited.clusters.includes("ratelimit"));
  const login = limited.routes.find((r) => r.name === "/aviary.auth.v1.AuthService/Login POST /v1/auth/login");
  t.deepEqual(login?.route?.rate_limits, [{ actions: [{ generic_key: { descriptor_key: "route_class", descriptor_value: "public" } }, { remote_address: {} }] }]);
});

test("deploy/envoy/envoy.yaml is what the generator writes (run `make envoy-config`)", (t) => {
  const committed = readFileSync(path.join(repoRoot, "deploy/envoy/envoy.yaml"), "utf8");
  t.is(committed, deployConfigFile());
});
