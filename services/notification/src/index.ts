// What other packages (the dev launcher, tests, the BFF, benchmarks) use of the notification service.
export { migrationsFolder, notificationConfigFromEnv, notificationConfigSpec, notificationRoles, startNotificationService } from "./server.ts";
export type { NotificationAdapters, NotificationConfig, RunningNotificationService } from "./server.ts";
export { chatEventsTopic, chatGroupOf, notificationGroup, postEventsTopic, userEventsTopic } from "./events/consume.ts";
export { notificationEventsTopic } from "./events/publish.ts";
export { pushGroup, DEVICE_HEADER } from "./push/worker.ts";
export type { PushMessage, PushPlatform, PushProvider, PushTarget, PushVerdict } from "./push/provider.ts";
