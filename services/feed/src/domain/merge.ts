import { compareNewestFirst, type TimelineEntry } from "../store/timelines.ts";

/** The newest `limit` distinct entries of several newest-first lists (the timeline and the read-time merge). */
export function mergeNewestFirst(lists: readonly (readonly TimelineEntry[])[], limit: number): readonly TimelineEntry[] {
  // Most reads have one list with entries (a reader who follows no author
  // merged at read time): when it is already strictly newest first, it is
  // its own merge. Every source holds a post once (a Redis sorted set, the
  // projection's rows by post id), so strict order is all there is to check;
  // this skips a Map, a sort and two copies on every GetHomeFeed.
  let only: readonly TimelineEntry[] | undefined;
  let nonEmpty = 0;
  for (const list of lists) {
    if (list.length === 0) continue;
    only = list;
    nonEmpty++;
  }
  if (only === undefined) return [];
  // Not copied when it fits: the list may be one the timeline store hands out
  // again for an unchanged timeline, and the view cache finds that by identity.
  if (nonEmpty === 1 && strictlyNewestFirst(only)) return only.length <= limit ? only : only.slice(0, limit);
  const byId = new Map<string, TimelineEntry>();
  for (const list of lists) for (const entry of list) byId.set(entry.postId, entry);
  return [...byId.values()].sort(compareNewestFirst).slice(0, limit);
}

function strictlyNewestFirst(list: readonly TimelineEntry[]): boolean {
  for (let i = 1; i < list.length; i++) if (compareNewestFirst(list[i - 1]!, list[i]!) >= 0) return false;
  return true;
}
