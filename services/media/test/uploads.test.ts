// The upload flow against a real S3 server (MinIO from infra.sh) and
// PostgreSQL: presigned POSTs made over HTTP like a client would, the bucket
// enforcing the policy, and ConfirmUpload checking what arrived.
import test from "ava";
import { Code, type ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { MediaPurpose } from "@aviary/gen/aviary/media/v1/media_pb";
import { as, postUpload, rejection, samples, startTestMedia, type TestMedia, type TestUser } from "./harness.ts";

const MAX_IMAGE = 64 * 1024;
let media: TestMedia;
let ada: TestUser;
let bob: TestUser;
test.before(async () => {
  // Small limits keep the oversized uploads cheap.
  media = await startTestMedia({ MEDIA_MAX_IMAGE_BYTES: String(MAX_IMAGE), MEDIA_MAX_VIDEO_BYTES: String(4 * MAX_IMAGE) });
  [ada, bob] = await Promise.all([media.newUser(), media.newUser()]);
});
test.after.always(async () => {
  await media?.close();
});

function fields(error: ConnectError): string[] {
  return error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
}

const png = (user: TestUser, size = 256) =>
  media.client.createUpload({ contentType: "image/png", sizeBytes: BigInt(size), purpose: MediaPurpose.POST }, as({ token: user.token }));

test("upload → confirm → get: the presigned POST stores the file and the read URL serves it", async (t) => {
  const bytes = samples.png(1000);
  const upload = await png(ada, bytes.length);
  t.regex(upload.mediaId, /^[0-9a-f-]{36}$/);
  t.is(upload.fields["key"], `uploads/${ada.userId}/${upload.mediaId}`);
  t.is(upload.fields["Content-Type"], "image/png");
  t.is(upload.maxSizeBytes, BigInt(MAX_IMAGE));
  t.true(upload.expiresAt!.seconds > BigInt(Math.floor(Date.now() / 1000)));
  const policy = JSON.parse(Buffer.from(upload.fields["Policy"] ?? upload.fields["policy"] ?? "", "base64").toString()) as { conditions: unknown[] };
  t.deepEqual(
    policy.conditions.filter((c) => Array.isArray(c) && c[0] === "content-length-range"),
    [["content-length-range", 1, MAX_IMAGE]],
  );

  const pendingRows = await media.query<{ status: string; declared_size_bytes: string }>(
    "select status, declared_size_bytes from media.media_items where id = $1",
    [upload.mediaId],
  );
  t.deepEqual(pendingRows, [{ status: "pending", declared_size_bytes: "1000" }]);
  const beforeUpload = await rejection(media.client.getMedia({ mediaId: upload.mediaId }, as({ token: ada.token })));
  t.is(beforeUpload.code, Code.NotFound, "pending media is not readable");

  const posted = await postUpload(upload, bytes);
  t.is(posted.status, 204, posted.body);

  const { media: confirmed } = await media.client.confirmUpload({ mediaId: upload.mediaId }, as({ token: ada.token }));
  t.is(confirmed?.contentType, "image/png");
  t.is(confirmed?.sizeBytes, 1000n);
  t.is(confirmed?.ownerId, ada.userId);
  t.is(confirmed?.purpose, MediaPurpose.POST);
  const again = await media.client.confirmUpload({ mediaId: upload.mediaId }, as({ token: ada.token }));
  t.is(again.media?.mediaId, upload.mediaId, "confirming twice is harmless");

  // Anyone signed in may read ready media.
  const { media: got } = await media.client.getMedia({ mediaId: upload.mediaId }, as({ token: bob.token }));
  t.truthy(got?.urlExpiresAt);
  const read = await fetch(got!.url);
  t.is(read.status, 200);
  t.deepEqual(new Uint8Array(await read.arrayBuffer()), bytes);

  const missing = crypto.randomUUID();
  const batch = await media.client.batchGetMedia({ mediaIds: [upload.mediaId, missing, upload.mediaId] }, as({ token: bob.token }));
  t.deepEqual(Object.keys(batch.media), [upload.mediaId]);
  t.is(batch.media[upload.mediaId]?.sizeBytes, 1000n);
});

test("a short video goes through too (ftyp sniffed as MP4)", async (t) => {
  const bytes = samples.mp4(2048);
  const upload = await media.client.createUpload({ contentType: "video/mp4", sizeBytes: 2048n, purpose: MediaPurpose.POST }, as({ token: ada.token }));
  t.is((await postUpload(upload, bytes)).status, 204);
  const { media: confirmed } = await media.client.confirmUpload({ mediaId: upload.mediaId }, as({ token: ada.token }));
  t.is(confirmed?.contentType, "video/mp4");
});

test("a file larger than the policy allows is refused by S3 and cannot be confirmed", async (t) => {
  const upload = await png(ada, 1000);
  const posted = await postUpload(upload, samples.png(MAX_IMAGE + 1));
  t.is(posted.status, 400);
  t.regex(posted.body, /EntityTooLarge/);
  t.false(await media.objectExists(upload.fields["key"]!));
  const error = await rejection(media.client.confirmUpload({ mediaId: upload.mediaId }, as({ token: ada.token })));
  t.is(error.code, Code.FailedPrecondition);
  t.regex(error.rawMessage, /not uploaded/);
});

test("a forbidden content type or size is INVALID_ARGUMENT at CreateUpload and writes nothing", async (t) => {
  const bob = await media.newUser();
  const count = async () => (await media.query<{ n: number }>("select count(*)::int as n from media.media_items where owner_id = $1", [bob.userId]))[0]?.n;
  const before = await count();
  const pdf = await rejection(media.client.createUpload({ contentType: "application/pdf", sizeBytes: 10n, purpose: MediaPurpose.POST }, as({ token: bob.token })));
  t.is(pdf.code, Code.InvalidArgument);
  t.deepEqual(fields(pdf), ["content_type"]);
  const huge = await rejection(media.client.createUpload({ contentType: "image/png", sizeBytes: BigInt(MAX_IMAGE + 1), purpose: MediaPurpose.POST }, as({ token: bob.token })));
  t.deepEqual(fields(huge), ["size_bytes"]);
  const videoAvatar = await rejection(media.client.createUpload({ contentType: "video/mp4", sizeBytes: 10n, purpose: MediaPurpose.AVATAR }, as({ token: bob.token })));
  t.deepEqual(fields(videoAvatar), ["content_type"]);
  const noPurpose = await rejection(media.client.createUpload({ contentType: "image/png", sizeBytes: 10n }, as({ token: bob.token })));
  t.deepEqual(fields(noPurpose), ["purpose"]);
  t.is(await count(), before);
});

test("a POST whose Content-Type differs from the policy is refused by S3", async (t) => {
  const upload = await png(ada);
  const posted = await postUpload(upload, samples.png(), { "Content-Type": "image/gif" });
  t.is(posted.status, 403, posted.body);
  t.false(await media.objectExists(upload.fields["key"]!));
});

test("a policy cannot write under another user's prefix", async (t) => {
  const mine = await png(ada);
  const theirs = await png(bob);
  const posted = await postUpload(mine, samples.png(), { key: theirs.fields["key"]! });
  t.is(posted.status, 403, posted.body);
  t.false(await media.objectExists(theirs.fields["key"]!));
  const sideways = await postUpload(mine, samples.png(), { key: `uploads/${bob.userId}/${mine.mediaId}` });
  t.is(sideways.status, 403, sideways.body);
});

test("confirming an upload that never happened is FAILED_PRECONDITION", async (t) => {
  const upload = await png(ada);
  const error = await rejection(media.client.confirmUpload({ mediaId: upload.mediaId }, as({ token: ada.token })));
  t.is(error.code, Code.FailedPrecondition);
  t.regex(error.rawMessage, /not uploaded/);
});

test("someone else's media is NOT_FOUND to confirm, and unknown ids too", async (t) => {
  const upload = await png(ada);
  t.is((await postUpload(upload, samples.png())).status, 204);
  const error = await rejection(media.client.confirmUpload({ mediaId: upload.mediaId }, as({ token: bob.token })));
  t.is(error.code, Code.NotFound);
  const unknown = await rejection(media.client.confirmUpload({ mediaId: crypto.randomUUID() }, as({ token: bob.token })));
  t.is(unknown.code, Code.NotFound);
  // Still confirmable by its owner.
  const { media: confirmed } = await media.client.confirmUpload({ mediaId: upload.mediaId }, as({ token: ada.token }));
  t.is(confirmed?.contentType, "image/png");
});

test("JPEG bytes declared as PNG are rejected at confirm and the object is deleted", async (t) => {
  const upload = await png(ada);
  t.is((await postUpload(upload, samples.jpeg())).status, 204);
  t.true(await media.objectExists(upload.fields["key"]!));
  const error = await rejection(media.client.confirmUpload({ mediaId: upload.mediaId }, as({ token: ada.token })));
  t.is(error.code, Code.FailedPrecondition);
  t.regex(error.rawMessage, /not image\/png \(it is image\/jpeg\)/);
  t.false(await media.objectExists(upload.fields["key"]!));
  const rows = await media.query<{ status: string }>("select status from media.media_items where id = $1", [upload.mediaId]);
  t.deepEqual(rows, [{ status: "pending" }], "the item stays pending: the right file may still be uploaded");
  // Uploading the right bytes with the same form then works.
  t.is((await postUpload(upload, samples.png())).status, 204);
  const { media: confirmed } = await media.client.confirmUpload({ mediaId: upload.mediaId }, as({ token: ada.token }));
  t.is(confirmed?.contentType, "image/png");
});

test("every RPC needs a valid access token", async (t) => {
  const error = await rejection(media.client.createUpload({ contentType: "image/png", sizeBytes: 10n, purpose: MediaPurpose.POST }));
  t.is(error.code, Code.Unauthenticated);
  const bad = await rejection(media.client.getMedia({ mediaId: crypto.randomUUID() }, as({ token: `${ada.token}x` })));
  t.is(bad.code, Code.Unauthenticated);
});

test("bad ids are INVALID_ARGUMENT with field details; batches are capped at 100", async (t) => {
  const error = await rejection(media.client.getMedia({ mediaId: "nope" }, as({ token: ada.token })));
  t.deepEqual(fields(error), ["media_id"]);
  const tooMany = await rejection(
    media.client.batchGetMedia({ mediaIds: Array.from({ length: 101 }, () => crypto.randomUUID()) }, as({ token: ada.token })),
  );
  t.deepEqual(fields(tooMany), ["media_ids"]);
});
