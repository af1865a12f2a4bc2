// Renders the Envoy edge configuration from the descriptor set and the routing
// table (deploy/envoy/routes.ts). One function, two callers: the committed
// deploy/envoy/envoy.yaml (service DNS names, tracing to the collector) and the
// loopback render that tests and `make dev` start (free ports, no collector).
import {
  defaultCorsOrigins,
  EDGE_MAX_STREAM_SECONDS,
  EDGE_STREAM_IDLE_SECONDS,
  edgeRoutes,
  healthRoute,
  internalPorts,
  jwtProvider,
  rateLimitClasses,
  type EdgeServiceRoute,
} from "../../deploy/envoy/routes.ts";
import { clientFacingServices, serviceByName, type EdgeMethod, type EdgeService, type RestBinding } from "./descriptors.ts";
import type { DescService } from "@bufbuild/protobuf";
import { Role, roleClaims } from "@aviary/runtime/auth/roles";

export interface HostPort {
  host: string;
  port: number;
}

export interface EdgeOptions {
  /** The descriptor set as Envoy will read it (absolute path, or the path inside the image). */
  descriptorPath: string;
  listen: HostPort;
  /** Admin interface: never exposed; readiness (`/ready`) and stats for the operator. */
  admin: HostPort;
  /** Upstream per cluster name; clusters not given use the routing table's service DNS name. */
  upstreams?: Record<string, HostPort>;
  /**
   * The internal grpc-js listener per cluster, where gRPC, gRPC-web and
   * transcoded REST go (`internalPorts` in routes.ts). A cluster whose main
   * upstream is given in `upstreams` but which is absent here gets all its
   * traffic on the main port; with neither, the routing table's service DNS
   * name and internal port are used (the deploy render).
   */
  internalUpstreams?: Record<string, HostPort>;
  corsOrigins?: string[];
  /** OTLP/gRPC collector; tracing is left out entirely when absent (see docs/decisions.md). */
  otlpCollector?: HostPort;
  /** The global rate-limit service (envoy.service.ratelimit.v3); the filter is left out when absent. */
  rateLimitService?: HostPort;
  /**
   * How long the rate-limit filter waits for the service before letting the
   * request through (fail open). Default RATELIMIT_FILTER_TIMEOUT_MS; must stay
   * above the service's RATELIMIT_CACHE_TIMEOUT so a slow Redis gets the
   * service's own fail-open answer rather than Envoy's timeout.
   */
  rateLimitTimeoutMs?: number;
  /**
   * xff_num_trusted_hops: proxies in front of the edge whose x-forwarded-for
   * entries are believed. 0 (default): the client address (per-IP limits, the
   * access log) is the TCP peer. N: the N-th address from the right of the
   * incoming x-forwarded-for (a load balancer in front sets it).
   */
  trustedProxyHops?: number;
  /** STRICT_DNS for service names, STATIC for loopback literals. */
  discovery?: "STRICT_DNS" | "STATIC";
  /**
   * Where Envoy reads the API reference files (`docs.html`, `openapi.json`
   * from `make generate`), served at /docs and /openapi.json without a token.
   * The routes are left out when absent.
   */
  docsDir?: string;
  /**
   * Where Envoy reads the built web app (`index.html`, `app.js`, `app.css`
   * from clients/web/build.ts), served at /, /app.js and /app.css without a
   * token, so the app and the API share one origin (no CORS). Envoy reads the
   * files when it loads the config: they must exist then, and a rebuild needs
   * a restart. The routes are left out when absent (the deploy render).
   */
  appDir?: string;
  /**
   * A listener that serves only /stats/prometheus (proxied to the admin
   * interface), so Prometheus can scrape the edge while admin itself stays on
   * loopback. Left out when absent.
   */
  statsListen?: HostPort;
  /** The HCM's stream_idle_timeout (default EDGE_STREAM_IDLE_SECONDS); tests shorten it to prove heartbeats keep streams open. */
  streamIdleSeconds?: number;
}

/** Every client-supplied copy of this header is removed before jwt_authn writes the verified one. */
export const CLAIMS_HEADER = "x-aviary-claims";
const PROVIDER = "aviary";
/** The JWKS fetch cluster; its upstream defaults to the issuer's service cluster (`upstreams.auth_jwks` overrides it). */
export const JWKS_CLUSTER = "auth_jwks";
const RATELIMIT_CLUSTER = "ratelimit";
/** The rate-limit domain: the service's RATELIMIT_DOMAIN default and its rules' domain. */
export const RATELIMIT_DOMAIN = "aviary";
/** The rate-limit filter's default timeout; the service answers (fail open) within its 40 ms cache budget. */
export const RATELIMIT_FILTER_TIMEOUT_MS = 50;
const OTEL_CLUSTER = "otel_collector";
const NO_UPSTREAM_CLUSTER = "no_upstream";
/** Bodies the transcoder buffers (REST JSON in and out); gRPC and gRPC-web stream past it unbuffered. */
export const MAX_REST_BODY_BYTES = 1024 * 1024;
const RETRY_ON = "unavailable,reset,connect-failure";
/** grpc.health.v1 Check/List answer from memory; Watch is a stream and gets no timeout. */
const HEALTH_CHECK_TIMEOUT = "2s";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const typed = (type: string, body: JsonObject): JsonObject => ({ "@type": `type.googleapis.com/${type}`, ...body });

