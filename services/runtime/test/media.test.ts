// The shared rules for media other services refer to: ready, the caller's,
// made for the use; one violation per item at its own field, a repeat judged
// once; and the BatchGetMedia calls go in slices of 100 ids.
import test from "ava";
import { create } from "@bufbuild/protobuf";
import { MediaPurpose, MediaSchema, type BatchGetMediaRequest } from "@aviary/gen/aviary/media/v1/media_pb";
import { mediaViolations, readyMedia } from "../src/media.ts";

const facts = new Map([
  ["mine", { ownerId: "me", purpose: MediaPurpose.POST }],
  ["theirs", { ownerId: "them", purpose: MediaPurpose.POST }],
  ["avatar", { ownerId: "ME", purpose: MediaPurpose.AVATAR }],
]);

test("violations: not ready, not owned, wrong purpose, each at its field; repeats once", (t) => {
  const rule = { ownerId: "me", purpose: MediaPurpose.POST, field: (i: number) => `ids[${i}]` };
  t.deepEqual(mediaViolations(["mine"], facts, rule), []);
  t.deepEqual(
    mediaViolations(["mine", "theirs", "avatar", "pending", "theirs"], facts, rule).map((v) => [v.field, v.reason]),
    [
      ["ids[1]", "MEDIA_NOT_OWNED"],
      ["ids[2]", "MEDIA_WRONG_PURPOSE"],
      ["ids[3]", "MEDIA_NOT_READY"],
    ],
  );
  // Owner ids compare case-insensitively (UUIDs from different services).
  t.deepEqual(mediaViolations(["avatar"], facts, { ...rule, purpose: MediaPurpose.AVATAR }), []);
});

test("readyMedia: one call per 100 distinct ids, answers keyed by lower-case id", async (t) => {
  const calls: string[][] = [];
  const client = {
    batchGetMedia: async (request: Pick<BatchGetMediaRequest, "mediaIds">) => {
      calls.push([...request.mediaIds]);
      return { media: Object.fromEntries(request.mediaIds.map((id) => [id.toUpperCase(), create(MediaSchema, { mediaId: id })])) };
    },
  } as unknown as Parameters<typeof readyMedia>[0];
  const ids = Array.from({ length: 150 }, (_, i) => `m${i}`);
  const found = await readyMedia(client, [...ids, "m0"], { headers: {}, signal: new AbortController().signal });
  t.deepEqual(calls.map((c) => c.length), [100, 50]);
  t.is(found.size, 150);
  t.is(found.get("m149")?.mediaId, "m149");
});
