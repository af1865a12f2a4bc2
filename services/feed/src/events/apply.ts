// What each event does to the projections and the timelines.
//
// Two steps per event, in this order, for a reason:
// 1. The projection change runs once per event id (handleOnce): its row and
//    the processed-event row commit together.
// 2. The timeline change runs AFTER that commit, and runs again on every
//    redelivery, even when step 1 was skipped as already done. Timeline
//    writes are idempotent (a set add / remove), so repeating them changes
//    nothing; skipping them would lose a fan-out whenever the process died
//    between the commit and Redis. Running them after the commit is what
//    makes a concurrent rebuild safe: a rebuild opens its key before reading
//    Postgres, so a post is either in what the rebuild reads or added to the
//    rebuild's key by this step (see store/timelines.ts).
// Each timeline step re-reads the projection and acts on its current state
// (a post deleted meanwhile is not fanned out; a follow undone meanwhile is
// not back-filled), so late or repeated events cannot resurrect anything.
//
// Live hints (FeedUpdated, see live-hints.ts) follow a post's timeline writes,
// batch by batch, after the projection's write; they never fail an event.
import type { Database } from "@aviary/runtime/db/database";
import { inSpan, type EventTelemetry } from "@aviary/runtime/bus/tracing";
import { handleOnce } from "@aviary/runtime/outbox/idempotent";
import { livePostsAndFirstFollowers, recordArrivals, type ArrivingPost } from "../store/arrivals.ts";
import type { TimelineEntry, TimelineStore, TimelineWrite } from "../store/timelines.ts";
import type { FeedHints } from "./live-hints.ts";
import type { MergedAuthors } from "../read/merged-authors.ts";
import { processedEvents } from "../store/schema.ts";
import {
  deleteFollow,
  findPost,
  followersPage,
  insertFollow,
  markPostDeleted,
  postsByAuthorAmong,
  recentPosts,
  followExists,
  postIdsByAuthor,
  purgeUserProjection,
  EVERY_READER,
  type FollowEdge,
  type PostRow,
} from "../store/projection.ts";

/** The consumer name in processed_events. */
export const feedConsumer = "feed";

export interface ProjectorDeps {
  database: Database;
  timelines: TimelineStore;
  /** Followers read (and timelines written) per round trip (FEED_FANOUT_BATCH). */
  fanoutBatch: number;
  /** Authors with more followers than this are merged at read time; null: everyone is fanned out. */
  fanoutThreshold: number | null;
  /** Posts of a newly followed account copied into the follower's timeline (FEED_BACKFILL). */
  backfill: number;
  /** Live "new posts" hints; none when absent (FEED_LIVE_HINTS=false, or the api role). */
  hints?: FeedHints;
  /** The feed service's tracer: the fan-out is a span in the consuming event's trace. */
  telemetry?: EventTelemetry;
  /** This process's memo of who follows merged authors (role all): forgotten right after the commit that changes it, before the notification arrives. */
  mergedAuthors?: Pick<MergedAuthors, "forget">;
}

const once = (deps: ProjectorDeps, eventId: string, apply: Parameters<typeof handleOnce>[4]) =>
  handleOnce(deps.database, { processedEvents }, feedConsumer, eventId, apply);

/** A PostCreated event, decoded. */
export type CreatedPost = ArrivingPost;

/**
 * PostCreated for a run of events (one Kafka batch of a partition, or one
 * event): the projection changes of all of them in one transaction, then
 * their timeline writes together — each author's own timeline and the first
 * page of each fanned-out author's followers in one round trip —, then the
 * rest of any author's followers page by page. Per post it does what one
 * event on its own does, so the bus may redeliver any of them one by one.
 */
