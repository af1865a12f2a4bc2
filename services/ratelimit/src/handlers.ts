// envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit: Envoy's global
// rate-limit filter asks, per request, whether its descriptors are over limit.
import type { ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import {
  RateLimitResponse_Code,
  RateLimitResponse_DescriptorStatusSchema,
  RateLimitResponse_RateLimit_Unit,
  RateLimitResponseSchema,
  type RateLimitRequest,
  type RateLimitResponse,
  type RateLimitResponse_DescriptorStatus,
  type RateLimitService,
} from "@aviary/gen/envoy/service/ratelimit/v3/rls_pb";
import type { RateLimitDescriptor } from "@aviary/gen/envoy/extensions/common/ratelimit/v3/ratelimit_pb";
import { RateLimitUnit } from "@aviary/gen/envoy/type/v3/ratelimit_unit_pb";
import { HeaderValueSchema, type HeaderValue } from "@aviary/gen/envoy/config/core/v3/base_pb";
import type { Cache } from "@aviary/runtime/cache/cache";
import type { Logger } from "@aviary/runtime/log";
import { invalidArgument } from "@aviary/runtime/errors";
import { matchRule, type DescriptorEntry, type LimitRule, type LimitUnit } from "./domain/limits.ts";
import { hitWindow, type WindowLimit, type WindowResult } from "./domain/window.ts";

export interface RateLimitDeps {
  cache: Cache;
  rules: readonly LimitRule[];
  /** The domain our rules belong to; descriptors of other domains are not limited. */
  domain: string;
  /** How long the counters may take before we answer OK without them (fail open). */
  cacheTimeoutMs: number;
  /**
   * Whether to add the client headers through response_headers_to_add (see
   * RATELIMIT_RESPONSE_HEADERS). The edge leaves Envoy's own
   * enable_x_ratelimit_headers off: these are the only rate-limit headers.
   */
  responseHeaders: "all" | "none";
  logger: Logger;
  /** Counts decisions and fail-opens (metrics); optional. */
  observe?: {
    decision(rule: string, over: boolean): void;
    failOpen(): void;
  };
  now?: () => number;
}

const RESPONSE_UNIT: Record<LimitUnit, RateLimitResponse_RateLimit_Unit> = {
  second: RateLimitResponse_RateLimit_Unit.SECOND,
  minute: RateLimitResponse_RateLimit_Unit.MINUTE,
  hour: RateLimitResponse_RateLimit_Unit.HOUR,
  day: RateLimitResponse_RateLimit_Unit.DAY,
  week: RateLimitResponse_RateLimit_Unit.WEEK,
};

/** Units a descriptor's `limit` override may use (fixed windows need a fixed length). */
const OVERRIDE_UNIT: Partial<Record<RateLimitUnit, LimitUnit>> = {
  [RateLimitUnit.SECOND]: "second",
  [RateLimitUnit.MINUTE]: "minute",
  [RateLimitUnit.HOUR]: "hour",
  [RateLimitUnit.DAY]: "day",
  [RateLimitUnit.WEEK]: "week",
};

interface Applied {
  name: string;
  limit: WindowLimit;
}

/**
 * The limit for one descriptor: the override Envoy sent with it (route-level
 * `limit` in the rate_limits action), else the first matching rule.
 */
export function limitFor(rules: readonly LimitRule[], descriptor: Pick<RateLimitDescriptor, "entries" | "limit">): Applied | undefined {
  const override = descriptor.limit;
  const overrideUnit = override ? OVERRIDE_UNIT[override.unit] : undefined;
  if (override && overrideUnit) return { name: "override", limit: { requestsPerUnit: override.requestsPerUnit, unit: overrideUnit } };
  const rule = matchRule(rules, descriptor.entries);
  return rule && { name: rule.name, limit: { requestsPerUnit: rule.requestsPerUnit, unit: rule.unit } };
}

/** Hits a descriptor adds: its own hits_addend when set (0 = only look), else the request's, where unset (0) means 1. */
export function hitsOf(request: Pick<RateLimitRequest, "hitsAddend">, descriptor: Pick<RateLimitDescriptor, "hitsAddend">): number {
  if (descriptor.hitsAddend !== undefined) return Number(descriptor.hitsAddend > 0xffff_ffffn ? 0xffff_ffffn : descriptor.hitsAddend);
  return request.hitsAddend === 0 ? 1 : request.hitsAddend;
}

/**
 * Headers for the client, from the most constraining limited descriptor (the
 * least remaining), in the IETF RateLimit header draft-03 shapes (the ones
 * Envoy's enable_x_ratelimit_headers would write, which the edge leaves off),
 * plus retry-after when over.
 */
export function rateLimitHeaders(limited: ReadonlyArray<{ limit: WindowLimit; result: WindowResult }>): Array<{ key: string; value: string }> {
  const tightest = limited.reduce<(typeof limited)[number] | undefined>(
    (best, item) => (best === undefined || item.result.remaining < best.result.remaining ? item : best),
    undefined,
  );
  if (!tightest) return [];
  const { limit, result } = tightest;
  const resetSeconds = Math.max(1, Math.ceil(result.resetMs / 1000));
  const headers = [
    { key: "x-ratelimit-limit", value: `${limit.requestsPerUnit}, ${limit.requestsPerUnit};w=${result.windowSeconds}` },
    { key: "x-ratelimit-remaining", value: String(result.remaining) },
    { key: "x-ratelimit-reset", value: String(resetSeconds) },
  ];
  if (limited.some((item) => item.result.over)) {
    // The over descriptor that frees up last decides when a retry can succeed.
    const retryMs = Math.max(...limited.filter((item) => item.result.over).map((item) => item.result.resetMs));
    headers.push({ key: "retry-after", value: String(Math.max(1, Math.ceil(retryMs / 1000))) });
  }
  return headers;
}

class CacheTimeout extends Error {}

function within<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CacheTimeout(`rate-limit counters did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export function createRateLimitHandlers(deps: RateLimitDeps): ServiceImpl<typeof RateLimitService> {
  const now = deps.now ?? Date.now;
  // Log the first failure of an outage and the recovery, not every request.
  let failing = false;

  return {
    async shouldRateLimit(request): Promise<RateLimitResponse> {
      if (request.domain === "") throw invalidArgument([{ field: "domain", description: "must not be empty", reason: "REQUIRED" }]);
      if (request.descriptors.length === 0) {
        throw invalidArgument([{ field: "descriptors", description: "must list at least one descriptor", reason: "REQUIRED" }]);
      }
      const applied = request.domain === deps.domain ? request.descriptors.map((d) => limitFor(deps.rules, d)) : request.descriptors.map(() => undefined);

      const at = now();
      const work = Promise.all(
        request.descriptors.map((descriptor, i) => {
          const limit = applied[i];
          if (!limit) return undefined;
          const entries: DescriptorEntry[] = descriptor.entries.map((e) => ({ key: e.key, value: e.value }));
          return hitWindow(deps.cache, { domain: request.domain, entries, limit: limit.limit, hits: hitsOf(request, descriptor) }, at);
        }),
      );
      work.catch(() => {}); // a late failure after the timeout is already handled below
      let results: Array<WindowResult | undefined>;
      try {
        results = await within(work, deps.cacheTimeoutMs);
        if (failing) {
          failing = false;
          deps.logger.warn("rate-limit counters answer again: limiting resumed");
        }
      } catch (error) {
        // Fail open: losing Redis costs protection, never availability.
        deps.observe?.failOpen();
        if (!failing) {
          failing = true;
          deps.logger.error({ err: error }, "rate-limit counters unavailable: allowing every request until they answer (fail open)");
        }
        return failOpen(request.descriptors.length);
      }

      const statuses: RateLimitResponse_DescriptorStatus[] = [];
      const limited: Array<{ limit: WindowLimit; result: WindowResult }> = [];
      request.descriptors.forEach((_, i) => {
        const limit = applied[i];
        const result = results[i];
        if (!limit || !result) {
          statuses.push(create(RateLimitResponse_DescriptorStatusSchema, { code: RateLimitResponse_Code.OK }));
          return;
        }
        deps.observe?.decision(limit.name, result.over);
        limited.push({ limit: limit.limit, result });
        statuses.push(
          create(RateLimitResponse_DescriptorStatusSchema, {
            code: result.over ? RateLimitResponse_Code.OVER_LIMIT : RateLimitResponse_Code.OK,
            currentLimit: { name: limit.name, requestsPerUnit: limit.limit.requestsPerUnit, unit: RESPONSE_UNIT[limit.limit.unit] },
            limitRemaining: result.remaining,
            durationUntilReset: {
              seconds: BigInt(Math.floor(result.resetMs / 1000)),
              nanos: Math.round(result.resetMs % 1000) * 1_000_000,
            },
          }),
        );
      });
      const over = limited.some((item) => item.result.over);
      return create(RateLimitResponseSchema, {
        overallCode: over ? RateLimitResponse_Code.OVER_LIMIT : RateLimitResponse_Code.OK,
        statuses,
        responseHeadersToAdd: rateLimitHeaders(limited)
          .filter(() => deps.responseHeaders === "all")
          .map((h): HeaderValue => create(HeaderValueSchema, h)),
      });
    },
  };
}

/**
 * Every descriptor OK, with no current_limit: the counts are unknown, and a
 * status without a limit keeps Envoy (should enable_x_ratelimit_headers ever be
 * switched on) from reporting a made-up remaining count. No headers either.
 */
function failOpen(descriptorCount: number): RateLimitResponse {
  return create(RateLimitResponseSchema, {
    overallCode: RateLimitResponse_Code.OK,
    statuses: Array.from({ length: descriptorCount }, () => create(RateLimitResponse_DescriptorStatusSchema, { code: RateLimitResponse_Code.OK })),
  });
}
