// What other packages (the dev launcher, tests, benchmarks) use of the user service.
export { migrationsFolder, startUserService, userConfigFromEnv, userConfigSpec } from "./server.ts";
export type { RunningUserService, UserAdapters, UserConfig } from "./server.ts";
export { userEventsTopic } from "./events/publish.ts";
export { authEventsTopic, profilesConsumer } from "./events/consume.ts";
export { RESERVED_USERNAMES } from "./domain/username.ts";
