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
import { authRoute, chatRoute, EDGE_MAX_STREAM_SECONDS, EDGE_STREAM_IDLE_SECONDS, edgeRoutes, internalPorts, notificationRoute, realtimeRoute } from "../../deploy/envoy/routes.ts";
import { clientFacingServices, readDescriptorSet } from "../edge/descriptors.ts";
import { deployConfigFile, descriptorSetPath, renderDeployConfig, renderLoopbackConfig, repoRoot } from "../edge/generate-envoy.ts";
import { internalClusterName, RATELIMIT_DOMAIN, RATELIMIT_FILTER_TIMEOUT_MS } from "../edge/envoy-config.ts";

interface Route {
  name: string;
  match: { path?: string; safe_regex?: { regex: string }; headers?: Array<{ name: string; string_match: { exact?: string; safe_regex?: { regex: string } } }> };
  route?: { cluster: string; timeout?: string; retry_policy?: unknown; rate_limits?: unknown[]; max_stream_duration?: Record<string, string> };
  typed_per_filter_config?: Record<string, { requirement_name?: string; disabled?: boolean }>;
}
interface Filter {
  name: string;
  typed_config: Record<string, unknown>;
}
interface Rendered {
  static_resources: {
    clusters: Array<{ name: string; load_assignment?: { endpoints: Array<{ lb_endpoints: Array<{ endpoint: { address: { socket_address: { address: string; port_value: number } } } }> }> } }>;
    listeners: Array<{
      filter_chains: Array<{ filters: Array<{ typed_config: { http_filters: Filter[]; stream_idle_timeout?: string; route_config: { virtual_hosts: Array<{ routes: Route[] }> } } }> }>;
    }>;
  };
}

const services = clientFacingServices(readDescriptorSet(descriptorSetPath));
const loopback = (extra: { rateLimitService?: { host: string; port: number } } = {}) =>
  renderLoopbackConfig({ listenPort: 18080, adminPort: 19901, upstreams: { auth: { host: "127.0.0.1", port: 18081 } }, ...extra }) as Rendered;