interface PlannedService {
  route: EdgeServiceRoute;
  service: EdgeService;
}

/** Joins the routing table with the descriptor set, failing on any mismatch. */
export function planServices(descriptors: DescService[]): PlannedService[] {
  const facing = clientFacingServices(descriptors);
  const planned = edgeRoutes.map((route) => {
    const service = facing.find((s) => s.typeName === route.service);
    if (!service) throw new Error(`routes.ts names ${route.service}, which has no google.api.http rules in the descriptor set`);
    const known = new Set(service.methods.map((m) => m.name));
    for (const name of [...route.publicMethods, ...route.idempotentMethods, ...Object.keys(route.methodTimeouts ?? {})]) {
      if (!known.has(name)) throw new Error(`routes.ts names ${route.service}/${name}, which the descriptor set lacks`);
    }
    return { route, service };
  });
  const missing = facing.filter((s) => !edgeRoutes.some((r) => r.service === s.typeName));
  if (missing.length > 0) throw new Error(`client-facing services missing from deploy/envoy/routes.ts: ${missing.map((s) => s.typeName).join(", ")}`);
  return planned;
}

export function renderEnvoyConfig(descriptors: DescService[], options: EdgeOptions): JsonObject {
  const planned = planServices(descriptors);
  const health = serviceByName(descriptors, healthRoute.service);
  const upstream = (cluster: string, fallback: HostPort): HostPort => options.upstreams?.[cluster] ?? fallback;
  const internalUpstream = (route: EdgeServiceRoute): HostPort | undefined => {
    const given = options.internalUpstreams?.[route.cluster];
    if (given !== undefined) return given;
    const port = internalPorts[route.cluster];
    return port === undefined || options.upstreams?.[route.cluster] !== undefined ? undefined : { host: route.upstream.host, port };
  };
  /** Per cluster: the name of its internal-listener cluster, when it has one in this render. */
  const internalClusters = new Map(
    planned.flatMap(({ route }) => {
      const internal = internalUpstream(route);
      return internal === undefined ? [] : [[route.cluster, { name: internalClusterName(route.cluster), upstream: internal }] as const];
    }),
  );
  const issuerRoute = planned.find((p) => p.route.cluster === jwtProvider.jwksCluster);
  if (!issuerRoute) throw new Error(`jwtProvider.jwksCluster ${jwtProvider.jwksCluster} is not a cluster in routes.ts`);
  const jwksUpstream = upstream(JWKS_CLUSTER, upstream(jwtProvider.jwksCluster, issuerRoute.route.upstream));
  const discovery = options.discovery ?? "STRICT_DNS";
  const rateLimited = options.rateLimitService !== undefined;

  const routes: JsonObject[] = [
    ...planned.flatMap(({ route, service }) => service.methods.flatMap((method) => methodRoutes(route, method, rateLimited, internalClusters.get(route.cluster)?.name))),
    // Health Check/Watch are reads: counted with the caller's other reads.
    ...health.methods.map((method) =>
      grpcRoute(healthRoute.cluster, method, { isPublic: false, idempotent: false, routeClass: rateLimitClasses.read, timeout: HEALTH_CHECK_TIMEOUT, rateLimited }),
    ),
    ...(options.docsDir === undefined ? [] : docsRoutes(options.docsDir)),
    ...(options.appDir === undefined ? [] : appRoutes(options.appDir)),
    preflightRoute(),
  ];

  const clusters: JsonObject[] = [
    // One cluster per service process: several proto services may share one (the auth service serves RoleService too).
    ...[...new Map(planned.map(({ route }) => [route.cluster, route])).values()].map((route) => grpcCluster(route.cluster, upstream(route.cluster, route.upstream), discovery)),
    ...[...internalClusters.values()].map(({ name, upstream: address }) => grpcCluster(name, address, discovery)),
    plainCluster(JWKS_CLUSTER, jwksUpstream, discovery, false),
    noUpstreamCluster(),
  ];
  if (options.rateLimitService) clusters.push(plainCluster(RATELIMIT_CLUSTER, options.rateLimitService, discovery, true));
  if (options.otlpCollector) clusters.push(plainCluster(OTEL_CLUSTER, options.otlpCollector, discovery, true));

  const hcm: JsonObject = {
    stat_prefix: "edge",
    codec_type: "AUTO",
    // The edge is the trust boundary: it appends the peer address to
    // x-forwarded-for (services count TRUSTED_PROXY_HOPS=1 from the right) and
    // replaces any client-chosen x-request-id.
    use_remote_address: true,
    xff_num_trusted_hops: options.trustedProxyHops ?? 0,
    generate_request_id: true,
    preserve_external_request_id: false,
    // `//v1/auth/login` or `/v1/auth/./me` must not slip past an exact route or a jwt rule.
    normalize_path: true,
    merge_slashes: true,
    path_with_escaped_slashes_action: "REJECT_REQUEST",
    common_http_protocol_options: { headers_with_underscores_action: "REJECT_REQUEST" },
    // Streams (realtime Subscribe, health Watch) have no request timeout and
    // end at EDGE_MAX_STREAM_SECONDS (per route); one idle this long is
    // closed, so every stream sends something more often (the realtime
    // heartbeat, default 25 s).
    stream_idle_timeout: `${options.streamIdleSeconds ?? EDGE_STREAM_IDLE_SECONDS}s`,
    access_log: [accessLog()],
    local_reply_config: localReplyAsStatus(),
    route_config: {
      name: "edge",
      // The API reference pages and the web app are served from files by
      // direct_response; the app bundle must stay below this too (its build checks).
      max_direct_response_body_size_bytes: MAX_DOCS_BYTES,
      virtual_hosts: [
        {
          name: "aviary",
          domains: ["*"],
          routes,
          typed_per_filter_config: { "envoy.filters.http.cors": corsPolicy(options.corsOrigins ?? defaultCorsOrigins) },
        },
      ],
    },
    http_filters: [
      stripClaimsFilter(),
      { name: "envoy.filters.http.cors", typed_config: typed("envoy.extensions.filters.http.cors.v3.Cors", {}) },
      { name: "envoy.filters.http.grpc_web", typed_config: typed("envoy.extensions.filters.http.grpc_web.v3.GrpcWeb", {}) },
      jwtFilter(),
      roleFilter(),
      ...(options.rateLimitService ? [rateLimitFilter(options.rateLimitTimeoutMs ?? RATELIMIT_FILTER_TIMEOUT_MS)] : []),
      bufferFilter(),
      transcoderFilter(options.descriptorPath, planned.map((p) => p.service.typeName)),
      { name: "envoy.filters.http.router", typed_config: typed("envoy.extensions.filters.http.router.v3.Router", {}) },
    ],
  };
  if (options.otlpCollector) hcm["tracing"] = tracing();

  const listeners: JsonObject[] = [
    {
      name: "edge",
      address: socketAddress(options.listen),
      filter_chains: [{ filters: [{ name: "envoy.filters.network.http_connection_manager", typed_config: typed("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", hcm) }] }],
    },
  ];
  if (options.statsListen) {
    listeners.push(statsListener(options.statsListen));
    clusters.push(plainCluster(ADMIN_CLUSTER, options.admin, "STATIC", false));
  }
  return {
    admin: { address: socketAddress(options.admin) },
    static_resources: { listeners, clusters },
  };
}

