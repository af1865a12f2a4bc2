// The object storage port, shared by the services that keep blobs (media
// uploads, data-export archives). Two adapters: S3 (any S3-compatible server,
// MinIO locally) and local disk for `make dev`, where the service itself plays
// the part of the bucket's POST and GET endpoints with the same policy rules.

/** What a presigned POST allows: exactly one key, one content type, a size range, until a time. */
export interface UploadPolicy {
  key: string;
  contentType: string;
  minBytes: number;
  maxBytes: number;
  expiresAt: Date;
}

/** A form to POST as multipart/form-data: `fields` first, then the file as the part named "file". */
export interface PresignedPost {
  url: string;
  fields: Record<string, string>;
}

export interface StoredObject {
  sizeBytes: number;
  /** The Content-Type the object was stored with, when the store keeps one. */
  contentType?: string;
}

export interface BlobStorage {
  readonly kind: "s3" | "disk";
  presignPost(policy: UploadPolicy): Promise<PresignedPost>;
  /** Metadata of the object, or undefined when there is none. */
  head(key: string): Promise<StoredObject | undefined>;
  /** Up to `length` bytes from the start of the object. */
  readStart(key: string, length: number): Promise<Uint8Array>;
  /** Writes the whole object (replacing one under the same key), for objects a service makes itself. */
  put(key: string, body: Uint8Array, contentType: string): Promise<void>;
  /** Deletes the object; a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** A URL that reads the object until `expiresAt`. */
  readUrl(key: string, expiresAt: Date): Promise<string>;
  /** Throws when the store cannot answer (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