function parts(config: Rendered) {
  const hcm = config.static_resources.listeners[0]!.filter_chains[0]!.filters[0]!.typed_config;
  return { hcm, filters: hcm.http_filters, routes: hcm.route_config.virtual_hosts[0]!.routes, clusters: config.static_resources.clusters.map((c) => c.name) };
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

test("internal listeners: REST, gRPC and gRPC-web go to them, Connect to the main port; a loopback render only where it is given one", (t) => {
  const deploy = renderDeployConfig() as Rendered;
  const { routes } = parts(deploy);
  const address = (name: string) => deploy.static_resources.clusters.find((c) => c.name === name)?.load_assignment?.endpoints[0]?.lb_endpoints[0]?.endpoint.address.socket_address;
  const withInternal = edgeRoutes.filter((route) => internalPorts[route.cluster] !== undefined);
  t.true(withInternal.length >= 8, "auth, user, media, post, feed, notification, chat, moderation");
  for (const route of edgeRoutes) {
    const internal = internalClusterName(route.cluster);
    const port = internalPorts[route.cluster];
    t.deepEqual(address(internal), port === undefined ? undefined : { address: route.upstream.host, port_value: port }, route.cluster);
    const service = services.find((s) => s.typeName === route.service)!;
    for (const method of service.methods) {
      const onPath = routes.filter((r) => r.match.path === method.grpcPath);
      if (port === undefined) {
        t.deepEqual(onPath.map((r) => r.route?.cluster), [route.cluster], method.grpcPath);
        continue;
      }
      // The gRPC and gRPC-web route first (Envoy takes the first match), then Connect, the rest of the gRPC path's callers.
      t.deepEqual(onPath.map((r) => r.route?.cluster), [internal, route.cluster], method.grpcPath);
      const [native, other] = onPath as [Route, Route];
      const regex = new RegExp(native.match.headers?.[0]?.string_match.safe_regex?.regex ?? "(?!)");
      t.is(native.match.headers?.[0]?.name, "content-type");
      for (const type of ["application/grpc", "application/grpc+proto", "application/grpc-web", "application/grpc-web+proto", "application/grpc-web-text", "application/grpc-web-text+proto"]) t.true(regex.test(type), type);
      for (const type of ["application/json", "application/proto", "application/connect+proto", "application/connect+json", "application/grpc+json", "application/grpc-web+json"]) t.false(regex.test(type), type);
      t.is(other.match.headers, undefined, "everything else on the path: the main port");
      // Same policy on both: token, timeout, retries, rate limits.
      const { name: _native, match: _nm, route: nativeAction, ...nativeRest } = native;
      const { name: _other, match: _om, route: otherAction, ...otherRest } = other;
      t.deepEqual(nativeRest, otherRest, method.grpcPath);
      t.deepEqual({ ...nativeAction, cluster: "" }, { ...otherAction, cluster: "" }, method.grpcPath);
      for (const binding of method.rest) t.is(routes.find((r) => r.name === `${method.grpcPath} ${binding.verb} ${binding.template}`)?.route?.cluster, internal);
    }
  }
  // Loopback (tests, make dev): only the clusters given an internal upstream get one.
  const local = renderLoopbackConfig({ listenPort: 18080, adminPort: 19901, upstreams: {}, internalUpstreams: { feed: { host: "127.0.0.1", port: 19085 } } }) as Rendered;
  const localClusters = local.static_resources.clusters.map((c) => c.name);
  t.deepEqual(localClusters.filter((name) => name.endsWith("_internal")), ["feed_internal"]);
  t.is(parts(local).routes.find((r) => r.name === "/aviary.feed.v1.FeedService/GetHomeFeed GET /v1/feed")?.route?.cluster, "feed_internal");
  t.is(parts(local).routes.find((r) => r.name === "/aviary.user.v1.UserService/GetProfile GET /v1/users/{user_id}")?.route?.cluster, "user");
});

test("filter order: claims stripped first, CORS and gRPC-web before jwt_authn, transcoder last before the router", (t) => {
  const names = parts(loopback()).filters.map((f) => f.name.replace("envoy.filters.http.", ""));
  t.deepEqual(names, ["header_mutation", "cors", "grpc_web", "jwt_authn", "rbac", "buffer", "grpc_json_transcoder", "router"]);
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

test("edge and rate-limit service agree: domain, timeout budget, and every descriptor of every route has a default rule", (t) => {
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
    t.true((limits?.length ?? 0) >= 1, route.name);
    for (const { actions } of limits ?? []) {
      // The entry shape the service sees: keys in order, the generic_key's value fixed.
      const entries = actions.map((a) => a.generic_key ?? { descriptor_key: a.remote_address ? "remote_address" : a.metadata!.descriptor_key, descriptor_value: undefined });
      const rule = defaultRules.find(
        (r) => r.entries.length === entries.length && r.entries.every((e, i) => e.key === entries[i]!.descriptor_key && e.value === entries[i]!.descriptor_value),
      );
      t.truthy(rule, `${route.name}: no default rule for ${JSON.stringify(entries)}`);
      used.add(rule!.name);
    }
  }
  t.deepEqual([...used].sort(), defaultRules.map((r) => r.name).sort(), "every default rule is used by some route");
});

// --- realtime: the device stream -------------------------------------------------

const SUBSCRIBE = "/aviary.realtime.v1.RealtimeService/Subscribe";
const subscribeRoutes = (routes: Route[]) => routes.filter((r) => r.name === SUBSCRIBE || r.name === `${SUBSCRIBE} GET /v1/realtime/stream`);
const userId = { metadata: { descriptor_key: "user_id", metadata_key: { key: "envoy.filters.http.jwt_authn", path: [{ key: "jwt_payload" }, { key: "sub" }] }, source: "DYNAMIC" } };

test("realtime: every RPC has its REST and gRPC route to the realtime cluster, with a token required", (t) => {
  for (const config of [loopback(), renderDeployConfig() as Rendered]) {
    const { routes, clusters } = parts(config);
    t.true(clusters.includes("realtime"));
    const expected = [
      `${SUBSCRIBE} GET /v1/realtime/stream`,
      SUBSCRIBE,
      "/aviary.realtime.v1.RealtimeService/SetPresence POST /v1/realtime/presence",
      "/aviary.realtime.v1.RealtimeService/SetPresence",
      "/aviary.realtime.v1.RealtimeService/GetPresence GET /v1/realtime/presence",
      "/aviary.realtime.v1.RealtimeService/GetPresence",
    ];
    for (const name of expected) {
      const route = routes.find((r) => r.name === name);
      t.is(route?.route?.cluster, "realtime", name);
      t.is(route?.typed_per_filter_config?.["envoy.filters.http.jwt_authn"]?.requirement_name, "user", name);
    }
    t.deepEqual(routes.find((r) => r.name === expected[0])?.match.headers?.[0]?.string_match, { exact: "GET" });
  }
  const deploy = renderDeployConfig() as Rendered;
  const cluster = deploy.static_resources.clusters.find((c) => c.name === "realtime");
  t.deepEqual(cluster?.load_assignment?.endpoints[0]?.lb_endpoints[0]?.endpoint.address.socket_address, { address: "realtime", port_value: 8087 });
  t.deepEqual(realtimeRoute.idempotentMethods, ["GetPresence"]);
});

test("realtime: unary routes time out after 5 s and only GetPresence is retried", (t) => {
  const { routes } = parts(loopback());
  for (const method of ["SetPresence", "GetPresence"]) {
    for (const route of routes.filter((r) => r.name.startsWith(`/aviary.realtime.v1.RealtimeService/${method}`))) {
      t.is(route.route?.timeout, "5s", route.name);
      t.is(route.route?.max_stream_duration, undefined, route.name);
      t.is(route.route?.retry_policy !== undefined, method === "GetPresence", route.name);
    }
  }
});

test("streams: no request timeout, a bounded max_stream_duration that a client's grpc-timeout cannot lift, no retries", (t) => {
  const max = `${EDGE_MAX_STREAM_SECONDS}s`;
  for (const config of [loopback(), renderDeployConfig() as Rendered]) {
    const { routes } = parts(config);
    const subscribe = subscribeRoutes(routes);
    t.is(subscribe.length, 2, "REST and gRPC");
    // Every streaming route (Subscribe, health Watch) gets the same treatment.
    const streams = [...subscribe, routes.find((r) => r.name === "/grpc.health.v1.Health/Watch")!];
    for (const route of streams) {
      t.is(route.route?.timeout, "0s", route.name);
      // grpc_timeout_header_max 0s would let a grpc-timeout header replace the maximum uncapped.
      t.deepEqual(route.route?.max_stream_duration, { max_stream_duration: max, grpc_timeout_header_max: max }, route.name);
      t.is(route.route?.retry_policy, undefined, route.name);
    }
    // Only streams have a max_stream_duration, and only unary routes a timeout.
    const bounded = routes.filter((r) => r.route?.max_stream_duration !== undefined).map((r) => r.name);
    t.deepEqual(bounded.sort(), streams.map((r) => r.name).sort());
  }
  // The realtime service rotates streams before the edge's maximum, and heartbeats below its idle timeout.
  t.true(EDGE_MAX_STREAM_SECONDS >= 600, "long enough that rotation is rare");
  t.is(parts(loopback()).hcm.stream_idle_timeout, `${EDGE_STREAM_IDLE_SECONDS}s`);
  t.true(EDGE_STREAM_IDLE_SECONDS > 25 * 2, "room for the default 25 s heartbeat, with one missed");
});

test("streams: opening Subscribe is rate-limited per user AND per client address, on the REST and the gRPC path", (t) => {
  const limited = parts(loopback({ rateLimitService: { host: "127.0.0.1", port: 18089 } }));
  const routeClass = { generic_key: { descriptor_key: "route_class", descriptor_value: "stream_open" } };
  for (const route of subscribeRoutes(limited.routes)) {
    t.deepEqual(route.route?.rate_limits, [{ actions: [routeClass, userId] }, { actions: [routeClass, { remote_address: {} }] }], route.name);
  }
  t.deepEqual(
    defaultRules.filter((r) => r.entries[0]?.value === "stream_open").map((r) => [r.name, r.entries.map((e) => e.key)]),
    [
      ["stream_open_per_user", ["route_class", "user_id"]],
      ["stream_open_per_ip", ["route_class", "remote_address"]],
    ],
  );
  // Other streams (health Watch) count as reads; unary realtime methods as reads or writes per user.
  const watch = limited.routes.find((r) => r.name === "/grpc.health.v1.Health/Watch");
  t.deepEqual(watch?.route?.rate_limits, [{ actions: [{ generic_key: { descriptor_key: "route_class", descriptor_value: "read" } }, userId] }]);
  const setPresence = limited.routes.find((r) => r.name === "/aviary.realtime.v1.RealtimeService/SetPresence");
  t.deepEqual(setPresence?.route?.rate_limits, [{ actions: [{ generic_key: { descriptor_key: "route_class", descriptor_value: "write" } }, userId] }]);
});

test("the transcoder sends server streams as newline-delimited JSON (one frame a line)", (t) => {
  for (const config of [loopback(), renderDeployConfig() as Rendered]) {
    const transcoder = parts(config).filters.find((f) => f.name === "envoy.filters.http.grpc_json_transcoder")!.typed_config;
    const print = transcoder["print_options"] as Record<string, boolean>;
    t.true(print["stream_newline_delimited"]);
    t.falsy(print["stream_sse_style_delimited"], "one delimiter style");
  }
  // The only other stream, health Watch, is not transcoded (its route switches the transcoder off).
  const watch = parts(loopback()).routes.find((r) => r.name === "/grpc.health.v1.Health/Watch");
  t.true(watch?.typed_per_filter_config?.["envoy.filters.http.grpc_json_transcoder"]?.disabled);
});

// --- notifications ---------------------------------------------------------------

test("notification: every RPC has its REST and gRPC route to the notification cluster (notification:8088), token required; reads retried, writes not", (t) => {
  const NS = "/aviary.notification.v1.NotificationService";
  const rest: Record<string, string> = {
    ListNotifications: "GET /v1/notifications",
    GetUnreadCount: "GET /v1/notifications/unread-count",
    MarkSeen: "POST /v1/notifications/seen",
    GetPreferences: "GET /v1/notifications/preferences",
    UpdatePreferences: "PATCH /v1/notifications/preferences",
  };
  for (const config of [loopback(), renderDeployConfig() as Rendered]) {
    const { routes, clusters } = parts(config);
    t.true(clusters.includes("notification"));
    // The deploy render sends REST, gRPC and gRPC-web to the internal listener (notification_internal), Connect to the main port.
    const internal = clusters.includes("notification_internal");
    for (const [method, binding] of Object.entries(rest)) {
      const expected: Array<[string, string]> = [
        [`${NS}/${method} ${binding}`, internal ? "notification_internal" : "notification"],
        [`${NS}/${method}`, "notification"],
        ...(internal ? ([[`${NS}/${method} gRPC`, "notification_internal"]] as Array<[string, string]>) : []),
      ];
      for (const [name, cluster] of expected) {
        const route = routes.find((r) => r.name === name);
        t.is(route?.route?.cluster, cluster, name);
        t.is(route?.route?.timeout, "5s", name);
        t.is(route?.typed_per_filter_config?.["envoy.filters.http.jwt_authn"]?.requirement_name, "user", name);
        t.is(route?.route?.retry_policy !== undefined, notificationRoute.idempotentMethods.includes(method), name);
      }
    }
  }
  const deploy = renderDeployConfig() as Rendered;
  const cluster = deploy.static_resources.clusters.find((c) => c.name === "notification");
  t.deepEqual(cluster?.load_assignment?.endpoints[0]?.lb_endpoints[0]?.endpoint.address.socket_address, { address: "notification", port_value: 8088 });
  const internalCluster = deploy.static_resources.clusters.find((c) => c.name === "notification_internal");
  t.deepEqual(internalCluster?.load_assignment?.endpoints[0]?.lb_endpoints[0]?.endpoint.address.socket_address, { address: "notification", port_value: 9088 });
  // The loopback render (tests, make dev) expects it on its own default port unless an upstream is given.
  const local = loopback().static_resources.clusters.find((c) => c.name === "notification");
  t.deepEqual(local?.load_assignment?.endpoints[0]?.lb_endpoints[0]?.endpoint.address.socket_address, { address: "127.0.0.1", port_value: 8088 });
  t.deepEqual(notificationRoute.idempotentMethods, ["ListNotifications", "GetUnreadCount", "GetPreferences"]);
});

// --- chat --------------------------------------------------------------------------

test("chat: every RPC has its REST and gRPC route to the chat cluster (chat:8089), token required; reads retried, writes (SendMessage included) not", (t) => {
  const NS = "/aviary.chat.v1.ChatService";
  const rest: Record<string, string> = {
    SendMessage: "POST /v1/messages",
    CreateGroup: "POST /v1/conversations",
    GetConversation: "GET /v1/conversations/{conversation_id}",
    ListConversations: "GET /v1/conversations",
    ListMessages: "GET /v1/conversations/{conversation_id}/messages",
    MarkRead: "POST /v1/conversations/{conversation_id}:markRead",
    SetTyping: "POST /v1/conversations/{conversation_id}:typing",
    GetUnreadCount: "GET /v1/chat/unread-count",
  };
  for (const config of [loopback(), renderDeployConfig() as Rendered]) {
    const { routes, clusters } = parts(config);
    t.true(clusters.includes("chat"));
    // The deploy render sends REST, gRPC and gRPC-web to the internal listener (chat_internal), Connect to the main port.
    const internal = clusters.includes("chat_internal");
    for (const [method, binding] of Object.entries(rest)) {
      const expected: Array<[string, string]> = [
        [`${NS}/${method} ${binding}`, internal ? "chat_internal" : "chat"],
        [`${NS}/${method}`, "chat"],
        ...(internal ? ([[`${NS}/${method} gRPC`, "chat_internal"]] as Array<[string, string]>) : []),
      ];
      for (const [name, cluster] of expected) {
        const route = routes.find((r) => r.name === name);
        t.is(route?.route?.cluster, cluster, name);
        t.is(route?.route?.timeout, "5s", name);
        t.is(route?.typed_per_filter_config?.["envoy.filters.http.jwt_authn"]?.requirement_name, "user", name);
        t.is(route?.route?.retry_policy !== undefined, chatRoute.idempotentMethods.includes(method), name);
      }
    }
  }
  const deploy = renderDeployConfig() as Rendered;
  const cluster = deploy.static_resources.clusters.find((c) => c.name === "chat");
  t.deepEqual(cluster?.load_assignment?.endpoints[0]?.lb_endpoints[0]?.endpoint.address.socket_address, { address: "chat", port_value: 8089 });
  const internalCluster = deploy.static_resources.clusters.find((c) => c.name === "chat_internal");
  t.deepEqual(internalCluster?.load_assignment?.endpoints[0]?.lb_endpoints[0]?.endpoint.address.socket_address, { address: "chat", port_value: 9089 });
  const local = loopback().static_resources.clusters.find((c) => c.name === "chat");
  t.deepEqual(local?.load_assignment?.endpoints[0]?.lb_endpoints[0]?.endpoint.address.socket_address, { address: "127.0.0.1", port_value: 8089 });
  t.deepEqual(chatRoute.idempotentMethods, ["GetConversation", "ListConversations", "ListMessages", "GetUnreadCount"]);
});

test("roles: RBAC after jwt_authn; every route of an RPC declaring a required role admits only that role or admin, no other route has a policy", (t) => {
  for (const config of [loopback(), renderDeployConfig() as Rendered]) {
    const { filters, routes } = parts(config);
    const names = filters.map((f) => f.name);
    t.is(names.indexOf("envoy.filters.http.rbac"), names.indexOf("envoy.filters.http.jwt_authn") + 1);
    t.deepEqual(filters.find((f) => f.name === "envoy.filters.http.rbac")?.typed_config, { "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC" }, "allows all without a per-route policy");
    const gated = services.flatMap((s) => s.methods).filter((m) => m.requiredRole !== undefined);
    t.true(gated.some((m) => m.grpcPath === "/aviary.moderation.v1.ModerationService/SuspendUser" && m.requiredRole === "moderator"));
    t.true(gated.some((m) => m.grpcPath === "/aviary.auth.v1.RoleService/GrantRole" && m.requiredRole === "admin"));
    for (const route of routes) {
      const method = gated.find((m) => route.name === m.grpcPath || route.name.startsWith(`${m.grpcPath} `));
      const policy = route.typed_per_filter_config?.["envoy.filters.http.rbac"] as { rbac?: { rules?: { action: string; policies: Record<string, { principals: Array<{ metadata: { path: Array<{ key: string }>; value: { list_match: { one_of: { string_match: { exact: string } } } } } }> }> } } } | undefined;
      if (method === undefined) {
        t.is(policy, undefined, `${route.name} has no role policy`);
        continue;
      }
      t.is(policy?.rbac?.rules?.action, "ALLOW", route.name);
      const principals = Object.values(policy?.rbac?.rules?.policies ?? {}).flatMap((p) => p.principals);
      t.deepEqual(principals.map((p) => p.metadata.path.map((k) => k.key).join(".")), principals.map(() => "jwt_payload.roles"), route.name);
      t.deepEqual(principals.map((p) => p.metadata.value.list_match.one_of.string_match.exact).sort(), [...new Set([method.requiredRole!, "admin"])].sort(), route.name);
    }
  }
});

test("the web app: GET /, /app.js and /app.css from the app's files, public, not transcoded; only with appDir, never in the deploy render", (t) => {
  const withApp = parts(renderLoopbackConfig({ listenPort: 18080, adminPort: 19901, upstreams: {}, appDir: "/srv/web" }) as Rendered).routes;
  const app = withApp.filter((r) => r.name.startsWith("web-app"));
  t.deepEqual(
    app.map((r) => [r.match.path, (r as Route & { direct_response?: { body: { filename: string } } }).direct_response?.body.filename]),
    [["/", "/srv/web/index.html"], ["/app.js", "/srv/web/app.js"], ["/app.css", "/srv/web/app.css"]],
  );
  for (const route of app) {
    t.true(route.typed_per_filter_config?.["envoy.filters.http.jwt_authn"]?.disabled, route.name);
    t.true(route.typed_per_filter_config?.["envoy.filters.http.grpc_json_transcoder"]?.disabled, route.name);
  }
  t.false(parts(loopback()).routes.some((r) => r.name.startsWith("web-app")));
  t.false(parts(renderDeployConfig() as Rendered).routes.some((r) => r.name.startsWith("web-app")));
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
