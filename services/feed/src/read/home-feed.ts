import type { HandlerContext } from "@connectrpc/connect";
import type { TimelineCursor } from "../store/timelines.ts";
import { loadSkeleton, type Skeleton, type SkeletonDeps } from "./skeleton.ts";
import { hydrate, type HydrateDeps } from "./hydrate.ts";
import { applyRules, type VisibleItem } from "./rules.ts";
import type { ViewCache } from "./view-cache.ts";

/** Skeleton rounds per page: enough to refill a page after drops, bounded so one call's cost is too. */
export const MAX_ROUNDS = 4;

export type HomeFeedDeps = SkeletonDeps & HydrateDeps & {
  /** Hydrated pages for a few seconds (FEED_VIEW_CACHE_SECONDS); absent: every read hydrates. */
  views?: ViewCache;
};

export interface HomeFeedPage {
  items: VisibleItem[];
  /** Where the next page starts; undefined when nothing is left. */
  next?: TimelineCursor;
}

/**
 * One page of the reader's home feed. The first skeleton round is always
 * read (it is cheap: Redis, plus Postgres for merged authors) and names the
 * cached view, if any; only a miss pays for hydration.
 */
export async function homeFeedPage(deps: HomeFeedDeps, ctx: HandlerContext, readerId: string, size: number, start?: TimelineCursor): Promise<HomeFeedPage> {
  const first = await loadSkeleton(deps, readerId, size + 1, start);
  const views = deps.views;
  if (views === undefined) return hydratedPage(deps, ctx, readerId, size, start, first);
  const key = views.key(readerId, size, start, first.entries);
  return views.local(key) ?? views.getOrHydrate(key, () => hydratedPage(deps, ctx, readerId, size, start, first));
}

/**
 * skeleton → hydration → rules, repeated while dropped items leave the page
 * short and the skeleton has more. Each round asks for what is still missing
 * plus one, so a full page also knows whether another one exists.
 */
async function hydratedPage(deps: HomeFeedDeps, ctx: HandlerContext, readerId: string, size: number, start: TimelineCursor | undefined, first: Skeleton): Promise<HomeFeedPage> {
  const items: VisibleItem[] = [];
  let cursor = start;
  let exhausted = false;
  for (let round = 0; round < MAX_ROUNDS && items.length <= size && !exhausted; round++) {
    const skeleton = round === 0 ? first : await loadSkeleton(deps, readerId, size + 1 - items.length, cursor);
    exhausted = skeleton.exhausted;
    const last = skeleton.entries[skeleton.entries.length - 1];
    if (!last) break;
    items.push(...applyRules(readerId, skeleton.entries, await hydrate(deps, ctx, readerId, skeleton.entries)));
    cursor = last;
  }
  if (items.length > size) {
    const page = items.slice(0, size);
    return { items: page, next: page[page.length - 1]!.entry };
  }
  // Short page: either the end, or the round budget ran out (continue after what was examined).
  return exhausted || cursor === undefined ? { items } : { items, next: cursor };
}
