// The local-disk adapter, for `make dev` (never used by the integration tests,
// which run against a real S3 server).
//
// S3's presigned POST is emulated by the service itself: presignPost returns a
// form whose `policy` field is a base64url JSON document (key, content type,
// size range, expiry) and whose `signature` is an HMAC-SHA256 of it with the
// adapter's secret. The service serves that form's target on its own HTTP port
// (DISK_UPLOAD_PATH, through the server's httpRoutes) and enforces the same
// rules S3 enforces: a valid signature, not expired, the exact key, the exact
// Content-Type field, and a file size within content-length-range. Reads go to
// DISK_OBJECT_PATH with an expiring HMAC-signed query, like a presigned GET.
import { createHmac, timingSafeEqual } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import http2 from "node:http2";
import { pipeline } from "node:stream/promises";
import type { HttpHandler, HttpRequest, HttpResponse } from "../server.ts";
import { respond } from "../server.ts";
import type { BlobStorage, PresignedPost, StoredObject, UploadPolicy } from "./storage.ts";

export const DISK_UPLOAD_PATH = "/v1/media-uploads";
export const DISK_OBJECT_PATH = "/v1/media-objects";
/** Multipart framing and the other fields on top of the file itself. */
const FORM_OVERHEAD_BYTES = 64 * 1024;

export interface DiskStorageOptions {
  /** Where objects are written (one file per key, plus `<file>.meta.json`). */
  dir: string;
  /** The service's public base URL: forms and read URLs point at it. */
  baseUrl: string;
  /** HMAC key of policies and read URLs. */
  secret: string;
  /** The largest file any policy may allow; bodies beyond it are cut off unread. */
  maxUploadBytes: number;
}

export interface DiskStorage extends BlobStorage {
  readonly kind: "disk";
  /** The HTTP endpoints that stand in for the bucket, for the server's httpRoutes. */
  readonly httpRoutes: Record<string, HttpHandler>;
}

interface SignedPolicy {
  key: string;
  contentType: string;
  minBytes: number;
  maxBytes: number;
  /** Epoch milliseconds. */
  expiresAt: number;
}

const KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,511}$/;

