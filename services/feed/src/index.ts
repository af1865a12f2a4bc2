// What other packages (the dev launcher, tests, the BFF) use of the feed service.
export { feedConfigFromEnv, feedConfigSpec, migrationsFolder, startFeedService } from "./server.ts";
export type { FeedAdapters, FeedConfig, RunningFeedService } from "./server.ts";
export { feedGroup, postEventsTopic, userEventsTopic } from "./events/consume.ts";
export type { TimelineStore, TimelineEntry } from "./store/timelines.ts";
