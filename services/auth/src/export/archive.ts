// The export archive: a zip of named files made in memory (yazl), then
// stored as one object. Exports are per user and mostly JSON; a user's
// media are its bulk, and they are held once, as the archive is written.
import yazl from "yazl";

export interface ArchiveFile {
  /** Path inside the archive ("user.json", "media/<id>.png"). */
  name: string;
  data: Uint8Array;
}

export async function zipArchive(files: readonly ArchiveFile[], modifiedAt: Date): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const file of files) zip.addBuffer(Buffer.from(file.data), file.name, { mtime: modifiedAt });
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** A JSON document as an archive file (two-space indented: people open these). */
export function jsonFile(name: string, value: unknown): ArchiveFile {
  return { name, data: new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`) };
}

const extensions: Record<string, string> = {
  "image/jpeg": ".jpg",
  "image/png": ".png",
  "image/gif": ".gif",
  "image/webp": ".webp",
  "video/mp4": ".mp4",
  "video/webm": ".webm",
  "video/quicktime": ".mov",
};

/** Where a media file goes in the archive: by id, with the extension of its sniffed type. */
export function mediaFileName(mediaId: string, contentType: string): string {
  return `media/${mediaId}${extensions[contentType] ?? ".bin"}`;
}
