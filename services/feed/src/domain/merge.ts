import { compareNewestFirst, type TimelineEntry } from "../store/timelines.ts";

/** The newest `limit` distinct entries of several newest-first lists (the timeline and the read-time merge). */
export function mergeNewestFirst(lists: readonly (readonly TimelineEntry[])[], limit: number): TimelineEntry[] {
  const byId = new Map<string, TimelineEntry>();
  for (const list of lists) for (const entry of list) byId.set(entry.postId, entry);
  return [...byId.values()].sort(compareNewestFirst).slice(0, limit);
}
