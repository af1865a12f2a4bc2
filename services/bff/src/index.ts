// What other packages (the dev launcher, tests, benchmarks) use of the BFF.
export { bffConfigFromEnv, bffConfigSpec, startBffService } from "./server.ts";
export type { BffAdapters, BffConfig, RunningBffService } from "./server.ts";
export { noUnreadYet, type CallAsViewer, type UnreadCounts, type UnreadSource } from "./domain/unread.ts";
export { serviceUnread } from "./peers.ts";
