// Entry point of the media service process: `node services/media/src/main.ts`.
import { runService } from "@aviary/runtime/server";
import { mediaConfigFromEnv, startMediaService } from "./server.ts";

await runService(() => startMediaService(mediaConfigFromEnv()), { name: "media" });
