// Entry point of the auth service process: `node services/auth/src/main.ts`.
import { runService } from "@aviary/runtime/server";
import { authConfigFromEnv, startAuthService } from "./server.ts";

await runService(() => startAuthService(authConfigFromEnv()), { name: "auth" });
