// Which files the service accepts, how large they may be, and what a file
// really is according to its first bytes (never the name or the header the
// client sent).

export const imageTypes = ["image/jpeg", "image/png", "image/webp", "image/gif"] as const;
export const videoTypes = ["video/mp4", "video/quicktime"] as const;
export const allowedContentTypes: readonly string[] = [...imageTypes, ...videoTypes];

export type MediaPurposeName = "avatar" | "post";

export interface SizeLimits {
  maxImageBytes: number;
  maxVideoBytes: number;
}

export function isImage(contentType: string): boolean {
  return (imageTypes as readonly string[]).includes(contentType);
}

export function isAllowedType(contentType: string): boolean {
  return allowedContentTypes.includes(contentType);
}

/** The largest accepted file of a type. */
export function maxBytesFor(contentType: string, limits: SizeLimits): number {
  return isImage(contentType) ? limits.maxImageBytes : limits.maxVideoBytes;
}

/** Why a declared upload is refused, as field violations (empty when it is fine). */
export function uploadProblems(
  request: { contentType: string; sizeBytes: number; purpose: MediaPurposeName },
  limits: SizeLimits,
): Array<{ field: string; description: string; reason: string }> {
  const problems: Array<{ field: string; description: string; reason: string }> = [];
  if (!isAllowedType(request.contentType)) {
    problems.push({ field: "content_type", description: `must be one of ${allowedContentTypes.join(", ")}`, reason: "CONTENT_TYPE" });
    return problems;
  }
  if (request.purpose === "avatar" && !isImage(request.contentType)) {
    problems.push({ field: "content_type", description: "an avatar must be an image", reason: "CONTENT_TYPE" });
  }
  const max = maxBytesFor(request.contentType, limits);
  if (request.sizeBytes < 1 || request.sizeBytes > max) {
    problems.push({ field: "size_bytes", description: `must be between 1 and ${max} bytes for ${request.contentType}`, reason: "SIZE" });
  }
  return problems;
}

/** How many leading bytes sniffType needs. */
export const SNIFF_BYTES = 16;

function ascii(bytes: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...bytes.subarray(from, to));
}

/**
 * The type a file's magic number says it is, among the allowed ones, or
 * undefined. ISO base media files (`ftyp` box at offset 4) are QuickTime when
 * the major brand is `qt  `, MP4 otherwise.
 */
export function sniffType(bytes: Uint8Array): string | undefined {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "image/jpeg";
  if (bytes.length >= 8 && bytes[0] === 0x89 && ascii(bytes, 1, 4) === "PNG" && bytes[4] === 0x0d && bytes[5] === 0x0a && bytes[6] === 0x1a && bytes[7] === 0x0a) {
    return "image/png";
  }
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === "RIFF" && ascii(bytes, 8, 12) === "WEBP") return "image/webp";
  if (bytes.length >= 6 && (ascii(bytes, 0, 6) === "GIF87a" || ascii(bytes, 0, 6) === "GIF89a")) return "image/gif";
  if (bytes.length >= 12 && ascii(bytes, 4, 8) === "ftyp") return ascii(bytes, 8, 12) === "qt  " ? "video/quicktime" : "video/mp4";
  return undefined;
}
