// What other packages (the dev launcher, tests, benchmarks) use of the auth service.
export { authConfigFromEnv, authConfigSpec, migrationsFolder, publicProcedures, startAuthService } from "./server.ts";
export type { AuthAdapters, AuthConfig, RunningAuthService } from "./server.ts";
export { authEventsTopic } from "./events/publish.ts";
