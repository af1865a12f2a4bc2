import {
  compareNewestFirst,
  DEFAULT_REBUILD_TTL_MS,
  isOlderThan,
  type RebuildStart,
  type TimelineCursor,
  type TimelineEntry,
  type TimelineStore,
  type TimelineStoreOptions,
  type TimelineWrite,
} from "./timelines.ts";

/**
 * The in-process timeline store (`make dev`, unit tests), following the Redis
 * adapter's rules: only existing timelines are written, rebuilds go through a
 * separate, expiring set that replaces the timeline when done.
 */
export class MemoryTimelineStore implements TimelineStore {
  readonly kind = "memory" as const;
  readonly #cap: number;
  readonly #rebuildTtlMs: number;
  readonly #timelines = new Map<string, Map<string, number>>();
  readonly #rebuilds = new Map<string, { entries: Map<string, number>; expiresAt: number }>();

  constructor(options: TimelineStoreOptions) {
    this.#cap = options.cap;
    this.#rebuildTtlMs = options.rebuildTtlMs ?? DEFAULT_REBUILD_TTL_MS;
  }

  async addToExisting(userIds: readonly string[], entries: readonly TimelineEntry[]): Promise<void> {
    for (const userId of userIds) {
      for (const set of [this.#timelines.get(userId), this.#rebuild(userId)?.entries]) {
        if (!set) continue;
        for (const entry of entries) set.set(entry.postId, entry.score);
        this.#trim(set);
      }
    }
  }

  async addToExistingEach(writes: readonly TimelineWrite[]): Promise<void> {
    for (const write of writes) await this.addToExisting(write.userIds, write.entries);
  }

  async drop(userId: string): Promise<void> {
    this.#timelines.delete(userId);
    this.#rebuilds.delete(userId);
  }

  async remove(userIds: readonly string[], postIds: readonly string[]): Promise<void> {
    for (const userId of userIds) {
      for (const set of [this.#timelines.get(userId), this.#rebuild(userId)?.entries]) {
        for (const postId of postIds) set?.delete(postId);
      }
    }
  }

  async page(userId: string, limit: number, before?: TimelineCursor): Promise<TimelineEntry[] | null> {
    const set = this.#timelines.get(userId);
    if (!set) return null;
    return sorted(set)
      .filter((entry) => before === undefined || isOlderThan(entry, before))
      .slice(0, limit);
  }

  async members(userId: string): Promise<string[] | null> {
    const set = this.#timelines.get(userId);
    return set ? [...set.keys()] : null;
  }

  async exists(userId: string): Promise<boolean> {
    return this.#timelines.has(userId);
  }

  async beginRebuild(userId: string): Promise<RebuildStart> {
    if (this.#timelines.has(userId)) return "exists";
    if (this.#rebuild(userId)) return "busy";
    this.#rebuilds.set(userId, { entries: new Map(), expiresAt: Date.now() + this.#rebuildTtlMs });
    return "started";
  }

  async fillRebuild(userId: string, entries: readonly TimelineEntry[]): Promise<boolean> {
    const rebuild = this.#rebuild(userId);
    if (!rebuild) return false;
    for (const entry of entries) rebuild.entries.set(entry.postId, entry.score);
    return true;
  }

  async finishRebuild(userId: string): Promise<boolean> {
    const rebuild = this.#rebuild(userId);
    if (!rebuild) return false;
    this.#rebuilds.delete(userId);
    this.#trim(rebuild.entries);
    this.#timelines.set(userId, rebuild.entries);
    return true;
  }

  /** Drops every timeline, as FLUSHALL would (tests). */
  flush(): void {
    this.#timelines.clear();
    this.#rebuilds.clear();
  }

  async ping(): Promise<void> {}
  async close(): Promise<void> {}

  #rebuild(userId: string) {
    const rebuild = this.#rebuilds.get(userId);
    if (rebuild && rebuild.expiresAt <= Date.now()) {
      this.#rebuilds.delete(userId);
      return undefined;
    }
    return rebuild;
  }

  #trim(set: Map<string, number>): void {
    if (set.size <= this.#cap) return;
    for (const entry of sorted(set).slice(this.#cap)) set.delete(entry.postId);
  }
}

function sorted(set: Map<string, number>): TimelineEntry[] {
  return [...set].map(([postId, score]) => ({ postId, score })).sort(compareNewestFirst);
}
