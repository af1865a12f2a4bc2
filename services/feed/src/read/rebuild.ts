import { setTimeout as sleep } from "node:timers/promises";
import type { Database } from "@aviary/runtime/db/database";
import type { TimelineStore } from "../store/timelines.ts";
import { feedFromProjection } from "../store/projection.ts";

/** How long a reader waits for someone else's rebuild of its timeline before answering from Postgres. */
const WAIT_FOR_OTHER_REBUILD_MS = 2_000;
const POLL_MS = 50;

/**
 * Makes sure the user's timeline exists, rebuilding it from the projection
 * when Redis lost it (flush, eviction, restart). The rebuild holds what
 * fan-out would have written: own posts and followees' fanned-out posts,
 * newest first, up to the cap. Resolves false when another rebuild is still
 * running after a short wait; the caller then reads from Postgres directly,
 * so a lost timeline costs speed, never content.
 */
export async function ensureTimeline(deps: { database: Database; timelines: TimelineStore; cap: number }, userId: string): Promise<boolean> {
  const deadline = Date.now() + WAIT_FOR_OTHER_REBUILD_MS;
  for (;;) {
    const start = await deps.timelines.beginRebuild(userId);
    if (start === "exists") return true;
    if (start === "started") {
      const entries = await feedFromProjection(deps.database.db, userId, deps.cap, { followees: "fanned-out" });
      if ((await deps.timelines.fillRebuild(userId, entries)) && (await deps.timelines.finishRebuild(userId))) return true;
      // The rebuild marker expired under us (a very slow rebuild): start over.
    }
    if (Date.now() > deadline) return false;
    await sleep(POLL_MS);
  }
}
