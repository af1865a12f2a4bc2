// Starts the real audit service for a test file, on the real PostgreSQL,
// Redis and Kafka, behind the moderation harness (auth with an admin from
// AUTH_BOOTSTRAP_ADMINS and a moderator, user, moderation on a topic of the
// suite's own), reading the auth topic and that moderation topic in a group
// of its own.
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuditService, type AuditEntry } from "@aviary/gen/aviary/audit/v1/audit_pb";
import { infra, uniqueName, withClient } from "../../runtime/test-support/infra.ts";
import { freshDatabase } from "../../runtime/test-support/database.ts";
import { startTestModeration, type TestModeration } from "../../moderation/test/harness.ts";
import { auditConfigFromEnv, startAuditService, type RunningAuditService } from "../src/index.ts";

export { rejection, violatedFields, type Account } from "../../moderation/test/harness.ts";

export interface TestAudit {
  moderation: TestModeration;
  service: RunningAuditService;
  client: Client<typeof AuditService>;
  /** The suite's moderation topic. */
  moderationTopic: string;
  /** Runs SQL against the audit service's database (as the superuser the tests connect with). */
  query<T extends Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Every entry about `subject` (as the admin), oldest first. */
  entriesAbout(subject: string): Promise<AuditEntry[]>;
  close(): Promise<void>;
}

export async function startTestAudit(): Promise<TestAudit> {
  const urls = await infra();
  const moderation = await startTestModeration();
  const moderationTopic = moderation.topic;
  const database = await freshDatabase(urls.databaseUrl, "audit_test");
  const service = await startAuditService(
    auditConfigFromEnv({
      AUDIT_PORT: "0",
      DATABASE_URL: database.url,
      REDIS_URL: urls.redisUrl,
      KAFKA_BROKERS: urls.kafkaBrokers.join(","),
      AUTH_JWKS_URL: `${moderation.auth.service.url}/.well-known/jwks.json`,
      MODERATION_EVENTS_TOPIC: moderationTopic,
      AUDIT_GROUP: uniqueName("audit_test"),
      PAGE_TOKEN_SECRET: "test-page-token-secret-0123456789",
      LOG_LEVEL: process.env["AUDIT_TEST_LOG"] ?? "silent",
    }),
  );
  const client = createClient(AuditService, createGrpcTransport({ baseUrl: service.url }));
  const query = <T extends Record<string, unknown>>(text: string, params: unknown[] = []) => withClient(database.url, async (pg) => (await pg.query(text, params)).rows as T[]);
  return {
    moderation,
    service,
    client,
    moderationTopic,
    query,
    async entriesAbout(subject) {
      const found: AuditEntry[] = [];
      let pageToken = "";
      do {
        const page = await client.listAuditEntries({ subject, pageSize: 200, pageToken }, moderation.admin.call);
        found.push(...page.entries);
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      return found.reverse();
    },
    async close() {
      await service.close();
      await database.drop();
      await moderation.close();
    },
  };
}
