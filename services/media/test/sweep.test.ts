// Orphaned uploads: pending items past their confirmation window are removed
// from S3 and from the table; ready items are left alone.
import test from "ava";
import { Code } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { MediaPurpose } from "@aviary/gen/aviary/media/v1/media_pb";
import { as, postUpload, rejection, samples, startTestMedia, type TestMedia } from "./harness.ts";

/**
 * How long an upload form and a pending item live here: long enough for the
 * uploads before the expiry on a busy machine (2 s lost that race in a CI
 * run), short enough to wait out. The wait itself is derived from the
 * forms' own expires_at, not guessed.
 */
const WINDOW_SECONDS = 10;
/** Past expires_at before S3 and the service count a form as expired (second-granular policy times). */
const EXPIRY_MARGIN_MS = 1_000;

let media: TestMedia;
test.before(async () => {
  media = await startTestMedia({ MEDIA_UPLOAD_URL_TTL: `${WINDOW_SECONDS}s`, MEDIA_PENDING_TTL: `${WINDOW_SECONDS}s`, MEDIA_SWEEP_INTERVAL: "1h" });
});
test.after.always(async () => {
  await media?.close();
});

test("the sweeper deletes expired pending uploads and their objects, not ready ones", async (t) => {
  const user = await media.newUser();
  const create = () => media.client.createUpload({ contentType: "image/png", sizeBytes: 256n, purpose: MediaPurpose.AVATAR }, as({ token: user.token }));
  const [orphan, never, kept] = await Promise.all([create(), create(), create()]);
  t.is((await postUpload(orphan, samples.png())).status, 204);
  t.is((await postUpload(kept, samples.png())).status, 204);
  await media.client.confirmUpload({ mediaId: kept.mediaId }, as({ token: user.token }));
  t.is(await media.service.sweepNow(), 0, "nothing has expired yet");

  const expired = Math.max(...[orphan, never, kept].map((upload) => timestampMs(upload.expiresAt!))) + EXPIRY_MARGIN_MS;
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, expired - Date.now())));
  const late = await rejection(media.client.confirmUpload({ mediaId: orphan.mediaId }, as({ token: user.token })));
  t.is(late.code, Code.FailedPrecondition, "an expired upload cannot be confirmed");
  // The form has expired too: S3 refuses it.
  t.is((await postUpload(never, samples.png())).status, 403);

  t.is(await media.service.sweepNow(), 2);
  t.false(await media.objectExists(orphan.fields["key"]!));
  t.true(await media.objectExists(kept.fields["key"]!));
  const rows = await media.query<{ id: string }>("select id from media.media_items order by id");
  t.deepEqual(rows.map((r) => r.id), [kept.mediaId]);
  const gone = await rejection(media.client.confirmUpload({ mediaId: orphan.mediaId }, as({ token: user.token })));
  t.is(gone.code, Code.NotFound);
  t.is(await media.service.sweepNow(), 0);
});
