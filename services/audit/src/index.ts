// What other packages (the dev launcher, tests, the edge) use of the audit service.
export { auditConfigFromEnv, auditConfigSpec, migrationsFolder, startAuditService } from "./server.ts";
export type { AuditAdapters, AuditConfig, RunningAuditService } from "./server.ts";
