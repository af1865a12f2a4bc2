// Entry point of the BFF process: `node services/bff/src/main.ts`.
import { runService } from "@aviary/runtime/server";
import { bffConfigFromEnv, startBffService } from "./server.ts";

await runService(() => startBffService(bffConfigFromEnv()), { name: "bff" });