// --- API reference and stats ---------------------------------------------------

export const MAX_DOCS_BYTES = 1024 * 1024;
const ADMIN_CLUSTER = "envoy_admin";

/** A GET answered from a file: public, never proxied, not an RPC. */
function fileRoute(name: string, path: string, filename: string, contentType: string, cacheControl: string): JsonObject {
  return {
    name,
    match: { path, headers: [{ name: ":method", string_match: { exact: "GET" } }] },
    direct_response: { status: 200, body: { filename } },
    response_headers_to_add: [
      { header: { key: "content-type", value: contentType }, append_action: "OVERWRITE_IF_EXISTS_OR_ADD" },
      { header: { key: "cache-control", value: cacheControl }, append_action: "OVERWRITE_IF_EXISTS_OR_ADD" },
    ],
    typed_per_filter_config: {
      ...jwtPerRoute(true),
      // Not an RPC: the transcoder would answer "could not resolve to a method".
      "envoy.filters.http.grpc_json_transcoder": typed("envoy.config.route.v3.FilterConfig", { disabled: true }),
      "envoy.filters.http.buffer": typed("envoy.config.route.v3.FilterConfig", { disabled: true }),
    },
  };
}

/** GET /docs and GET /openapi.json, answered from files, public, never proxied. */
function docsRoutes(dir: string): JsonObject[] {
  const cache = "public, max-age=300";
  return [
    fileRoute("api-docs", "/docs", `${dir}/docs.html`, "text/html; charset=utf-8", cache),
    fileRoute("api-openapi", "/openapi.json", `${dir}/openapi.json`, "application/json", cache),
  ];
}

/**
 * The web app's three files. Their names carry no content hash, so browsers
 * revalidate every time (`no-cache`) and never run yesterday's bundle.
 */
