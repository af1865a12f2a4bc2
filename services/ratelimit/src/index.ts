// What other packages (the dev launcher, edge tests) use of the rate-limit service.
export { rateLimitConfigFromEnv, rateLimitConfigSpec, startRateLimitService } from "./server.ts";
export type { RateLimitAdapters, RateLimitConfig, RunningRateLimitService } from "./server.ts";
export { defaultRules, parseRules } from "./domain/limits.ts";
export type { LimitRule, LimitUnit, RuleEntry } from "./domain/limits.ts";
