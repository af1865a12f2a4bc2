// Entry point of the moderation service process: `node services/moderation/src/main.ts`.
import { runService } from "@aviary/runtime/server";
import { moderationConfigFromEnv, startModerationService } from "./server.ts";

await runService(() => startModerationService(moderationConfigFromEnv()), { name: "moderation" });
