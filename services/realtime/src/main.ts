// Entry point of the realtime service process: `node services/realtime/src/main.ts`.
import { runService } from "@aviary/runtime/server";
import { realtimeConfigFromEnv, startRealtimeService } from "./server.ts";

await runService(() => startRealtimeService(realtimeConfigFromEnv()), { name: "realtime" });