function appRoutes(dir: string): JsonObject[] {
  const cache = "no-cache";
  return [
    fileRoute("web-app", "/", `${dir}/index.html`, "text/html; charset=utf-8", cache),
    fileRoute("web-app-js", "/app.js", `${dir}/app.js`, "text/javascript; charset=utf-8", cache),
    fileRoute("web-app-css", "/app.css", `${dir}/app.css`, "text/css; charset=utf-8", cache),
  ];
}

/** Only /stats/prometheus, proxied to the admin interface (which stays on loopback). */
function statsListener(address: HostPort): JsonObject {
  const hcm = {
    stat_prefix: "stats",
    route_config: {
      name: "stats",
      virtual_hosts: [
        {
          name: "stats",
          domains: ["*"],
          routes: [{ match: { path: "/stats/prometheus" }, route: { cluster: ADMIN_CLUSTER, timeout: "5s" } }],
        },
      ],
    },
    http_filters: [{ name: "envoy.filters.http.router", typed_config: typed("envoy.extensions.filters.http.router.v3.Router", {}) }],
  };
  return {
    name: "stats",
    address: socketAddress(address),
    filter_chains: [{ filters: [{ name: "envoy.filters.network.http_connection_manager", typed_config: typed("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", hcm) }] }],
  };
}

// --- routes ------------------------------------------------------------------

interface RoutePolicy {
  isPublic: boolean;
  idempotent: boolean;
  timeout: string;
  /** The route_class descriptor value (see rateLimitClasses in routes.ts). */
  routeClass: string;
  /** Limit per user AND per client address under this route_class (stream opening) instead of routeClass. */
  streamOpenClass?: string;
  /** Attach the rate-limit descriptors (only when the rate-limit filter is configured). */
  rateLimited: boolean;
}

/** The cluster of a service's internal grpc-js listener. */
export function internalClusterName(cluster: string): string {
  return `${cluster}_internal`;
}

/**
 * One route per REST binding (matched on the original REST path, see the
 * transcoder) plus one for the gRPC path. With an internal listener
 * (`internal`, its cluster), REST (transcoded to gRPC before it leaves),
 * gRPC and gRPC-web (turned into gRPC likewise) go there, and Connect, the
 * gRPC path's other protocol, to the main port, which alone speaks it.
 */
function methodRoutes(route: EdgeServiceRoute, method: EdgeMethod, rateLimited: boolean, internal?: string): JsonObject[] {
  const isPublic = route.publicMethods.includes(method.name);
  const idempotent = route.idempotentMethods.includes(method.name);
  const policy: RoutePolicy = {
    rateLimited,
    isPublic,
    idempotent,
    routeClass: isPublic ? route.publicRateLimitClass : idempotent ? rateLimitClasses.read : rateLimitClasses.write,
    timeout: route.methodTimeouts?.[method.name] ?? route.timeout,
  };
  if (method.streaming && !isPublic && route.streamRateLimitClass !== undefined) policy.streamOpenClass = route.streamRateLimitClass;
  return [
    ...method.rest.map((binding) => restRoute(internal ?? route.cluster, method, binding, policy)),
    ...(internal === undefined ? [] : [grpcRoute(internal, method, policy, GRPC_FRAMED)]),
    grpcRoute(route.cluster, method, policy),
  ];
}

/**
 * gRPC's content types (application/grpc, application/grpc+proto) and
 * gRPC-web's (application/grpc-web, -web+proto, -web-text, -web-text+proto).
 * The grpc_web filter turns gRPC-web into gRPC before the request leaves,
 * so both arrive upstream as gRPC, which the grpc-js listener speaks. The
 * route is chosen on the content type the client sent (the CORS filter,
 * ahead of grpc_web, resolves it). Connect (application/json,
 * application/proto, application/connect+…) is left for the main port.
 */
const GRPC_FRAMED: JsonObject = { name: "content-type", string_match: { safe_regex: { regex: "^application/grpc(-web(-text)?)?(\\+proto)?$" } } };

function restRoute(cluster: string, method: EdgeMethod, binding: RestBinding, policy: RoutePolicy): JsonObject {
  return {
    name: `${method.grpcPath} ${binding.verb} ${binding.template}`,
    match: { ...pathMatch(binding.template), headers: [{ name: ":method", string_match: { exact: binding.verb } }] },
    route: routeAction(cluster, method, policy),
    typed_per_filter_config: { ...jwtPerRoute(policy.isPublic), ...rolePerRoute(method.requiredRole) },
  };
}

/**
 * gRPC, gRPC-web and Connect clients call the gRPC path itself. The transcoder
 * is switched off here: with reject_unknown_method it would answer a Connect
 * JSON POST (content-type application/json, no REST rule for the path) with 404.
 */
