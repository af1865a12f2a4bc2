// What other packages (the dev launcher, tests, benchmarks) use of the realtime service.
export { realtimeConfigFromEnv, realtimeConfigSpec, startRealtimeService } from "./server.ts";
export type { RealtimeAdapters, RealtimeConfig, RunningRealtimeService } from "./server.ts";