export async function applyPostsCreated(deps: ProjectorDeps, created: readonly CreatedPost[]): Promise<void> {
  const { crossed } = await recordArrivals(deps.database.db, feedConsumer, created, deps.fanoutThreshold);
  if (crossed) deps.mergedAuthors?.forget(EVERY_READER);
  // Read after the commit: a post deleted (or an account purged) meanwhile is not written anywhere.
  const { live, firstPages } = await livePostsAndFirstFollowers(
    deps.database.db,
    created.map((post) => post.postId),
    deps.fanoutBatch,
  );
  if (live.length === 0) return;
  const single = live.length === 1 ? live[0] : undefined;
  const attributes: Record<string, string | number> = single ? { "aviary.post_id": single.postId, "aviary.fanned_out": String(single.fannedOut) } : { "aviary.posts": live.length };
  // The timeline writes (and live hints) are one span in the event's (or the batch's) trace.
  await inSpan(deps.telemetry, "feed fan-out", attributes, () => fanOut(deps, live, firstPages));
}

/**
 * Writes live posts into their authors' and (when fanned out) their
 * followers' timelines, then hints; `firstPages` holds the first page of
 * followers of each author with a fanned-out post.
 */
async function fanOut(deps: ProjectorDeps, live: readonly PostRow[], firstPages: ReadonlyMap<string, string[]>): Promise<void> {
  const byAuthor = new Map<string, { entries: TimelineEntry[]; postIds: string[]; fannedOut: TimelineEntry[] }>();
  for (const row of live) {
    const author = byAuthor.get(row.authorId) ?? { entries: [], postIds: [], fannedOut: [] };
    const entry = { postId: row.postId, score: row.createdAt.getTime() };
    author.entries.push(entry);
    author.postIds.push(row.postId);
    // Not fanned out: followers merge it at read time, and get no live hint;
    // walking every follower just for hints is the cost the hybrid avoids.
    if (row.fannedOut) author.fannedOut.push(entry);
    byAuthor.set(row.authorId, author);
  }
  const fannedOutAuthors = [...byAuthor].filter(([, author]) => author.fannedOut.length > 0).map(([authorId]) => authorId);
  const writes: TimelineWrite[] = [];
  for (const [authorId, author] of byAuthor) {
    writes.push({ userIds: [authorId], entries: author.entries });
    const followers = firstPages.get(authorId) ?? [];
    if (followers.length > 0) writes.push({ userIds: followers, entries: author.fannedOut });
  }
  await deps.timelines.addToExistingEach(writes);
  // Hints go out one batch after another on a chain of their own, each after
  // its batch's write (a reader acting on a hint finds the post), while the
  // next batch is written: at 10 µs or so per follower, waiting for them
  // would more than double a large fan-out. One after another, so a realtime
  // Redis outage costs one slow call before the hints pause, not one per batch.
  let hinting = Promise.all(
    [...byAuthor].flatMap(([authorId, author]) => {
      const followers = firstPages.get(authorId) ?? [];
      return author.postIds.map((postId) => deps.hints?.postAdded(author.fannedOut.some((e) => e.postId === postId) ? [authorId, ...followers] : [authorId], postId));
    }),
  );
  // Authors with more followers than one page: the rest, page by page.
  for (const authorId of fannedOutAuthors) {
    const first = firstPages.get(authorId) ?? [];
    if (first.length < deps.fanoutBatch) continue;
    const author = byAuthor.get(authorId)!;
    await forEachFollowerBatch(
      deps,
      authorId,
      async (followers) => {
        await deps.timelines.addToExisting(followers, author.fannedOut);
        const hints = deps.hints;
        if (hints) hinting = hinting.then(() => Promise.all(author.fannedOut.map((entry) => hints.postAdded(followers, entry.postId))));
      },
      first.at(-1),
    );
  }
  await hinting;
}

export async function applyPostDeleted(deps: ProjectorDeps, eventId: string, post: { postId: string; authorId: string; deletedAt: Date }): Promise<void> {
  await once(deps, eventId, (tx) => markPostDeleted(tx, post));
  const row = await findPost(deps.database.db, post.postId);
  if (!row) return;
  await deps.timelines.remove([row.authorId], [row.postId]);
  if (!row.fannedOut) return;
  await forEachFollowerBatch(deps, row.authorId, (followers) => deps.timelines.remove(followers, [row.postId]));
}

