// What other packages (the dev launcher, tests, other services' clients) use of the media service.
export { mediaConfigFromEnv, mediaConfigSpec, migrationsFolder, startMediaService } from "./server.ts";
export type { MediaAdapters, MediaConfig, RunningMediaService } from "./server.ts";
export { objectKeyFor } from "./handlers.ts";
