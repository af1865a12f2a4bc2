/**
 * Home timelines: one sorted set per user (score = the post's created_at in
 * ms, member = post id), newest first, capped. A port with two adapters that
 * share one set of rules (Redis for real deployments, memory for `make dev`
 * and unit tests). It lives in the feed service because the runtime's Cache
 * port has no sorted sets or pipelines; it may move to the runtime later.
 *
 * The rules that keep a timeline from ever being answered half-built:
 * - A timeline exists only when complete. Fan-out, back-fill and removals
 *   never create one: they touch only timelines that exist (complete, or
 *   being rebuilt). A missing timeline is rebuilt from Postgres on read.
 * - A rebuild writes into a separate key that exists from the moment the
 *   rebuild starts (before it reads Postgres), so fan-out that commits after
 *   the rebuild's read still lands in it; it then replaces the timeline
 *   atomically. Only one rebuild per user runs at a time; the marker expires
 *   so a crashed rebuilder cannot block a user for long.
 * - An empty timeline still exists (a marker member), so a user with nothing
 *   to read is not rebuilt on every call.
 */
export interface TimelineEntry {
  postId: string;
  /** The post's created_at, epoch ms. */
  score: number;
}

/** Some users' timelines and the entries each of them gets. */
export interface TimelineWrite {
  userIds: readonly string[];
  entries: readonly TimelineEntry[];
}

/** Keyset position: entries strictly older than (score, postId), ties broken by post id (descending). */
export type TimelineCursor = TimelineEntry;

export type RebuildStart = "exists" | "started" | "busy";

export interface TimelineStore {
  readonly kind: "redis" | "memory";
  /** Adds `entries` to those of `userIds`' timelines that exist (or are being rebuilt), in one round trip; trims each to the cap. */
  addToExisting(userIds: readonly string[], entries: readonly TimelineEntry[]): Promise<void>;
  /** `addToExisting` for several groups of users at once (a batch of posts by different authors), still one round trip. */
  addToExistingEach(writes: readonly TimelineWrite[]): Promise<void>;
  /** Removes `postIds` from the timelines of `userIds` (and their rebuilds); creates nothing. */
  remove(userIds: readonly string[], postIds: readonly string[]): Promise<void>;
  /** Up to `limit` entries strictly before `before`, newest first; null when the timeline does not exist. */
  page(userId: string, limit: number, before?: TimelineCursor): Promise<readonly TimelineEntry[] | null>;
  /** Every post id in the timeline (at most the cap); null when it does not exist. */
  members(userId: string): Promise<string[] | null>;
  exists(userId: string): Promise<boolean>;
  /** Deletes the user's timeline and any rebuild of it (a deleted account's). */
  drop(userId: string): Promise<void>;
  /** "exists": nothing to do; "started": the caller rebuilds; "busy": another rebuild runs. */
  beginRebuild(userId: string): Promise<RebuildStart>;
  /** Adds to the rebuild in progress; false when it is gone (expired). */
  fillRebuild(userId: string, entries: readonly TimelineEntry[]): Promise<boolean>;
  /** Trims and publishes the rebuild as the user's timeline; false when it is gone. */
  finishRebuild(userId: string): Promise<boolean>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface TimelineStoreOptions {
  /** Entries kept per timeline (FEED_TIMELINE_CAP). */
  cap: number;
  /** Prepended to every key, so test suites (or deployments) sharing a Redis keep apart. */
  prefix?: string;
  /** How long an unfinished rebuild blocks others (default 30 s). */
  rebuildTtlMs?: number;
}

/** Newest first: by score, then by post id, both descending (the order Redis' ZREVRANGEBYSCORE gives). */
export function compareNewestFirst(a: TimelineEntry, b: TimelineEntry): number {
  if (a.score !== b.score) return b.score - a.score;
  return a.postId < b.postId ? 1 : a.postId > b.postId ? -1 : 0;
}

/** Whether `entry` comes strictly after `cursor` in newest-first order. */
export function isOlderThan(entry: TimelineEntry, cursor: TimelineCursor): boolean {
  return compareNewestFirst(entry, cursor) > 0;
}

export const DEFAULT_REBUILD_TTL_MS = 30_000;
