// Hydrated pages, cached per reader for a few seconds. Hydration (one
// BatchGetPosts, which asks the user service about blocks, and one
// BatchGetProfiles) is most of a GetHomeFeed's cost; a reader who refreshes
// an unchanged feed gets the page without it.
//
// The key is the reader, the page's start and size, and the ids and scores of
// the page's first skeleton round, so anything that changes what the page
// holds changes the key: a new post, a deletion, an unfollow or a block all
// add to or remove from the timeline (or the merged posts) before the next
// read. What the key does not see stays stale for at most the TTL: counts,
// liked_by_viewer, profile edits, and a deletion among entries fetched past
// the first round. Failures of the cache never fail a read.
//
// Each process also keeps the pages it wrote or read most recently, decoded,
// for no longer than the shared copy lives (see LOCAL_ENTRIES): a reader
// refreshing an unchanged feed then costs no Redis round trip, JSON parse or
// protobuf decode for the page. A copy is kept per reader, size and start,
// with the first round it was built from, and answers only a read whose first
// round is the same, entry by entry: exactly as fresh as the shared copy, and
// found without hashing anything (the digest of the shared key was most of
// what a cached read allocated in the feed's own code). The shared key is
// computed only when the copy does not answer.
import { hash } from "node:crypto";
import { fromBinary, toBinary, create } from "@bufbuild/protobuf";
import { GetHomeFeedResponseSchema } from "@aviary/gen/aviary/feed/v1/feed_pb";
import type { Cache } from "@aviary/runtime/cache/cache";
import type { Logger } from "@aviary/runtime/log";
import { compareNewestFirst, type TimelineCursor, type TimelineEntry } from "../store/timelines.ts";
import type { VisibleItem } from "./rules.ts";

export interface CachedPage {
  items: VisibleItem[];
  next?: TimelineCursor;
}

/**
 * What names one cached page: the reader, the page's size and start, and the
 * entries of its first skeleton round. `shared` is the key in the shared
 * cache (a digest of all of it), computed on first use.
 */
export interface PageKey {
  readonly readerId: string;
  readonly size: number;
  readonly start: TimelineCursor | undefined;
  readonly firstRound: readonly TimelineEntry[];
  readonly shared: string;
}

export interface ViewCache {
  key(readerId: string, size: number, start: TimelineCursor | undefined, firstRound: readonly TimelineEntry[]): PageKey;
  /**
   * This process's own copy under `key`, if it still holds, without waiting:
   * an unchanged feed's read is answered without the async steps of `get`.
   */
  local(key: PageKey): CachedPage | undefined;
  get(key: PageKey): Promise<CachedPage | undefined>;
  set(key: PageKey, page: CachedPage): Promise<void>;
  /**
   * The page under `key`, else `hydrate()`'s, stored. Concurrent misses on
   * one key in this process share one hydration: when a page expires under
   * load, every read arriving during its re-hydration would otherwise
   * hydrate it again (and the herd made the tail of a busy feed). A waiter
   * whose leader failed (its deadline, its cancellation) hydrates itself.
   */
  getOrHydrate(key: PageKey, hydrate: () => Promise<CachedPage>): Promise<CachedPage>;
}

interface Stored {
  /** The items' timeline entries, in order. */
  entries: TimelineEntry[];
  next?: TimelineCursor;
  /** GetHomeFeedResponse{items} in the binary format, base64. */
  items: string;
  /** When it was written (clock ms): a process that reads it keeps a copy until then + the TTL. */
  at?: number;
}

/**
 * Decoded pages kept per process. A page of 20 is about 10–20 KB decoded, so
 * this bounds the copies to a few tens of MB; past it the oldest write goes.
 */
export const LOCAL_ENTRIES = 2_000;

interface LocalPage {
  page: CachedPage;
  /** The first round the page was built from: the copy answers only the same one. */
  firstRound: readonly TimelineEntry[];
  /** Clock ms after which the copy is not used (when the shared one expires). */
  until: number;
}

function sameEntries(a: readonly TimelineEntry[], b: readonly TimelineEntry[]): boolean {
  // The same array when the timeline store handed out its kept page again.
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (compareNewestFirst(a[i]!, b[i]!) !== 0) return false;
  return true;
}

/** A page's start as both keys write it ("" for the first page). */
function startText(start: TimelineCursor | undefined): string {
  return start ? `${start.score}:${start.postId}` : "";
}

/** Where a reader's copy of one page (size and start) is kept in this process. */
function slotOf(key: PageKey): string {
  return `${key.readerId}|${key.size}|${startText(key.start)}`;
}

