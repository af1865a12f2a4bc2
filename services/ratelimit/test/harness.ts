// Starts the real rate-limit service for a test file on the shared Redis (or
// one given in env), with a plain gRPC client: connect-node's gRPC transport
// speaks exactly what Envoy's rate-limit filter sends.
import { randomBytes } from "node:crypto";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { RateLimitService, type RateLimitRequest } from "@aviary/gen/envoy/service/ratelimit/v3/rls_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { RateLimitRequestSchema } from "@aviary/gen/envoy/service/ratelimit/v3/rls_pb";
import { infra } from "../../runtime/test-support/infra.ts";
import { rateLimitConfigFromEnv, startRateLimitService, type RunningRateLimitService } from "../src/index.ts";

/** Rules of the suites: minute and hour windows for counting, a one-second window for rollover. */
export const testRules = [
  { name: "test_minute_per_user", entries: [{ key: "route_class", value: "test_minute" }, { key: "user_id" }], requests_per_unit: 5, unit: "minute" },
  { name: "test_hour_per_user", entries: [{ key: "route_class", value: "test_hour" }, { key: "user_id" }], requests_per_unit: 5, unit: "hour" },
  { name: "test_second_per_user", entries: [{ key: "route_class", value: "test_second" }, { key: "user_id" }], requests_per_unit: 3, unit: "second" },
  { name: "auth_public_per_ip", entries: [{ key: "route_class", value: "auth_public" }, { key: "remote_address" }], requests_per_unit: 30, unit: "minute" },
];

export interface TestRateLimit {
  service: RunningRateLimitService;
  client: Client<typeof RateLimitService>;
  close(): Promise<void>;
}

export async function startTestRateLimit(env: Record<string, string> = {}): Promise<TestRateLimit> {
  const redisUrl = env["REDIS_URL"] ?? (await infra()).redisUrl;
  const config = rateLimitConfigFromEnv({
    RATELIMIT_PORT: "0",
    RATELIMIT_INTERNAL_PORT: "0",
    REDIS_URL: redisUrl,
    RATELIMIT_RULES: JSON.stringify(testRules),
    // Generous: a loaded CI machine must not turn counting tests into fail-open answers.
    RATELIMIT_CACHE_TIMEOUT: "2s",
    LOG_LEVEL: "silent",
    ...env,
  });
  const service = await startRateLimitService(config);
  const client = createClient(RateLimitService, createGrpcTransport({ baseUrl: service.url }));
  return { service, client, close: () => service.close() };
}

/** A user id (or any descriptor value) no other test or earlier run uses. */
export function uniqueValue(label = "u"): string {
  return `${label}-${process.pid}-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
}

/** A request with one descriptor per entry list, in domain "aviary". */
export function request(
  descriptors: Array<Array<[string, string]>>,
  extra: { domain?: string; hitsAddend?: number } = {},
): MessageInitShape<typeof RateLimitRequestSchema> {
  return {
    domain: extra.domain ?? "aviary",
    hitsAddend: extra.hitsAddend ?? 0,
    descriptors: descriptors.map((entries) => ({ entries: entries.map(([key, value]) => ({ key, value })) })),
  };
}

export function header(response: { responseHeadersToAdd: Array<{ key: string; value: string }> }, name: string): string | undefined {
  return response.responseHeadersToAdd.find((h) => h.key === name)?.value;
}

/**
 * Waits until the current window of `windowSeconds` has at least `needMs`
 * left, so a burst of calls in a test cannot straddle a window boundary.
 */
export async function freshWindow(windowSeconds: number, needMs: number): Promise<void> {
  const windowMs = windowSeconds * 1000;
  const left = windowMs - (Date.now() % windowMs);
  if (left < needMs) await new Promise((resolve) => setTimeout(resolve, left + 20));
}

export type { RateLimitRequest };
