// Entry point of the post service process: `node services/post/src/main.ts`.
import { runService } from "@aviary/runtime/server";
import { postConfigFromEnv, startPostService } from "./server.ts";

await runService(() => startPostService(postConfigFromEnv()), { name: "post" });