function grpcRoute(cluster: string, method: EdgeMethod, policy: RoutePolicy, header?: JsonObject): JsonObject {
  return {
    name: header === undefined ? method.grpcPath : `${method.grpcPath} gRPC`,
    match: { path: method.grpcPath, ...(header === undefined ? {} : { headers: [header] }) },
    route: routeAction(cluster, method, policy),
    typed_per_filter_config: {
      ...jwtPerRoute(policy.isPublic),
      ...rolePerRoute(method.requiredRole),
      "envoy.filters.http.grpc_json_transcoder": typed("envoy.config.route.v3.FilterConfig", { disabled: true }),
      // Streams must not be buffered; the service enforces its own message limit.
      "envoy.filters.http.buffer": typed("envoy.config.route.v3.FilterConfig", { disabled: true }),
    },
  };
}

/**
 * REST routes match on :method, so a CORS preflight (OPTIONS) matches none of
 * them — and the CORS filter only acts on a matched route with a route entry
 * (a direct_response route does not count). This route gives preflights one:
 * the CORS filter answers allowed origins itself; anything else (unlisted
 * origin, plain OPTIONS) is answered 404 by the transcoder (no such method),
 * and the cluster it names has no endpoints, so nothing reaches a service.
 */
function preflightRoute(): JsonObject {
  return {
    name: "cors-preflight",
    match: { prefix: "/", headers: [{ name: ":method", string_match: { exact: "OPTIONS" } }] },
    route: { cluster: NO_UPSTREAM_CLUSTER, timeout: "1s" },
    typed_per_filter_config: jwtPerRoute(true),
  };
}

/** A cluster with no endpoints, for routes that must never reach a service. */
function noUpstreamCluster(): JsonObject {
  return { name: NO_UPSTREAM_CLUSTER, type: "STATIC", connect_timeout: "1s", load_assignment: { cluster_name: NO_UPSTREAM_CLUSTER, endpoints: [] } };
}

function routeAction(cluster: string, method: EdgeMethod, policy: RoutePolicy): JsonObject {
  // A stream has no request timeout (Envoy's default 15 s would cut it); it
  // lives until the client or service ends it, idles past
  // stream_idle_timeout, or reaches EDGE_MAX_STREAM_SECONDS.
  const action: JsonObject = { cluster, timeout: method.streaming ? "0s" : policy.timeout };
  if (method.streaming) {
    const max = `${EDGE_MAX_STREAM_SECONDS}s`;
    // grpc_timeout_header_max: a request's grpc-timeout REPLACES
    // max_stream_duration, capped at this value; 0s would mean uncapped (a
    // client could send grpc-timeout: 99999999H and outlive the edge's
    // maximum). Capped at the same value, a client may shorten its stream,
    // never lengthen it.
    action["max_stream_duration"] = { max_stream_duration: max, grpc_timeout_header_max: max };
  }
  if (policy.rateLimited) action["rate_limits"] = rateLimitActions(policy);
  // Only reads are retried: a retried write whose first attempt reached the
  // service (reset after the request was sent) would apply twice.
  if (policy.idempotent && !method.streaming) {
    action["retry_policy"] = {
      retry_on: RETRY_ON,
      num_retries: 2,
      per_try_timeout: policy.timeout,
      retry_back_off: { base_interval: "0.05s", max_interval: "0.5s" },
    };
  }
  return action;
}

