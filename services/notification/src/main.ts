// Entry point of the notification service process: `node services/notification/src/main.ts`.
// NOTIFICATION_ROLE=all|api|consumer|push picks what this process runs (README).
import { runService } from "@aviary/runtime/server";
import { notificationConfigFromEnv, startNotificationService } from "./server.ts";

await runService(() => startNotificationService(notificationConfigFromEnv()), { name: "notification" });
