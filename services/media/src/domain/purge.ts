import type { Database } from "@aviary/runtime/db/database";
import type { BlobStorage } from "../storage/storage.ts";
import { deleteMediaRows, mediaOfOwner } from "../store/media.ts";

/**
 * Removes a deleted account's media: each object first, then its row, so a
 * crash in between leaves a row whose redelivered purge deletes the (already
 * missing, which is fine) object again. Nothing else refers to the rows.
 */
export async function purgeOwnerMedia(database: Database, storage: BlobStorage, ownerId: string): Promise<void> {
  const items = await mediaOfOwner(database.db, ownerId);
  for (const item of items) await storage.delete(item.objectKey);
  await deleteMediaRows(database.db, items.map((item) => item.id));
}
