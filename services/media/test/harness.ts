// Starts the real media service for a test file against the shared PostgreSQL,
// Redis and S3 server (MinIO from infra.sh), with a bucket of its own, plus the
// real auth service (its JWKS URL is what the media service verifies with) for
// signed-in users. One of each per file, stopped at the end.
import { randomBytes } from "node:crypto";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { DeleteBucketCommand, DeleteObjectsCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { MediaService, type CreateUploadResponse, type MediaPurpose } from "@aviary/gen/aviary/media/v1/media_pb";
import { infra, uniqueName, withClient, type S3Settings } from "../../runtime/test-support/infra.ts";
import { freshDatabase } from "../../runtime/test-support/database.ts";
import { as, password, startTestAuth, uniqueEmail, uniqueIp, type TestAuth } from "../../auth/test/harness.ts";
import { mediaConfigFromEnv, startMediaService, type RunningMediaService } from "../src/index.ts";

export { as, rejection } from "../../auth/test/harness.ts";

export interface TestUser {
  userId: string;
  token: string;
}

export interface TestMedia {
  service: RunningMediaService;
  client: Client<typeof MediaService>;
  auth: TestAuth;
  s3: S3Client;
  bucket: string;
  /** Registers and signs in a new user. */
  newUser(): Promise<TestUser>;
  /** Whether the bucket holds `key`. */
  objectExists(key: string): Promise<boolean>;
  query<T extends Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export function s3Client(settings: S3Settings): S3Client {
  return new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    forcePathStyle: true,
    credentials: { accessKeyId: settings.accessKey, secretAccessKey: settings.secretKey },
  });
}

/**
 * `issuer`: an auth service the caller started and will stop (the edge test
 * shares one between services); without it the harness starts its own.
 */
export async function startTestMedia(env: Record<string, string> = {}, issuer?: TestAuth): Promise<TestMedia> {
  const urls = await infra();
  const auth = issuer ?? (await startTestAuth());
  const database = await freshDatabase(urls.databaseUrl, "media_test");
  const bucket = `aviary-media-${randomBytes(6).toString("hex")}`;
  const config = mediaConfigFromEnv({
    MEDIA_PORT: "0",
    MEDIA_INTERNAL_PORT: "0",
    DATABASE_URL: database.url,
    REDIS_URL: urls.redisUrl,
    AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
    S3_ENDPOINT: urls.s3.endpoint,
    S3_ACCESS_KEY: urls.s3.accessKey,
    S3_SECRET_KEY: urls.s3.secretKey,
    S3_REGION: urls.s3.region,
    S3_BUCKET: bucket,
    S3_CREATE_BUCKET: "true",
    KAFKA_BROKERS: urls.kafkaBrokers.join(","),
    MEDIA_GROUP: uniqueName("media_test"),
    TRUSTED_PROXY_HOPS: "1",
    LOG_LEVEL: "silent",
    ...env,
  });
  const service = await startMediaService(config);
  const client = createClient(MediaService, createGrpcTransport({ baseUrl: service.url }));
  const s3 = s3Client(urls.s3);
  return {
    service,
    client,
    auth,
    s3,
    bucket,
    async newUser() {
      const email = uniqueEmail("media");
      const registered = await auth.client.register({ identity: { case: "email", value: email }, password });
      const login = await auth.client.login({ identity: { case: "email", value: email }, password, deviceName: "test" }, as({ ip: uniqueIp() }));
      return { userId: registered.userId, token: login.tokens?.accessToken ?? "" };
    },
    async objectExists(key) {
      try {
        await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return true;
      } catch (error) {
        if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
        throw error;
      }
    },
    query: (text, params = []) => withClient(database.url, async (pg) => (await pg.query(text, params)).rows),
    async close() {
      await service.close();
      if (issuer === undefined) await auth.close();
      await database.drop();
      await dropBucket(s3, bucket);
      s3.destroy();
    },
  };
}

/** Deletes a test's bucket and whatever the tests left in it (a bucket never created is fine). */
export async function dropBucket(s3: S3Client, bucket: string): Promise<void> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket })).catch(() => undefined);
  const keys = (listed?.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
  if (keys.length > 0) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
  await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
}

/** POSTs `bytes` with the presigned form, optionally changing fields, like a browser would (multipart/form-data). */
export async function postUpload(
  upload: Pick<CreateUploadResponse, "url" | "fields">,
  bytes: Uint8Array,
  overrides: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const form = new FormData();
  for (const [name, value] of Object.entries({ ...upload.fields, ...overrides })) form.append(name, value);
  // The file part goes last: S3 ignores fields after it.
  form.append("file", new Blob([bytes as Uint8Array<ArrayBuffer>], { type: overrides["Content-Type"] ?? upload.fields["Content-Type"] ?? "application/octet-stream" }), "upload.bin");
  const response = await fetch(upload.url, { method: "POST", body: form });
  return { status: response.status, body: await response.text() };
}

/**
 * Uploads a small PNG as the caller (`call` carries their token) and, unless
 * `confirm` is false, confirms it; resolves to the media id (a pending one
 * when unconfirmed). What other services' tests use to get media to refer to.
 */
export async function uploadSample(
  client: Client<typeof MediaService>,
  call: { headers: Record<string, string> },
  options: { purpose: MediaPurpose; confirm?: boolean },
): Promise<string> {
  const png = samples.png();
  const upload = await client.createUpload({ contentType: "image/png", sizeBytes: BigInt(png.length), purpose: options.purpose }, call);
  const posted = await postUpload(upload, png);
  if (posted.status !== 204 && posted.status !== 201 && posted.status !== 200) throw new Error(`upload POST answered ${posted.status}: ${posted.body}`);
  if (options.confirm === false) return upload.mediaId;
  const confirmed = await client.confirmUpload({ mediaId: upload.mediaId }, call);
  return confirmed.media?.mediaId ?? upload.mediaId;
}

/** Small files with real magic numbers (and filler to a given size). */
export const samples = {
  png(size = 256): Uint8Array {
    const bytes = new Uint8Array(size).fill(7);
    bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    return bytes;
  },
  jpeg(size = 256): Uint8Array {
    const bytes = new Uint8Array(size).fill(7);
    bytes.set([0xff, 0xd8, 0xff, 0xe0]);
    return bytes;
  },
  mp4(size = 512): Uint8Array {
    const bytes = new Uint8Array(size).fill(0);
    bytes.set([0x00, 0x00, 0x00, 0x18, ...Buffer.from("ftypisom")]);
    return bytes;
  },
};
