// The user service's "may the caller write to these users?" answers, kept
// in this process while the reach versions of both users stay what they
// were (runtime/cache/reach-versions.ts): a direct message then costs one
// cache read, sent beside the rate limit's, instead of a call to the user
// service, which was most of a direct send's CPU after the statement.
//
// The user service bumps both users' versions after a block commits and
// before Block answers, and an account's after its purge, so the first send
// after those asks again. Only answers that allow are kept: a refused
// write asks every time, and an unblock, which gives reach back, needs no
// bump. When the cache cannot be read, every answer is asked for.
import type { Cache } from "@aviary/runtime/cache/cache";
import { readReachVersions } from "@aviary/runtime/cache/reach-versions";
import type { ChatUsers } from "./peers.ts";

export interface ReachAnswerOptions {
  /**
   * How long an answer is kept at most. Versions are what make it correct;
   * this bounds the one case they cannot see: a Block whose bump after its
   * commit failed (it answered UNAVAILABLE) while an answer asked for during
   * its transaction was kept.
   */
  keepMs: number;
  /** Answers kept at most; the oldest go first. */
  capacity: number;
  now?: () => number;
}

interface KeptAnswer {
  callerVersion: string;
  otherVersion: string;
  until: number;
}

export function keptReachAnswers(users: ChatUsers, cache: Cache, options: ReachAnswerOptions): ChatUsers {
  const now = options.now ?? Date.now;
  // Keyed by caller then user: "exists for the caller" is the caller's view.
  const kept = new Map<string, KeptAnswer>();
  const keyOf = (callerId: string, userId: string) => `${callerId} ${userId}`;

  return {
    async reachable(callerId, userIds, call) {
      const ids = [...new Set(userIds)];
      if (ids.length === 0) return new Set();
      let versions: string[];
      try {
        versions = await readReachVersions(cache, [callerId, ...ids]);
      } catch {
        return users.reachable(callerId, ids, call);
      }
      const [callerVersion = "", ...otherVersions] = versions;
      const at = now();
      const reachable = new Set<string>();
      const toAsk: { userId: string; version: string }[] = [];
      ids.forEach((userId, index) => {
        const version = otherVersions[index] ?? "";
        const key = keyOf(callerId, userId);
        const answer = kept.get(key);
        if (answer !== undefined && answer.until > at && answer.callerVersion === callerVersion && answer.otherVersion === version) {
          reachable.add(userId);
          return;
        }
        if (answer !== undefined) kept.delete(key);
        toAsk.push({ userId, version });
      });
      if (toAsk.length === 0) return reachable;

      // Kept under the versions read before asking: a bump that lands while
      // the call is out makes the next send ask again.
      const asked = await users.reachable(callerId, toAsk.map((x) => x.userId), call);
      const until = now() + options.keepMs;
      for (const { userId, version } of toAsk) {
        if (!asked.has(userId)) continue;
        reachable.add(userId);
        kept.set(keyOf(callerId, userId), { callerVersion, otherVersion: version, until });
      }
      for (const key of kept.keys()) {
        if (kept.size <= options.capacity) break;
        kept.delete(key);
      }
      return reachable;
    },
  };
}
