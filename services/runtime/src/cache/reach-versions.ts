// Reach versions: how a service that keeps answers to "may this user write
// to that one?" (chat's block check, asked of the user service) learns that
// an answer may have changed, without asking again on every call.
//
// The user service gives both users of a block, and a deleted account, a
// fresh version before the call (or the purge) is done; a reader's answer
// holds while the versions of both users are what they were when it asked,
// read in one round trip beside its other work. Only answers that allow are
// worth keeping (a refused write is rare), so only what takes reach away
// has to bump: an unblock does not.
//
// Versions are random, not counters: after the cache lost its keys, a
// counter would start again and could come back to a value a reader holds.
// And a reader never keeps an answer under a missing version: it sets one
// first (readReachVersions), so a key lost with the cache reads as a new
// value, never as the one an answer was kept under.
import { randomBytes } from "node:crypto";
import type { Cache } from "./cache.ts";

/** Long enough that most users keep one version for a day; an expired one is replaced like a lost one. */
const VERSION_TTL_SECONDS = 24 * 60 * 60;

/** The longest a reader may keep an answer (its configuration is checked against this). */
export const MAX_ANSWER_SECONDS = 60 * 60;

export const reachVersionKey = (userId: string): string => `reach:${userId.toLowerCase()}`;

const freshVersion = () => randomBytes(9).toString("base64url");

/** A fresh version for each user: answers about them kept anywhere stop holding. */
export async function bumpReachVersions(cache: Cache, userIds: readonly string[]): Promise<void> {
  await Promise.all([...new Set(userIds)].map((userId) => cache.set(reachVersionKey(userId), freshVersion(), { ttlSeconds: VERSION_TTL_SECONDS })));
}

/**
 * The users' versions, in order, in one round trip once every user has one.
 * A missing one is set (only if still missing: a racing bump wins) and read
 * back, so every version returned is a value stored in the cache.
 */
export async function readReachVersions(cache: Cache, userIds: readonly string[]): Promise<string[]> {
  const keys = userIds.map(reachVersionKey);
  const versions = await cache.getMany(keys);
  return Promise.all(versions.map((version, index) => version ?? firstVersion(cache, keys[index]!)));
}

async function firstVersion(cache: Cache, key: string): Promise<string> {
  const version = freshVersion();
  if (await cache.setIfAbsent(key, version, { ttlSeconds: VERSION_TTL_SECONDS })) return version;
  // Set meanwhile by someone else. Gone again already (it cannot expire this
  // soon, so only with the cache's data): a value stored nowhere, under
  // which a kept answer never holds again.
  return (await cache.get(key)) ?? freshVersion();
}
