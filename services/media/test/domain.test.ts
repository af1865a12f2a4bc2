// The plain functions: type sniffing and the upload rules.
import test from "ava";
import { sniffType, uploadProblems } from "../src/domain/media-types.ts";
import { samples } from "./harness.ts";

const bytes = (...parts: Array<number[] | string>) =>
  new Uint8Array(parts.flatMap((p) => (typeof p === "string" ? [...Buffer.from(p, "latin1")] : p)));

test("magic numbers decide the type", (t) => {
  t.is(sniffType(samples.jpeg()), "image/jpeg");
  t.is(sniffType(samples.png()), "image/png");
  t.is(sniffType(bytes("RIFF", [1, 2, 3, 4], "WEBPVP8 ")), "image/webp");
  t.is(sniffType(bytes("GIF89a", [0, 0])), "image/gif");
  t.is(sniffType(bytes("GIF87a", [0, 0])), "image/gif");
  t.is(sniffType(samples.mp4()), "video/mp4");
  t.is(sniffType(bytes([0, 0, 0, 0x14], "ftypqt  ", [0, 0, 0, 0])), "video/quicktime");
  t.is(sniffType(bytes([0, 0, 0, 0x1c], "ftypmp42", [0, 0, 0, 0])), "video/mp4");
});

test("anything else is unknown, including truncated headers", (t) => {
  t.is(sniffType(bytes("%PDF-1.7")), undefined);
  t.is(sniffType(bytes("RIFF", [1, 2, 3, 4], "WAVEfmt ")), undefined);
  t.is(sniffType(bytes([0x89], "PN")), undefined);
  t.is(sniffType(bytes([0xff, 0xd8])), undefined);
  t.is(sniffType(new Uint8Array()), undefined);
});

test("upload rules: allow-list, per-type size limits, avatars are images", (t) => {
  const limits = { maxImageBytes: 100, maxVideoBytes: 500 };
  t.deepEqual(uploadProblems({ contentType: "image/png", sizeBytes: 100, purpose: "avatar" }, limits), []);
  t.deepEqual(uploadProblems({ contentType: "video/quicktime", sizeBytes: 500, purpose: "post" }, limits), []);
  t.deepEqual(uploadProblems({ contentType: "image/png", sizeBytes: 101, purpose: "post" }, limits).map((p) => p.field), ["size_bytes"]);
  t.deepEqual(uploadProblems({ contentType: "video/mp4", sizeBytes: 501, purpose: "post" }, limits).map((p) => p.field), ["size_bytes"]);
  t.deepEqual(uploadProblems({ contentType: "image/svg+xml", sizeBytes: 1, purpose: "post" }, limits).map((p) => p.field), ["content_type"]);
  t.deepEqual(uploadProblems({ contentType: "video/mp4", sizeBytes: 1, purpose: "avatar" }, limits).map((p) => p.field), ["content_type"]);
});
