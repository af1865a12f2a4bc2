// `make dev` defaults: PGlite and the disk adapter, whose upload and read
// endpoints the service serves on its own port (HTTP/1.1, next to the RPCs).
// Tokens still come from the real auth service's JWKS.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import test from "ava";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { MediaPurpose, MediaService } from "@aviary/gen/aviary/media/v1/media_pb";
import { as, password, rejection, startTestAuth, uniqueEmail, uniqueIp, type TestAuth } from "../../auth/test/harness.ts";
import { mediaConfigFromEnv, startMediaService, type RunningMediaService } from "../src/index.ts";
import { postUpload, samples } from "./harness.ts";

let auth: TestAuth;
let service: RunningMediaService;
let dir: string;
test.before(async () => {
  auth = await startTestAuth();
  dir = await mkdtemp(path.join(tmpdir(), "aviary-media-dev-"));
  const config = mediaConfigFromEnv({
    MEDIA_PORT: "0",
    MEDIA_INTERNAL_PORT: "0",
    AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
    MEDIA_DISK_DIR: dir,
    MEDIA_DISK_SECRET: "embedded-test-secret-0123456789",
    LOG_LEVEL: "silent",
  });
  service = await startMediaService(config);
});
test.after.always(async () => {
  await service?.close();
  await auth?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("disk adapter: the service's own endpoint takes the form, confirm sniffs, the read URL serves", async (t) => {
  t.is(service.storage.kind, "disk");
  const email = uniqueEmail("dev");
  const { userId } = await auth.client.register({ identity: { case: "email", value: email }, password });
  const login = await auth.client.login({ identity: { case: "email", value: email }, password }, as({ ip: uniqueIp() }));
  const token = login.tokens?.accessToken ?? "";
  // Connect over HTTP/1.1, the way curl and browsers reach the port.
  const client = createClient(MediaService, createConnectTransport({ baseUrl: service.url, httpVersion: "1.1" }));
  // The public URL is the configured one; point it at the port this test got.
  const rebase = (url: string) => url.replace("http://127.0.0.1:8083", service.url);

  const upload = await client.createUpload({ contentType: "image/gif", sizeBytes: 64n, purpose: MediaPurpose.AVATAR }, as({ token }));
  t.is(upload.fields["key"], `uploads/${userId}/${upload.mediaId}`);
  const gif = new Uint8Array(64).fill(1);
  gif.set([...Buffer.from("GIF89a")]);
  t.is((await postUpload({ ...upload, url: rebase(upload.url) }, samples.png(), { "Content-Type": "image/png" })).status, 403);
  t.is((await postUpload({ ...upload, url: rebase(upload.url) }, gif)).status, 204);
  const { media } = await client.confirmUpload({ mediaId: upload.mediaId }, as({ token }));
  t.is(media?.contentType, "image/gif");
  const read = await fetch(rebase(media!.url));
  t.is(read.status, 200);
  t.deepEqual(new Uint8Array(await read.arrayBuffer()), gif);

  const wrong = await client.createUpload({ contentType: "image/webp", sizeBytes: 64n, purpose: MediaPurpose.POST }, as({ token }));
  t.is((await postUpload({ ...wrong, url: rebase(wrong.url) }, gif)).status, 204);
  const error = await rejection(client.confirmUpload({ mediaId: wrong.mediaId }, as({ token })));
  t.is(error.code, Code.FailedPrecondition);
  t.is(await service.storage.head(wrong.fields["key"]!), undefined, "the mismatching file was deleted");
});
