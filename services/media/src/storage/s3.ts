// The S3 adapter lives in the runtime (services/runtime/src/blob/s3.ts), shared with data exports.
export { openS3Storage, type S3StorageOptions } from "@aviary/runtime/blob/s3";
