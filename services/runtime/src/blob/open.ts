// Opening the blob store a service is configured for: S3 when S3_ENDPOINT is
// set (the integration tests and every deployment), local disk otherwise
// (`make dev`). The S3 connection settings are shared; each service names
// its own bucket and disk directory.
import { bool, optionalString, string, type ConfigOf, type ConfigProblem } from "../config.ts";
import type { Logger } from "../log.ts";
import type { BlobStorage } from "./storage.ts";
import { openS3Storage } from "./s3.ts";
import { openDiskStorage } from "./disk.ts";

export const s3ConfigSpec = {
  s3Endpoint: optionalString("S3_ENDPOINT"),
  s3AccessKey: optionalString("S3_ACCESS_KEY"),
  s3SecretKey: optionalString("S3_SECRET_KEY"),
  s3Region: string("S3_REGION", { default: "us-east-1" }),
  s3ForcePathStyle: bool("S3_FORCE_PATH_STYLE", { default: true }),
  s3CreateBucket: bool("S3_CREATE_BUCKET", { default: false }),
};

export type S3Config = ConfigOf<typeof s3ConfigSpec>;

/** An S3 bucket name, for a service's own bucket variable. */
export const bucketPattern = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function s3ConfigProblems(config: S3Config): ConfigProblem[] {
  if (config.s3Endpoint !== undefined && (config.s3AccessKey === undefined || config.s3SecretKey === undefined)) {
    return [{ variable: "S3_ENDPOINT", problem: "is set: S3_ACCESS_KEY and S3_SECRET_KEY must be set too" }];
  }
  return [];
}

export interface BlobStorageChoice {
  bucket: string;
  disk: {
    dir: string;
    /** The service's public base URL (the disk adapter serves forms and reads itself). */
    baseUrl: string;
    secret: string | undefined;
    /** The variable that sets `secret`, for the warning when it is not set. */
    secretVariable: string;
    maxUploadBytes: number;
  };
}

export async function openBlobStorage(config: S3Config, choice: BlobStorageChoice, logger: Logger): Promise<BlobStorage> {
  if (config.s3Endpoint !== undefined) {
    return openS3Storage({
      endpoint: config.s3Endpoint,
      region: config.s3Region,
      accessKeyId: config.s3AccessKey ?? "",
      secretAccessKey: config.s3SecretKey ?? "",
      bucket: choice.bucket,
      forcePathStyle: config.s3ForcePathStyle,
      createBucket: config.s3CreateBucket,
    });
  }
  const { disk } = choice;
  if (disk.secret === undefined) {
    logger.warn(`${disk.secretVariable} is not set: disk upload forms and read URLs are signed with a random key and die with the process`);
  }
  return openDiskStorage({ dir: disk.dir, baseUrl: disk.baseUrl, secret: disk.secret ?? crypto.randomUUID() + crypto.randomUUID(), maxUploadBytes: disk.maxUploadBytes });
}
