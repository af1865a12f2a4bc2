// Entry point of the chat service process: `node services/chat/src/main.ts`.
// CHAT_ROLE=all|api|delivery picks what this process runs (README).
import { runService } from "@aviary/runtime/server";
import { chatConfigFromEnv, startChatService } from "./server.ts";

await runService(() => startChatService(chatConfigFromEnv()), { name: "chat" });
