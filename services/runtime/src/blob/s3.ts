// The S3 adapter: presigned POST policies (the bucket enforces size, type,
// key and expiry itself), HEAD/ranged GET/DELETE for confirmation and the
// sweepers, PUT for objects the service writes itself, presigned GETs for reading.
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { createPresignedPost } from "@aws-sdk/s3-presigned-post";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import type { BlobStorage, PresignedPost, StoredObject, UploadPolicy } from "./storage.ts";

export interface S3StorageOptions {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
  /** Path-style URLs (http://host/bucket/key): what MinIO and most self-hosted servers need. */
  forcePathStyle?: boolean;
  /** Creates the bucket at start when it does not exist (development and tests). */
  createBucket?: boolean;
}

function isNotFound(error: unknown): boolean {
  if (error instanceof S3ServiceException) {
    return error.$metadata.httpStatusCode === 404 || error.name === "NotFound" || error.name === "NoSuchKey" || error.name === "NoSuchBucket";
  }
  return false;
}

export async function openS3Storage(options: S3StorageOptions): Promise<BlobStorage> {
  const client = new S3Client({
    endpoint: options.endpoint,
    region: options.region,
    forcePathStyle: options.forcePathStyle ?? true,
    credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
    // MinIO and other S3 servers do not all speak the newer default checksums.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const Bucket = options.bucket;
  if (options.createBucket) {
    try {
      await client.send(new HeadBucketCommand({ Bucket }));
    } catch (error) {
      if (!isNotFound(error)) throw error;
      try {
        await client.send(new CreateBucketCommand({ Bucket }));
      } catch (createError) {
        // Another instance created it first.
        if (!(createError instanceof S3ServiceException && createError.name === "BucketAlreadyOwnedByYou")) throw createError;
      }
    }
  }

  return {
    kind: "s3",
    async presignPost(policy: UploadPolicy): Promise<PresignedPost> {
      const expiresSeconds = Math.max(1, Math.floor((policy.expiresAt.getTime() - Date.now()) / 1000));
      const { url, fields } = await createPresignedPost(client, {
        Bucket,
        // createPresignedPost adds the exact {key} condition itself.
        Key: policy.key,
        Conditions: [
          ["content-length-range", policy.minBytes, policy.maxBytes],
          ["eq", "$Content-Type", policy.contentType],
        ],
        Fields: { "Content-Type": policy.contentType },
        Expires: expiresSeconds,
      });
      return { url, fields };
    },
    async head(key: string): Promise<StoredObject | undefined> {
      try {
        const out = await client.send(new HeadObjectCommand({ Bucket, Key: key }));
        return { sizeBytes: out.ContentLength ?? 0, ...(out.ContentType ? { contentType: out.ContentType } : {}) };
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },
    async readStart(key: string, length: number): Promise<Uint8Array> {
      const out = await client.send(new GetObjectCommand({ Bucket, Key: key, Range: `bytes=0-${length - 1}` }));
      const bytes = (await out.Body?.transformToByteArray()) ?? new Uint8Array();
      return bytes.subarray(0, length);
    },
    async put(key: string, body: Uint8Array, contentType: string): Promise<void> {
      await client.send(new PutObjectCommand({ Bucket, Key: key, Body: body, ContentType: contentType }));
    },
    async delete(key: string): Promise<void> {
      await client.send(new DeleteObjectCommand({ Bucket, Key: key }));
    },
    async readUrl(key: string, expiresAt: Date): Promise<string> {
      const expiresIn = Math.max(1, Math.floor((expiresAt.getTime() - Date.now()) / 1000));
      return getSignedUrl(client, new GetObjectCommand({ Bucket, Key: key }), { expiresIn });
    },
    async ping(): Promise<void> {
      await client.send(new HeadBucketCommand({ Bucket }));
    },
    async close(): Promise<void> {
      client.destroy();
    },
  };
}
