// Starts the real audit service for a test file, on the real PostgreSQL,
// Redis, Kafka and S3 (the chain's anchors in a bucket of its own), behind the moderation harness (auth with an admin from
// AUTH_BOOTSTRAP_ADMINS and a moderator, user, moderation on a topic of the
// suite's own), reading the auth topic and that moderation topic in a group
// of its own.
import { randomBytes } from "node:crypto";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuditService, type AuditEntry } from "@aviary/gen/aviary/audit/v1/audit_pb";
import { infra, uniqueName, withClient } from "../../runtime/test-support/infra.ts";
import { freshDatabase } from "../../runtime/test-support/database.ts";
import { dropBucket, s3Client } from "../../media/test/harness.ts";
import { startTestModeration, type TestModeration, type TestModerationOptions } from "../../moderation/test/harness.ts";
import { auditConfigFromEnv, startAuditService, type RunningAuditService } from "../src/index.ts";

export { rejection, violatedFields, type Account } from "../../moderation/test/harness.ts";

export interface TestAudit {
  moderation: TestModeration;
  service: RunningAuditService;
  client: Client<typeof AuditService>;
  /** The suite's moderation topic. */
  moderationTopic: string;
  /** The suite's own S3 bucket for the chain's anchors (on the real S3 server). */
  anchorBucket: string;
  /** Runs SQL against the audit service's database (as the superuser the tests connect with). */
  query<T extends Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Every entry about `subject` (as the admin), oldest first. */
  entriesAbout(subject: string): Promise<AuditEntry[]>;
  close(): Promise<void>;
}

export interface TestAuditOptions {
  /** More settings of the audit service. */
  env?: Record<string, string>;
  /** More settings and adapters for the auth service behind it. */
  auth?: TestModerationOptions["auth"];
}

export async function startTestAudit(options: TestAuditOptions = {}): Promise<TestAudit> {
  const urls = await infra();
  // The suite's own data-export topic, read by both the auth exporter and the audit log.
  const exportTopic = uniqueName("auth_data_exports_test");
  const moderation = await startTestModeration({}, { auth: { env: { AUTH_EXPORT_TOPIC: exportTopic, ...options.auth?.env }, ...(options.auth?.adapters === undefined ? {} : { adapters: options.auth.adapters }) } });
  const moderationTopic = moderation.topic;
  const database = await freshDatabase(urls.databaseUrl, "audit_test");
  const anchorBucket = `aviary-audit-${randomBytes(6).toString("hex")}`;
  const service = await startAuditService(
    auditConfigFromEnv({
      AUDIT_PORT: "0",
      AUDIT_INTERNAL_PORT: "0",
      DATABASE_URL: database.url,
      REDIS_URL: urls.redisUrl,
      KAFKA_BROKERS: urls.kafkaBrokers.join(","),
      AUTH_JWKS_URL: `${moderation.auth.service.url}/.well-known/jwks.json`,
      MODERATION_EVENTS_TOPIC: moderationTopic,
      AUTH_EXPORT_TOPIC: exportTopic,
      S3_ENDPOINT: urls.s3.endpoint,
      S3_ACCESS_KEY: urls.s3.accessKey,
      S3_SECRET_KEY: urls.s3.secretKey,
      S3_REGION: urls.s3.region,
      S3_CREATE_BUCKET: "true",
      AUDIT_ANCHOR_BUCKET: anchorBucket,
      // The timer stays out of the way; tests anchor with service.anchorNow().
      AUDIT_ANCHOR_INTERVAL: "24h",
      AUDIT_GROUP: uniqueName("audit_test"),
      PAGE_TOKEN_SECRET: "test-page-token-secret-0123456789",
      LOG_LEVEL: process.env["AUDIT_TEST_LOG"] ?? "silent",
      ...options.env,
    }),
  );
  const client = createClient(AuditService, createGrpcTransport({ baseUrl: service.url }));
  const query = <T extends Record<string, unknown>>(text: string, params: unknown[] = []) => withClient(database.url, async (pg) => (await pg.query(text, params)).rows as T[]);
  return {
    moderation,
    service,
    client,
    moderationTopic,
    anchorBucket,
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
      const s3 = s3Client(urls.s3);
      await dropBucket(s3, anchorBucket);
      s3.destroy();
      await database.drop();
      await moderation.close();
    },
  };
}
