// Wiring of the rate-limit service: configuration → adapters → domain → server.
//
// Envoy's envoy.filters.http.ratelimit filter calls this service (plain gRPC,
// envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit) from inside the
// mesh. It is never routed through the edge, so it has no auth interceptor.
import { RateLimitService } from "@aviary/gen/envoy/service/ratelimit/v3/rls_pb";
import { ConfigError, duration, loadConfig, oneOf, optionalString, port, string, type ConfigOf, type ConfigProblem } from "@aviary/runtime/config";
import type { Logger } from "@aviary/runtime/log";
import { startServer, type RunningServer } from "@aviary/runtime/server";
import type { Cache } from "@aviary/runtime/cache/cache";
import { createRateLimitHandlers } from "./handlers.ts";
import { defaultRules, parseRules, type LimitRule } from "./domain/limits.ts";
import { cacheConfigSpec, internalListener, internalPortConfigSpec, observabilityConfigSpec, startServiceBase } from "@aviary/runtime/service-config";

/** Every setting of the rate-limit service, from the environment (see README "Rate limiting"). */
export const rateLimitConfigSpec = {
  host: string("RATELIMIT_HOST", { default: "127.0.0.1" }),
  port: port("RATELIMIT_PORT", { default: 8090 }),
  ...internalPortConfigSpec("RATELIMIT"),
  domain: string("RATELIMIT_DOMAIN", { default: "aviary" }),
  /** JSON array of rules (see domain/limits.ts parseRules); unset = defaultRules. */
  rulesJson: optionalString("RATELIMIT_RULES"),
  /** Below Envoy's rate-limit filter timeout (RATELIMIT_FILTER_TIMEOUT_MS, 50 ms), so a slow Redis gets our fail-open answer, not Envoy's timeout. */
  cacheTimeoutMs: duration("RATELIMIT_CACHE_TIMEOUT", { default: "40ms", min: "1ms", max: "5s" }),
  /**
   * Client headers through response_headers_to_add: "all" = x-ratelimit-limit/-remaining/-reset
   * on every limited answer (+ retry-after when over) — the edge's only source of these headers
   * (its enable_x_ratelimit_headers is off); "none" = no headers.
   */
  responseHeaders: oneOf("RATELIMIT_RESPONSE_HEADERS", ["all", "none"], { default: "all" }),
  ...cacheConfigSpec,
  ...observabilityConfigSpec,
};

export type RateLimitConfig = ConfigOf<typeof rateLimitConfigSpec> & { readonly rules: readonly LimitRule[] };

/** Loads and checks every variable, RATELIMIT_RULES included; one ConfigError lists all problems. */
export function rateLimitConfigFromEnv(env: NodeJS.ProcessEnv = process.env): RateLimitConfig {
  const problems: ConfigProblem[] = [];
  let base: ConfigOf<typeof rateLimitConfigSpec> | undefined;
  try {
    base = loadConfig(rateLimitConfigSpec, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
  }
  let rules: readonly LimitRule[] = defaultRules;
  const rulesJson = env["RATELIMIT_RULES"];
  if (rulesJson) {
    try {
      rules = parseRules(rulesJson);
    } catch (error) {
      problems.push({ variable: "RATELIMIT_RULES", problem: (error as Error).message });
    }
  }
  if (problems.length > 0 || !base) throw new ConfigError(problems);
  return { ...base, rules };
}

/** Adapters can be handed in (the dev launcher's shared cache, tests). */
export interface RateLimitAdapters {
  cache?: Cache;
  logger?: Logger;
}

export interface RunningRateLimitService extends RunningServer {
  readonly cache: Cache;
  readonly rules: readonly LimitRule[];
}

export async function startRateLimitService(config: RateLimitConfig, adapters: RateLimitAdapters = {}): Promise<RunningRateLimitService> {
  const base = startServiceBase("ratelimit", config, adapters);
  const { logger, telemetry } = base;
  const cache = await base.cache(config, adapters.cache);
  if (cache.kind === "memory") logger.warn("REDIS_URL is not set: counting in process memory, so limits are per instance");

  const decisions = telemetry.meter.createCounter("ratelimit.decisions", { description: "Limited descriptors checked, by rule and outcome" });
  const failOpens = telemetry.meter.createCounter("ratelimit.fail_open", { description: "Requests answered OK because the counters did not answer" });
  // Exported at 0 from the start: "never failed open" is a series with rate 0, not an absent one (dashboards, alerts).
  failOpens.add(0);
  const handlers = createRateLimitHandlers({
    cache,
    rules: config.rules,
    domain: config.domain,
    cacheTimeoutMs: config.cacheTimeoutMs,
    responseHeaders: config.responseHeaders,
    logger,
    observe: {
      decision: (rule, over) => decisions.add(1, { rule, code: over ? "over_limit" : "ok" }),
      failOpen: () => failOpens.add(1),
    },
  });

  const server = await startServer({
    name: "ratelimit",
    host: config.host,
    port: config.port,
    ...internalListener(config),
    logger,
    telemetry,
    routes: (router) => router.service(RateLimitService, handlers),
    // No dependency gates readiness: without Redis the service still answers
    // (OK, fail open), which is what Envoy needs from it. Redis outages show
    // in the logs and in ratelimit.fail_open.
    readiness: [],
    // No `auth`: Envoy calls this service from inside the mesh with no user
    // token, and the edge has no route to it. startServer logs "no auth
    // configured" once at start; that is expected here.
  });
  logger.info({ url: server.url, cache: cache.kind, domain: config.domain, rules: config.rules.map((r) => r.name) }, "rate-limit service listening");

  return {
    ...server,
    cache,
    rules: config.rules,
    async close() {
      await server.close();
      await base.close();
    },
  };
}
