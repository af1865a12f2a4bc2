// Anchors in object storage (S3, or disk in `make dev`): the latest under a
// fixed key, each one also under its seq. A bucket the database's owners
// cannot write (another account, object lock) is what makes them worth it.
import type { BlobStorage } from "@aviary/runtime/blob/storage";
import { ANCHOR_MAX_BYTES, anchorDocument, anchorHistoryKey, LATEST_ANCHOR_KEY, parseAnchor, type Anchor } from "../domain/anchor.ts";

export interface AnchorStore {
  /** The newest anchor, or undefined before the first; throws when it cannot be read or parsed. */
  latest(): Promise<Anchor | undefined>;
  write(anchor: Anchor): Promise<void>;
}

const CONTENT_TYPE = "application/json";

export function blobAnchorStore(storage: BlobStorage): AnchorStore {
  return {
    async latest() {
      if ((await storage.head(LATEST_ANCHOR_KEY)) === undefined) return undefined;
      return parseAnchor(await storage.readStart(LATEST_ANCHOR_KEY, ANCHOR_MAX_BYTES));
    },
    async write(anchor) {
      const document = anchorDocument(anchor);
      // The history first: a crash between the two leaves the latest one behind, never ahead of what is kept.
      await storage.put(anchorHistoryKey(anchor.seq), document, CONTENT_TYPE);
      await storage.put(LATEST_ANCHOR_KEY, document, CONTENT_TYPE);
    },
  };
}
