// What other packages (the dev launcher, tests, the edge, benchmarks) use of the chat service.
export { chatConfigFromEnv, chatConfigSpec, chatRoles, migrationsFolder, startChatService } from "./server.ts";
export type { ChatAdapters, ChatConfig, RunningChatService } from "./server.ts";
export type { ChatMedia, ChatUsers } from "./peers.ts";
export { chatEventsTopic } from "./events/publish.ts";
export { chatGroup } from "./events/deliver.ts";