function pathMatch(template: string): JsonObject {
  if (!template.includes("{")) return { path: template };
  // `{var}` and `{var=*}` bind one segment; `{var=**}` any rest of the path.
  const regex = template
    .split(/(\{[^}]+\})/)
    .map((part) => (part.startsWith("{") ? (part.includes("**") ? ".+" : "[^/]+") : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return { safe_regex: { regex: `^${regex}$` } };
}

// --- filters -------------------------------------------------------------------

/**
 * Runs first, before jwt_authn. Envoy 1.40's jwt_authn happens to remove its
 * forward_payload_header from every request it sees, even on routes where it
 * is disabled (the recorder test in tools/test/edge-rest.test.ts passes without
 * this filter), but that is an implementation detail, not documented API; and
 * route-level request_headers_to_remove would run at router time, after
 * jwt_authn wrote the verified header. Removing it here holds whatever
 * jwt_authn does.
 */
function stripClaimsFilter(): JsonObject {
  return {
    name: "envoy.filters.http.header_mutation",
    typed_config: typed("envoy.extensions.filters.http.header_mutation.v3.HeaderMutation", {
      mutations: { request_mutations: [{ remove: CLAIMS_HEADER }] },
    }),
  };
}

/** Verified tokens Envoy keeps per worker thread: about 10 MB at most (an access token is under 1 KB). */
const JWT_CACHE_SIZE = 10_000;

function jwtFilter(): JsonObject {
  return {
    name: "envoy.filters.http.jwt_authn",
    typed_config: typed("envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication", {
      providers: {
        [PROVIDER]: {
          issuer: jwtProvider.issuer,
          audiences: [...jwtProvider.audiences],
          from_headers: [{ name: "authorization", value_prefix: "Bearer " }],
          remote_jwks: {
            http_uri: { uri: `http://${jwtProvider.jwksCluster}${jwtProvider.jwksPath}`, cluster: JWKS_CLUSTER, timeout: "2s" },
            // Envoy never refetches on an unknown kid: a key published after the
            // last fetch is unknown for up to this long (docs/decisions.md).
            cache_duration: "60s",
            // Fetched when the listener starts and refreshed before expiry, so
            // requests never wait on the auth service; fast_listener false holds
            // the listener (and /ready) until the first fetch has answered.
            async_fetch: { fast_listener: false, failed_refetch_duration: "1s" },
            retry_policy: { num_retries: 3, retry_back_off: { base_interval: "0.2s", max_interval: "2s" } },
          },
          // The token still goes upstream: services verify it themselves (defence in depth).
          forward: true,
          forward_payload_header: CLAIMS_HEADER,
          payload_in_metadata: "jwt_payload",
          clock_skew_seconds: 30,
          // Verified tokens are kept (per worker, never past their exp), so a
          // client's next request with the same token skips the ES256
          // verification and the payload parse. A kept token stays accepted
          // here after its key leaves the JWKS, until its exp; the services
          // verify every token again themselves.
          jwt_cache_config: { jwt_cache_size: JWT_CACHE_SIZE },
        },
      },
      requirement_map: { user: { provider_name: PROVIDER } },
      // Every generated route names its requirement; anything that does not
      // (a route added by hand) falls through to this rule and needs a token.
      rules: [{ match: { prefix: "/" }, requires: { provider_name: PROVIDER } }],
      bypass_cors_preflight: true,
    }),
  };
}

function jwtPerRoute(isPublic: boolean): JsonObject {
  const config: JsonObject = isPublic ? { disabled: true } : { requirement_name: "user" };
  return { "envoy.filters.http.jwt_authn": typed("envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig", config) };
}

/**
 * The transcoder's max_request_body_size does not bound a request: it
 * translates JSON as it streams in, so a 2 MiB body reached the service
 * (which answered RESOURCE_EXHAUSTED). The buffer filter answers 413 at the
 * edge instead, on REST routes only.
 */
/**
 * Roles at the edge: RBAC after jwt_authn, allowing everything unless a
 * route says otherwise. A method that declares a required role in its proto
 * (aviary.auth.v1.required_role) gets a per-route policy that admits only
 * tokens whose verified `roles` claim lists that role or "admin"; anyone
 * else gets 403 (PERMISSION_DENIED) from the edge. The services check the
 * same option themselves (runtime auth interceptor), and the edge cannot see
 * revocations: a revoked role's sessions are refused by the services.
 */
function roleFilter(): JsonObject {
  return { name: "envoy.filters.http.rbac", typed_config: typed("envoy.extensions.filters.http.rbac.v3.RBAC", {}) };
}

function rolePerRoute(role: string | undefined): JsonObject {
  if (role === undefined) return {};
  const holds = (claim: string): JsonObject => ({
    metadata: {
      filter: "envoy.filters.http.jwt_authn",
      path: [{ key: "jwt_payload" }, { key: "roles" }],
      value: { list_match: { one_of: { string_match: { exact: claim } } } },
    },
  });
  const principals = [...new Set([role, roleClaims[Role.ADMIN]])].map(holds);
  return {
    "envoy.filters.http.rbac": typed("envoy.extensions.filters.http.rbac.v3.RBACPerRoute", {
      rbac: { rules: { action: "ALLOW", policies: { [`role-${role}`]: { permissions: [{ any: true }], principals } } } },
    }),
  };
}

function bufferFilter(): JsonObject {
  return { name: "envoy.filters.http.buffer", typed_config: typed("envoy.extensions.filters.http.buffer.v3.Buffer", { max_request_bytes: MAX_REST_BODY_BYTES }) };
}

function transcoderFilter(descriptorPath: string, services: string[]): JsonObject {
  return {
    name: "envoy.filters.http.grpc_json_transcoder",
    typed_config: typed("envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder", {
      proto_descriptor: descriptorPath,
      services,
      // Keep the REST route after the path is rewritten to the gRPC one, so the
      // router (and its timeout/retry policy) sees the route jwt_authn saw.
      match_incoming_request_route: true,
      // A gRPC error becomes the HTTP status plus a google.rpc.Status JSON body
      // (code, message, details from grpc-status-details-bin).
      convert_grpc_status: true,
      // stream_newline_delimited: a server stream (realtime Subscribe) goes out
      // as one JSON object per line, each line written as its message arrives
      // (without it: one JSON array, `[{..}` then `,{..}`, closed by `]` at the
      // end). Unary responses are unaffected; grpc.health.v1 Watch is not
      // transcoded. See docs/decisions.md "Realtime at the edge".
      print_options: { always_print_primitive_fields: false, preserve_proto_field_names: false, always_print_enums_as_ints: false, stream_newline_delimited: true },
      request_validation_options: {
        reject_unknown_method: true,
        // Without it an unknown query parameter silently turns off transcoding.
        reject_unknown_query_parameters: true,
        reject_binding_body_field_collisions: true,
      },
      max_request_body_size: MAX_REST_BODY_BYTES,
      max_response_body_size: MAX_REST_BODY_BYTES,
    }),
  };
}

function corsPolicy(origins: string[]): JsonObject {
  return typed("envoy.extensions.filters.http.cors.v3.CorsPolicy", {
    allow_origin_string_match: origins.map((origin) => ({ exact: origin })),
    allow_methods: "GET, POST, PUT, PATCH, DELETE, OPTIONS",
    allow_headers: "authorization, content-type, x-grpc-web, x-user-agent, grpc-timeout, connect-protocol-version, connect-timeout-ms, x-request-id, traceparent",
    expose_headers: "grpc-status, grpc-message, grpc-status-details-bin, x-request-id, retry-after, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset, www-authenticate",
    max_age: "600",
    allow_credentials: false,
  });
}

/**
 * Global rate limiting against services/ratelimit (domain `aviary`). The
 * filter fails open: a limiter that is down, slow (past `timeoutMs`) or
 * erroring lets the request through, so an outage of the limiter never takes
 * the API down. Response headers come from ONE place, the service
 * (response_headers_to_add: x-ratelimit-limit/-remaining/-reset on every
 * limited answer, retry-after when over): enable_x_ratelimit_headers stays
 * OFF, otherwise Envoy would write a second set of x-ratelimit-* headers.
 * Over-limit gRPC calls get RESOURCE_EXHAUSTED (not Envoy's default
 * UNAVAILABLE, which clients would retry at once); REST clients get 429 with a
 * JSON body (local_reply_config).
 */
function rateLimitFilter(timeoutMs: number): JsonObject {
  return {
    name: "envoy.filters.http.ratelimit",
    typed_config: typed("envoy.extensions.filters.http.ratelimit.v3.RateLimit", {
      domain: RATELIMIT_DOMAIN,
      request_type: "both",
      timeout: `${timeoutMs / 1000}s`,
      failure_mode_deny: false,
      rate_limited_as_resource_exhausted: true,
      rate_limit_service: { grpc_service: { envoy_grpc: { cluster_name: RATELIMIT_CLUSTER } }, transport_api_version: "V3" },
    }),
  };
}

/**
 * The descriptors each route sends to the rate-limit service (the default rules
 * in services/ratelimit/src/domain/limits.ts match exactly these shapes):
 *   public routes:    (route_class=<service's public class, e.g. auth_public>, remote_address=<client address>)
 *   protected routes: (route_class=read|write, user_id=<JWT sub>)
 *   stream opening (a service's streamRateLimitClass, e.g. realtime Subscribe):
 *                     (route_class=stream_open, user_id=<JWT sub>) and (route_class=stream_open, remote_address=<client address>)
 * Public routes key on the address, never on a header the client controls (a
 * junk Authorization header on a public route is not verified). The user id
 * comes from jwt_authn's verified payload in dynamic metadata.
 */
export function rateLimitActions(policy: { isPublic: boolean; routeClass: string; streamOpenClass?: string }): JsonObject[] {
  const routeClass = (value: string): JsonObject => ({ generic_key: { descriptor_key: "route_class", descriptor_value: value } });
  const address: JsonObject = { remote_address: {} };
  const user: JsonObject = {
    metadata: {
      descriptor_key: "user_id",
      metadata_key: { key: "envoy.filters.http.jwt_authn", path: [{ key: "jwt_payload" }, { key: "sub" }] },
      source: "DYNAMIC",
    },
  };
  // Opening a stream: two descriptors, both counted on every open; the
  // request is refused when either is over (one user's reconnect loop, or one
  // address opening streams for many accounts).
  if (policy.streamOpenClass !== undefined && !policy.isPublic) {
    return [{ actions: [routeClass(policy.streamOpenClass), user] }, { actions: [routeClass(policy.streamOpenClass), address] }];
  }
  return [{ actions: [routeClass(policy.routeClass), policy.isPublic ? address : user] }];
}

/**
 * Envoy's own answers (jwt_authn's 401, the transcoder's 400 on bad JSON, 404
 * for unknown methods, 503 with no healthy upstream) are text/plain by
 * default. REST clients get the same shape as service errors instead — a
 * google.rpc.Status JSON, as convert_grpc_status produces — with the gRPC code
 * that corresponds to the HTTP status. gRPC and gRPC-web requests are left
 * alone: Envoy turns their local replies into grpc-status/grpc-message.
 */
const LOCAL_REPLY_GRPC_CODES: Array<[httpStatus: number, grpcCode: number]> = [
  [400, 3], // INVALID_ARGUMENT
  [401, 16], // UNAUTHENTICATED
  [403, 7], // PERMISSION_DENIED
  [404, 5], // NOT_FOUND
  [413, 8], // RESOURCE_EXHAUSTED (as Connect maps it)
  [429, 8], // RESOURCE_EXHAUSTED
  [502, 14], // UNAVAILABLE
  [503, 14], // UNAVAILABLE
  [504, 4], // DEADLINE_EXCEEDED
];

function localReplyAsStatus(): JsonObject {
  // "Not gRPC" cannot be read off content-type alone: the transcoder rewrites a
  // REST request's content-type to application/grpc before it parses the
  // body, so its own 400s would look like gRPC. It leaves
  // x-envoy-original-path behind, which marks a transcoded request.
  const header = (name: string, match: JsonObject): JsonObject => ({ header_filter: { header: { name, ...match } } });
  const notGrpc: JsonObject = {
    or_filter: {
      filters: [
        header("x-envoy-original-path", { present_match: true }),
        header("content-type", { present_match: false }),
        header("content-type", { string_match: { prefix: "application/grpc" }, invert_match: true }),
      ],
    },
  };
  const body = (code: number): JsonObject => ({ json_format: { code, message: "%LOCAL_REPLY_BODY%" }, content_type: "application/json" });
  return {
    mappers: [
      // The rate-limit filter's 429 has an empty body; give it a message. Only
      // replies flagged RL (rate limited by the filter): a service's own
      // RESOURCE_EXHAUSTED keeps its message.
      {
        filter: {
          and_filter: {
            filters: [
              { status_code_filter: { comparison: { op: "EQ", value: { default_value: 429, runtime_key: "edge.local_reply.429" } } } },
              { response_flag_filter: { flags: ["RL"] } },
              notGrpc,
            ],
          },
        },
        body: { inline_string: "rate limit exceeded" },
        body_format_override: body(8),
      },
      ...LOCAL_REPLY_GRPC_CODES.map(([status, code]): JsonObject => ({
        filter: {
          and_filter: {
            filters: [{ status_code_filter: { comparison: { op: "EQ", value: { default_value: status, runtime_key: `edge.local_reply.${status}` } } } }, notGrpc],
          },
        },
        body_format_override: body(code),
      })),
      // Any other error Envoy answers itself: UNKNOWN. Successful local replies
      // (the /docs, /openapi.json and web app files) keep their body and content type.
      {
        filter: {
          and_filter: {
            filters: [{ status_code_filter: { comparison: { op: "GE", value: { default_value: 400, runtime_key: "edge.local_reply.error" } } } }, notGrpc],
          },
        },
        body_format_override: body(2),
      },
    ],
  };
}

// --- clusters, logs, tracing ------------------------------------------------------

function grpcCluster(name: string, address: HostPort, discovery: string): JsonObject {
  return {
    ...plainCluster(name, address, discovery, true),
    health_checks: [
      {
        timeout: "1s",
        interval: "5s",
        // Probe faster while a host is down, so a restarted service is back quickly.
        unhealthy_interval: "1s",
        unhealthy_threshold: 2,
        healthy_threshold: 1,
        grpc_health_check: {},
      },
    ],
  };
}

function plainCluster(name: string, address: HostPort, discovery: string, http2: boolean): JsonObject {
  const cluster: JsonObject = {
    name,
    type: discovery,
    connect_timeout: "1s",
    dns_lookup_family: "V4_ONLY",
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(address) } }] }] },
  };
  if (http2) {
    cluster["typed_extension_protocol_options"] = {
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": typed("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", {
        explicit_http_config: { http2_protocol_options: {} },
      }),
    };
  }
  return cluster;
}

