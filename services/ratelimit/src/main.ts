// Entry point of the rate-limit service process: `node services/ratelimit/src/main.ts`.
import { runService } from "@aviary/runtime/server";
import { rateLimitConfigFromEnv, startRateLimitService } from "./server.ts";

await runService(() => startRateLimitService(rateLimitConfigFromEnv()), { name: "ratelimit" });
