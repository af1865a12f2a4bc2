// Entry point of the audit service process: `node services/audit/src/main.ts`.
import { runService } from "@aviary/runtime/server";
import { auditConfigFromEnv, startAuditService } from "./server.ts";

await runService(() => startAuditService(auditConfigFromEnv()), { name: "audit" });