class Key implements PageKey {
  readonly #prefix: string;
  #shared: string | undefined;
  readonly readerId: string;
  readonly size: number;
  readonly start: TimelineCursor | undefined;
  readonly firstRound: readonly TimelineEntry[];
  constructor(prefix: string, readerId: string, size: number, start: TimelineCursor | undefined, firstRound: readonly TimelineEntry[]) {
    this.#prefix = prefix;
    this.readerId = readerId;
    this.size = size;
    this.start = start;
    this.firstRound = firstRound;
  }
  get shared(): string {
    return (this.#shared ??= sharedKey(this.#prefix, this.readerId, this.size, this.start, this.firstRound));
  }
}

/** The key in the shared cache: a digest of the size, the start and the first round. */
function sharedKey(prefix: string, readerId: string, size: number, start: TimelineCursor | undefined, firstRound: readonly TimelineEntry[]): string {
  // One string, hashed in one call: the same digest as hashing the parts in
  // turn, so the keys are the ones earlier versions wrote.
  let text = `${size}|${startText(start)}|`;
  for (const entry of firstRound) text += `${entry.score}:${entry.postId},`;
  return `${prefix}feed:view:{${readerId}}:${hash("sha256", text, "base64url")}`;
}

export function createViewCache(options: { cache: Cache; ttlSeconds: number; prefix: string; logger: Logger; now?: () => number; localEntries?: number }): ViewCache {
  const { cache, ttlSeconds, prefix, logger } = options;
  const now = options.now ?? Date.now;
  const localEntries = options.localEntries ?? LOCAL_ENTRIES;
  const local = new Map<string, LocalPage>();
  const keep = (key: PageKey, page: CachedPage, until: number) => {
    const slot = slotOf(key);
    local.delete(slot);
    local.set(slot, { page, firstRound: key.firstRound, until });
    if (local.size > localEntries) local.delete(local.keys().next().value!);
  };
  const hydrating = new Map<string, Promise<CachedPage>>();
  const views: ViewCache = {
    key: (readerId, size, start, firstRound) => new Key(prefix, readerId, size, start, firstRound),
    local(key) {
      const slot = slotOf(key);
      const kept = local.get(slot);
      if (kept === undefined) return undefined;
      if (kept.until > now() && sameEntries(kept.firstRound, key.firstRound)) return kept.page;
      local.delete(slot);
      return undefined;
    },
    async get(key) {
      const own = views.local(key);
      if (own !== undefined) return own;
      try {
        const raw = await cache.get(key.shared);
        if (raw === null) return undefined;
        const stored = JSON.parse(raw) as Stored;
        const { items } = fromBinary(GetHomeFeedResponseSchema, Buffer.from(stored.items, "base64"));
        if (items.length !== stored.entries.length) return undefined;
        const page: CachedPage = {
          items: items.flatMap((item, i) => (item.post && item.author ? [{ entry: stored.entries[i]!, post: item.post, author: item.author }] : [])),
        };
        if (stored.next) page.next = stored.next;
        if (page.items.length !== items.length) return undefined;
        // Another process wrote it: keep it only until the shared copy expires.
        // (Its clock may run ahead of ours: never longer than a TTL from now either.)
        if (stored.at !== undefined) keep(key, page, Math.min(stored.at, now()) + ttlSeconds * 1000);
        return page;
      } catch (error) {
        logger.warn({ err: error }, "feed view cache read failed; hydrating");
        return undefined;
      }
    },
    async set(key, page) {
      try {
        const items = toBinary(GetHomeFeedResponseSchema, create(GetHomeFeedResponseSchema, { items: page.items.map(({ post, author }) => ({ post, author })) }));
        const at = now();
        const stored: Stored = { entries: page.items.map((item) => item.entry), ...(page.next ? { next: page.next } : {}), items: Buffer.from(items).toString("base64"), at };
        keep(key, page, at + ttlSeconds * 1000);
        await cache.set(key.shared, JSON.stringify(stored), { ttlSeconds });
      } catch (error) {
        logger.warn({ err: error }, "feed view cache write failed");
      }
    },
    async getOrHydrate(key, hydrate) {
      const cached = await views.get(key);
      if (cached !== undefined) return cached;
      const shared = key.shared;
      const running = hydrating.get(shared);
      if (running !== undefined) return running.catch(hydrate);
      const leader = hydrate().then(async (page) => {
        await views.set(key, page);
        return page;
      });
      hydrating.set(shared, leader);
      try {
        return await leader;
      } finally {
        if (hydrating.get(shared) === leader) hydrating.delete(shared);
      }
    },
  };
  return views;
}
