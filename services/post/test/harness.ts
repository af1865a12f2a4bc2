// Starts the real post service for a test file, with the services it talks
// to: auth (tokens and the JWKS), user (profiles and blocks: who may see
// whom) and media (confirmed uploads on the shared MinIO). Each gets its own
// database on the shared PostgreSQL; Redis and Kafka are shared. Services
// handed in through `deps` are reused and left running on close (the feed
// service's tests share them); the rest are started here and stopped on close.
import { createClient, type Client, type ConnectError } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { PostService } from "@aviary/gen/aviary/post/v1/post_pb";
import { MediaPurpose } from "@aviary/gen/aviary/media/v1/media_pb";
import { BadRequestSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { infra, uniqueName, withClient } from "../../runtime/test-support/infra.ts";
import { freshDatabase } from "../../runtime/test-support/database.ts";
import { startTestAuth, type TestAuth } from "../../auth/test/harness.ts";
import { startTestUser, type Account, type TestUser } from "../../user/test/harness.ts";
import { startTestMedia, uploadSample, type TestMedia } from "../../media/test/harness.ts";
import { postConfigFromEnv, startPostService, type RunningPostService } from "../src/index.ts";

export { as, rejection } from "../../auth/test/harness.ts";
export type { Account } from "../../user/test/harness.ts";

export interface TestPost {
  auth: TestAuth;
  user: TestUser;
  media: TestMedia;
  service: RunningPostService;
  client: Client<typeof PostService>;
  /** Runs SQL against the post service's database. */
  query<T extends Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Registers and logs in a new account; resolves once its profile exists. */
  signUp(): Promise<Account>;
  /** Uploads a small PNG as `account` and confirms it; resolves to the ready media id. */
  uploadMedia(account: Account, purpose?: MediaPurpose): Promise<string>;
  close(): Promise<void>;
}

export async function startTestPost(
  env: Record<string, string> = {},
  deps: { auth?: TestAuth; user?: TestUser; media?: TestMedia } = {},
): Promise<TestPost> {
  const urls = await infra();
  const auth = deps.auth ?? deps.user?.auth ?? deps.media?.auth ?? (await startTestAuth());
  const [user, media] = await Promise.all([deps.user ?? startTestUser({}, auth), deps.media ?? startTestMedia({}, auth)]);
  const database = await freshDatabase(urls.databaseUrl, "post_test");
  const config = postConfigFromEnv({
    POST_PORT: "0",
    POST_INTERNAL_PORT: "0",
    DATABASE_URL: database.url,
    REDIS_URL: urls.redisUrl,
    KAFKA_BROKERS: urls.kafkaBrokers.join(","),
    AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
    USER_URL: user.service.peerUrl,
    MEDIA_URL: media.service.peerUrl,
    POST_GROUP: uniqueName("post_test"),
    TRUSTED_PROXY_HOPS: "1",
    PAGE_TOKEN_SECRET: "test-page-token-secret-0123456789",
    LOG_LEVEL: "silent",
    ...env,
  });
  const service = await startPostService(config);
  const client = createClient(PostService, createGrpcTransport({ baseUrl: service.url }));

  return {
    auth,
    user,
    media,
    service,
    client,
    query: (text, params = []) => withClient(database.url, async (pg) => (await pg.query(text, params)).rows),
    signUp: () => user.signUp({ label: "post" }),
    uploadMedia: (account, purpose = MediaPurpose.POST) => uploadSample(media.client, account.call, { purpose }),
    async close() {
      await service.close();
      await database.drop();
      if (deps.media === undefined) await media.close();
      if (deps.user === undefined) await user.close();
      if (deps.auth === undefined && deps.user === undefined && deps.media === undefined) await auth.close();
    },
  };
}

/** The fields an INVALID_ARGUMENT names, in order. */
export function violatedFields(error: ConnectError): string[] {
  return error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
}
