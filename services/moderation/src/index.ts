// What other packages (the dev launcher, tests, the edge) use of the moderation service.
export { migrationsFolder, moderationConfigFromEnv, moderationConfigSpec, startModerationService } from "./server.ts";
export type { ModerationAdapters, ModerationConfig, RunningModerationService } from "./server.ts";
export { moderationEventsTopic } from "./events/publish.ts";
