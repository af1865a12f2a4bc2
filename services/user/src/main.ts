// Entry point of the user service process: `node services/user/src/main.ts`.
import { runService } from "@aviary/runtime/server";
import { startUserService, userConfigFromEnv } from "./server.ts";

await runService(() => startUserService(userConfigFromEnv()), { name: "user" });