export async function applyFollowCreated(deps: ProjectorDeps, eventId: string, edge: FollowEdge, at: Date): Promise<void> {
  await once(deps, eventId, async (tx) => void (await insertFollow(tx, edge, at)));
  deps.mergedAuthors?.forget(edge.followerId);
  if (!(await followExists(deps.database.db, edge))) return; // undone since
  const entries = await recentPosts(deps.database.db, edge.followeeId, deps.backfill, { fannedOutOnly: true });
  await deps.timelines.addToExisting([edge.followerId], entries);
}

export async function applyFollowDeleted(deps: ProjectorDeps, eventId: string, edge: FollowEdge): Promise<void> {
  await once(deps, eventId, async (tx) => void (await deleteFollow(tx, edge)));
  if (await followExists(deps.database.db, edge)) return; // followed again since
  await removeAuthorFromTimeline(deps, edge.followerId, edge.followeeId);
}

/** The user service also sends a FollowDeleted per removed edge; dropping both edges here too keeps the projection right whatever arrives first. */
export async function applyUserBlocked(deps: ProjectorDeps, eventId: string, blockerId: string, blockedId: string): Promise<void> {
  await once(deps, eventId, async (tx) => {
    await deleteFollow(tx, { followerId: blockerId, followeeId: blockedId });
    await deleteFollow(tx, { followerId: blockedId, followeeId: blockerId });
  });
  if (!(await followExists(deps.database.db, { followerId: blockerId, followeeId: blockedId }))) {
    await removeAuthorFromTimeline(deps, blockerId, blockedId);
  }
  if (!(await followExists(deps.database.db, { followerId: blockedId, followeeId: blockerId }))) {
    await removeAuthorFromTimeline(deps, blockedId, blockerId);
  }
}

/**
 * A deleted account (AccountDeleted): its posts leave its followers'
 * timelines, its own timeline goes, then the projections forget it. The
 * timelines first, while the projection still says who followed it and what
 * it posted; a crash after them is redone by the redelivery (each step is
 * idempotent), and once the projection is purged a repeat finds nothing.
 * No processed-event row: it would be the only thing left to say the event
 * was applied, and it is not needed.
 */
export async function applyAccountDeleted(deps: ProjectorDeps, userId: string): Promise<void> {
  const postIds = await postIdsByAuthor(deps.database.db, userId);
  if (postIds.length > 0) {
    await forEachFollowerBatch(deps, userId, (followers) => deps.timelines.remove(followers, postIds));
  }
  await deps.timelines.drop(userId);
  await deps.database.db.transaction((tx) => purgeUserProjection(tx, userId));
}

/** Removes `authorId`'s posts from `userId`'s timeline: the timeline's members (at most the cap) matched against the projection. */
async function removeAuthorFromTimeline(deps: ProjectorDeps, userId: string, authorId: string): Promise<void> {
  const members = await deps.timelines.members(userId);
  if (members === null || members.length === 0) return;
  const postIds = await postsByAuthorAmong(deps.database.db, authorId, members);
  await deps.timelines.remove([userId], postIds);
}

/**
 * Walks an author's followers in keyset pages of `fanoutBatch` (after
 * `after`), one timeline round trip per page. The next page is read while
 * the current one is written: Postgres and Redis work at the same time.
 */
async function forEachFollowerBatch(deps: ProjectorDeps, authorId: string, use: (followers: string[]) => Promise<void>, after?: string): Promise<void> {
  const read = (from: string | undefined) => {
    const page = followersPage(deps.database.db, authorId, deps.fanoutBatch, from);
    page.catch(() => undefined); // awaited below; a failure while `use` runs must not be an unhandled rejection
    return page;
  };
  let page = await read(after);
  while (page.length > 0) {
    const next = page.length < deps.fanoutBatch ? undefined : read(page[page.length - 1]);
    await use(page);
    if (next === undefined) return;
    page = await next;
  }
}
