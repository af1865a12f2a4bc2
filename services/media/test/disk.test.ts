// The local-disk adapter (make dev): the service's own upload endpoint must
// enforce the same policy S3 enforces. Unit tests over a plain HTTP server;
// the integration suites never use this adapter.
import http from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import test from "ava";
import { openDiskStorage, type DiskStorage } from "../src/storage/disk.ts";
import { postUpload, samples } from "./harness.ts";

let dir: string;
let server: http.Server;
let storage: DiskStorage;
const MAX = 4096;

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "aviary-media-disk-"));
  server = http.createServer((req, res) => {
    const route = storage.httpRoutes[(req.url ?? "").split("?", 1)[0] ?? ""];
    if (route === undefined) {
      res.writeHead(404).end();
      return;
    }
    Promise.resolve(route(req, res)).catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  storage = await openDiskStorage({ dir, baseUrl: `http://127.0.0.1:${port}`, secret: "disk-test-secret-0123456789", maxUploadBytes: MAX * 4 });
});
test.after.always(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
const policy = (overrides: Partial<{ key: string; contentType: string; maxBytes: number; expiresAt: Date }> = {}) => ({
  key: `uploads/00000000-0000-4000-8000-000000000001/${(n += 1)}`,
  contentType: "image/png",
  minBytes: 1,
  maxBytes: MAX,
  expiresAt: new Date(Date.now() + 60_000),
  ...overrides,
});

test("a valid form stores the file; head, readStart and the read URL see it", async (t) => {
  const p = policy();
  const form = await storage.presignPost(p);
  const bytes = samples.png(1000);
  const posted = await postUpload(form, bytes);
  t.is(posted.status, 204, posted.body);
  t.deepEqual(await storage.head(p.key), { sizeBytes: 1000, contentType: "image/png" });
  t.deepEqual(await storage.readStart(p.key, 8), bytes.subarray(0, 8));
  const url = await storage.readUrl(p.key, new Date(Date.now() + 60_000));
  const read = await fetch(url);
  t.is(read.status, 200);
  t.is(read.headers.get("content-type"), "image/png");
  t.deepEqual(new Uint8Array(await read.arrayBuffer()), bytes);
  t.is((await fetch(url.replace(/signature=[^&]+/, "signature=forged"))).status, 403);
  t.is((await fetch(await storage.readUrl(p.key, new Date(Date.now() - 1000)))).status, 403, "expired read URL");
  await storage.delete(p.key);
  t.is(await storage.head(p.key), undefined);
});

test("larger than content-length-range: 400 EntityTooLarge, nothing stored", async (t) => {
  const p = policy();
  const posted = await postUpload(await storage.presignPost(p), samples.png(MAX + 1));
  t.is(posted.status, 400);
  t.regex(posted.body, /EntityTooLarge/);
  t.is(await storage.head(p.key), undefined);
});

test("a Content-Type other than the policy's: 403", async (t) => {
  const p = policy();
  const posted = await postUpload(await storage.presignPost(p), samples.png(), { "Content-Type": "image/gif" });
  t.is(posted.status, 403);
  t.is(await storage.head(p.key), undefined);
});

test("another key (another user's prefix): 403", async (t) => {
  const p = policy();
  const other = "uploads/00000000-0000-4000-8000-000000000002/x";
  const posted = await postUpload(await storage.presignPost(p), samples.png(), { key: other });
  t.is(posted.status, 403);
  t.is(await storage.head(other), undefined);
});

test("a tampered policy or signature, or an expired one: 403", async (t) => {
  const p = policy();
  const form = await storage.presignPost(p);
  const document = JSON.parse(Buffer.from(form.fields["policy"]!, "base64url").toString()) as Record<string, unknown>;
  const widened = Buffer.from(JSON.stringify({ ...document, maxBytes: MAX * 4 })).toString("base64url");
  t.is((await postUpload(form, samples.png(MAX + 1), { policy: widened })).status, 403);
  t.is((await postUpload(form, samples.png(), { signature: "forged" })).status, 403);
  const expired = await storage.presignPost(policy({ expiresAt: new Date(Date.now() - 1000) }));
  t.is((await postUpload(expired, samples.png())).status, 403);
});

test("keys that would leave the directory are refused", async (t) => {
  await t.throwsAsync(storage.presignPost(policy({ key: "uploads/../../etc/passwd" })));
  await t.throwsAsync(storage.head("/etc/passwd"));
});