function validKey(key: string): boolean {
  return KEY.test(key) && !key.split("/").some((part) => part === "" || part === "." || part === "..");
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function plain(res: HttpResponse, status: number, code: string, message: string): void {
  respond(res, status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" }, JSON.stringify({ code, message }));
}

export async function openDiskStorage(options: DiskStorageOptions): Promise<DiskStorage> {
  const root = path.resolve(options.dir);
  await mkdir(root, { recursive: true });
  const baseUrl = options.baseUrl.replace(/\/+$/, "");
  const sign = (text: string) => createHmac("sha256", options.secret).update(text).digest("base64url");
  const fileOf = (key: string): string => {
    if (!validKey(key)) throw new Error(`invalid object key: ${key}`);
    return path.join(root, ...key.split("/"));
  };

  async function head(key: string): Promise<StoredObject | undefined> {
    const file = fileOf(key);
    try {
      const [info, meta] = await Promise.all([stat(file), readFile(`${file}.meta.json`, "utf8")]);
      const { contentType } = JSON.parse(meta) as { contentType?: string };
      return { sizeBytes: info.size, ...(contentType ? { contentType } : {}) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
  }

  async function put(key: string, body: Uint8Array, contentType: string): Promise<void> {
    const target = fileOf(key);
    await mkdir(path.dirname(target), { recursive: true });
    // Written aside and renamed, so a reader never sees half an object.
    const temp = `${target}.${process.pid}.${Date.now()}.part`;
    await writeFile(temp, body);
    await writeFile(`${target}.meta.json`, JSON.stringify({ contentType }));
    await rename(temp, target);
  }

  /** Checks a submitted form the way S3 checks a POST policy; returns the error or the file to store. */
  function checkForm(form: FormData): { status: number; code: string; message: string } | { policy: SignedPolicy; file: File } {
    const denied = (message: string) => ({ status: 403, code: "AccessDenied", message });
    const policyText = form.get("policy");
    const signature = form.get("signature");
    if (typeof policyText !== "string" || typeof signature !== "string") return denied("the form has no policy or signature");
    if (!sameText(sign(policyText), signature)) return denied("the policy signature does not match");
    let policy: SignedPolicy;
    try {
      policy = JSON.parse(Buffer.from(policyText, "base64url").toString("utf8")) as SignedPolicy;
    } catch {
      return denied("the policy is not valid");
    }
    if (Date.now() > policy.expiresAt) return denied("the policy has expired");
    if (form.get("key") !== policy.key) return denied("policy condition failed: key");
    if (form.get("Content-Type") !== policy.contentType) return denied("policy condition failed: Content-Type");
    const file = form.get("file");
    if (!(file instanceof File)) return { status: 400, code: "InvalidArgument", message: "the form has no file part" };
    if (file.size > policy.maxBytes) return { status: 400, code: "EntityTooLarge", message: "the file is larger than the policy allows" };
    if (file.size < policy.minBytes) return { status: 400, code: "EntityTooSmall", message: "the file is smaller than the policy allows" };
    return { policy, file };
  }

  /** Reads the request body, refusing more than `limit` bytes. */
  async function readBody(req: HttpRequest, limit: number): Promise<Buffer | undefined> {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > limit) return undefined;
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  const upload: HttpHandler = async (req, res) => {
    // Browsers post the form from the app's origin (a multipart POST is a
    // CORS simple request, no preflight); like S3/MinIO's default, any origin
    // may read the answer: the signed policy, not the origin, authorizes it.
    res.setHeader("access-control-allow-origin", "*");
    if (req.method !== "POST") return plain(res, 405, "MethodNotAllowed", "POST a multipart form");
    const contentType = String(req.headers["content-type"] ?? "");
    if (!contentType.startsWith("multipart/form-data")) return plain(res, 400, "InvalidArgument", "the body must be multipart/form-data");
    const limit = options.maxUploadBytes + FORM_OVERHEAD_BYTES;
    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > limit) return plain(res, 400, "EntityTooLarge", "the file is larger than any policy allows");
    const body = await readBody(req, limit);
    if (body === undefined) return plain(res, 400, "EntityTooLarge", "the file is larger than any policy allows");
    let form: FormData;
    try {
      form = await new Response(body, { headers: { "content-type": contentType } }).formData();
    } catch {
      return plain(res, 400, "MalformedPOSTRequest", "the body is not a valid multipart form");
    }
    const checked = checkForm(form);
    if ("status" in checked) return plain(res, checked.status, checked.code, checked.message);
    await put(checked.policy.key, new Uint8Array(await checked.file.arrayBuffer()), checked.policy.contentType);
    respond(res, 204, {});
  };

  const read: HttpHandler = async (req, res) => {
    const query = new URL(req.url ?? "/", "http://local").searchParams;
    const key = query.get("key") ?? "";
    const expires = Number(query.get("expires") ?? "0");
    const signature = query.get("signature") ?? "";
    if (!validKey(key) || !sameText(sign(`read\n${key}\n${expires}`), signature) || Date.now() > expires) {
      return plain(res, 403, "AccessDenied", "the URL is invalid or has expired");
    }
    const object = await head(key);
    if (object === undefined) return plain(res, 404, "NoSuchKey", "no such object");
    const headers = { "content-type": object.contentType ?? "application/octet-stream", "content-length": String(object.sizeBytes) };
    if (res instanceof http2.Http2ServerResponse) res.writeHead(200, headers);
    else res.writeHead(200, headers);
    await pipeline(createReadStream(fileOf(key)), res as NodeJS.WritableStream);
  };

  return {
    kind: "disk",
    httpRoutes: { [DISK_UPLOAD_PATH]: upload, [DISK_OBJECT_PATH]: read },
    async presignPost(policy: UploadPolicy): Promise<PresignedPost> {
      if (!validKey(policy.key)) throw new Error(`invalid object key: ${policy.key}`);
      const document: SignedPolicy = { ...policy, expiresAt: policy.expiresAt.getTime() };
      const encoded = Buffer.from(JSON.stringify(document)).toString("base64url");
      return {
        url: `${baseUrl}${DISK_UPLOAD_PATH}`,
        fields: { key: policy.key, "Content-Type": policy.contentType, policy: encoded, signature: sign(encoded) },
      };
    },
    head,
    async readStart(key: string, length: number): Promise<Uint8Array> {
      const handle = await open(fileOf(key), "r");
      try {
        const buffer = Buffer.alloc(length);
        const { bytesRead } = await handle.read(buffer, 0, length, 0);
        return new Uint8Array(buffer.subarray(0, bytesRead));
      } finally {
        await handle.close();
      }
    },
    put,
    async delete(key: string): Promise<void> {
      const file = fileOf(key);
      await rm(file, { force: true });
      await rm(`${file}.meta.json`, { force: true });
    },
    async readUrl(key: string, expiresAt: Date): Promise<string> {
      const expires = expiresAt.getTime();
      const query = new URLSearchParams({ key, expires: String(expires), signature: sign(`read\n${key}\n${expires}`) });
      return `${baseUrl}${DISK_OBJECT_PATH}?${query.toString()}`;
    },
    async ping(): Promise<void> {
      await stat(root);
    },
    async close(): Promise<void> {},
  };
}
