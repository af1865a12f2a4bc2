// Step 1 of GetHomeFeed: which post ids, in which order.
import type { Database } from "@aviary/runtime/db/database";
import type { Logger } from "@aviary/runtime/log";
import type { TimelineCursor, TimelineEntry, TimelineStore } from "../store/timelines.ts";
import { feedFromProjection } from "../store/projection.ts";
import { readStatements } from "../store/read-statements.ts";
import { mergeNewestFirst } from "../domain/merge.ts";
import { ensureTimeline } from "./rebuild.ts";
import type { MergedAuthors } from "./merged-authors.ts";

export interface SkeletonDeps {
  database: Database;
  timelines: TimelineStore;
  cap: number;
  logger: Logger;
  /** Who follows an author merged at read time (absent: the merge query runs on every read). */
  mergedAuthors?: MergedAuthors;
}

export interface Skeleton {
  /** Newest first, at most the limit asked for (shared: the timeline store may hand the same array out again). */
  entries: readonly TimelineEntry[];
  /** Nothing exists past these entries. */
  exhausted: boolean;
}

/**
 * The reader's timeline page merged with the posts of followed authors that
 * were not fanned out (hybrid), both strictly before `before`.
 */
export async function loadSkeleton(deps: SkeletonDeps, readerId: string, limit: number, before?: TimelineCursor): Promise<Skeleton> {
  const [timeline, merged] = await Promise.all([
    timelinePage(deps, readerId, limit, before),
    mergedPosts(deps, readerId, limit, before),
  ]);
  const entries = mergeNewestFirst([timeline, merged], limit);
  return { entries, exhausted: entries.length < limit };
}

/** The merge query, skipped for a reader who follows nobody it could find posts of. */
async function mergedPosts(deps: SkeletonDeps, readerId: string, limit: number, before?: TimelineCursor): Promise<TimelineEntry[]> {
  if (deps.mergedAuthors !== undefined && !(await deps.mergedAuthors.followsAny(readerId))) return [];
  return readStatements(deps.database.db).notFannedOutFolloweePosts(readerId, limit, before);
}

async function timelinePage(deps: SkeletonDeps, readerId: string, limit: number, before?: TimelineCursor): Promise<readonly TimelineEntry[]> {
  try {
    let page = await deps.timelines.page(readerId, limit, before);
    if (page === null && (await ensureTimeline(deps, readerId))) page = await deps.timelines.page(readerId, limit, before);
    if (page !== null) return page;
  } catch (error) {
    deps.logger.warn({ err: error }, "timeline store failed; answering from the projection");
  }
  // Redis down, or a rebuild by another request still running: the same
  // feed, straight from Postgres (slower, complete).
  return feedFromProjection(deps.database.db, readerId, limit, { followees: "all", ...(before ? { before } : {}) });
}
