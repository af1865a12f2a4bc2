// What other packages (the dev launcher, tests, the feed service) use of the post service.
export { migrationsFolder, postConfigFromEnv, postConfigSpec, startPostService } from "./server.ts";
export type { PostAdapters, PostConfig, RunningPostService } from "./server.ts";
export { postEventsTopic } from "./events/publish.ts";
export { parseHashtags, parseMentions } from "./domain/text.ts";
