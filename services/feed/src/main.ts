// Entry point of the feed service process: `node services/feed/src/main.ts`.
// FEED_ROLE=all|api|consumer picks what this process runs (README).
import { runService } from "@aviary/runtime/server";
import { feedConfigFromEnv, startFeedService } from "./server.ts";

await runService(() => startFeedService(feedConfigFromEnv()), { name: "feed" });