function socketAddress({ host, port }: HostPort): JsonObject {
  return { socket_address: { address: host, port_value: port } };
}

function accessLog(): JsonObject {
  return {
    name: "envoy.access_loggers.stdout",
    typed_config: typed("envoy.extensions.access_loggers.stream.v3.StdoutAccessLog", {
      log_format: {
        json_format: {
          time: "%START_TIME%",
          request_id: "%REQ(X-REQUEST-ID)%",
          method: "%REQ(:METHOD)%",
          path: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
          route: "%ROUTE_NAME%",
          protocol: "%PROTOCOL%",
          status: "%RESPONSE_CODE%",
          grpc_status: "%GRPC_STATUS%",
          flags: "%RESPONSE_FLAGS%",
          details: "%RESPONSE_CODE_DETAILS%",
          duration_ms: "%DURATION%",
          upstream: "%UPSTREAM_HOST%",
          client: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
          user: "%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:jwt_payload:sub)%",
          traceparent: "%REQ(TRACEPARENT)%",
        },
      },
    }),
  };
}

function tracing(): JsonObject {
  return {
    provider: {
      name: "envoy.tracers.opentelemetry",
      typed_config: typed("envoy.config.trace.v3.OpenTelemetryConfig", {
        grpc_service: { envoy_grpc: { cluster_name: OTEL_CLUSTER }, timeout: "1s" },
        service_name: "aviary-edge",
      }),
    },
  };
}
