import { Redis, type ChainableCommander } from "ioredis";
import { closeConnection, connectionOptions, packIds } from "@aviary/runtime/cache/redis-connection";
import { DEFAULT_REBUILD_TTL_MS, type RebuildStart, type TimelineCursor, type TimelineEntry, type TimelineStore, type TimelineStoreOptions, type TimelineWrite } from "./timelines.ts";

/**
 * Marks a timeline as existing (complete), also when it holds no post. Score
 * 0 sorts below every post (scores are epoch ms), so it always has rank 0:
 * trimming starts at rank 1, reads ask for scores above 0.
 */
const MARKER = "_";

// KEYS: one key. ARGV: cap, then (score, member) pairs. Adds the pairs to
// the key if it exists, then trims it to cap posts (the marker at rank 0
// stays). A script, so "exists" and "add" are one step: a key flushed,
// evicted or expired in between is not re-created with partial content.
const ADD_IF_EXISTS = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  if #ARGV > 1 then redis.call('ZADD', KEYS[1], unpack(ARGV, 2)) end
  redis.call('ZREMRANGEBYRANK', KEYS[1], 1, -(tonumber(ARGV[1]) + 1))
end
return 0`;

// The fan-out's write: ADD_IF_EXISTS on the timeline and the rebuild of each
// of many users. ARGV: key head, key tail, rebuild tail, cap, the users' ids
// joined by commas, then (score, member) pairs; a user's timeline key is
// head .. id .. tail (keyOf below). The script builds the key names because
// the arguments were the fan-out's cost: with two declared keys per user
// (ADD_USERS_PER_CALL per call), the feed process spent 1–2.6 µs of CPU
// per follower encoding them, against 0.2–1 µs with the ids packed into one
// argument (Redis' own time, about 4 µs per follower, is the same either
// way). Undeclared keys are fine on a single Redis; a Redis Cluster
// deployment would group the users by slot and declare them.
const FAN_OUT = `
local head, tail, rebuildTail, cap = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local add = #ARGV > 5
for id in string.gmatch(ARGV[5], '[^,]+') do
  local timeline = head .. id .. tail
  for _, key in ipairs({timeline, head .. id .. rebuildTail}) do
    if redis.call('EXISTS', key) == 1 then
      if add then redis.call('ZADD', key, unpack(ARGV, 6)) end
      redis.call('ZREMRANGEBYRANK', key, 1, -(cap + 1))
    end
  end
end
return 0`;

// KEYS: timeline, rebuild. ARGV: rebuild ttl ms.
const BEGIN_REBUILD = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 2 end
redis.call('ZADD', KEYS[2], 0, '${MARKER}')
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1`;

// KEYS: rebuild, timeline. ARGV: cap. The rebuild replaces the timeline
// atomically and loses the rebuild's expiry (RENAME keeps it).
const FINISH_REBUILD = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('ZREMRANGEBYRANK', KEYS[1], 1, -(tonumber(ARGV[1]) + 1))
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PERSIST', KEYS[2])
return 1`;

type ScriptCall = (...args: Array<string | number>) => Promise<unknown>;
type PipelinedScriptCall = (...args: Array<string | number>) => ChainableCommander;

/** Entries per script call while filling a rebuild (bounded Lua argument lists). */
const FILL_CHUNK = 500;
/**
 * Users per script call in a fan-out. A call runs atomically,
 * so this bounds how long one blocks Redis (a few ms) while keeping the
 * per-call cost negligible; a fan-out page of thousands of followers is
 * several such calls in one pipeline. The keys of one call span slots, so a
 * Redis Cluster deployment would group them by slot first.
 */
const ADD_USERS_PER_CALL = 500;

export interface RedisTimelineStoreOptions extends TimelineStoreOptions {
  url: string;
  /** First pages remembered, parsed, per process (PAGE_MEMO_ENTRIES by default). */
  pageMemoEntries?: number;
}

/**
 * Timelines whose last first page is kept parsed: a reader refreshing an
 * unchanged feed gets the same entries back, compared byte by byte with the
 * reply, without a string per member and score or an entry per post. Those
 * were a sixth of what a cached GetHomeFeed allocated. A page of 21 is about
 * 3 KB kept, so this bounds the memo to a few MB; past it the oldest goes.
 */
export const PAGE_MEMO_ENTRIES = 2_000;

interface MemoPage {
  /** The reply the entries were parsed from, member, score, member, … */
  reply: readonly string[];
  entries: readonly TimelineEntry[];
}

export function openRedisTimelineStore(options: RedisTimelineStoreOptions): TimelineStore & { keyOf(userId: string): string } {
  // Same connection policy as the runtime cache: never make a request hang;
  // commands fail fast and callers fall back (reads) or retry (consumers).
  const client = new Redis(options.url, connectionOptions({ commandTimeoutMs: 5_000 }));
  client.on("error", () => undefined); // surfaced through the failing commands
  client.defineCommand("feedAddIfExists", { numberOfKeys: 1, lua: ADD_IF_EXISTS });
  client.defineCommand("feedFanOut", { numberOfKeys: 0, lua: FAN_OUT });
  client.defineCommand("feedBeginRebuild", { numberOfKeys: 2, lua: BEGIN_REBUILD });
  client.defineCommand("feedFinishRebuild", { numberOfKeys: 2, lua: FINISH_REBUILD });
  // Reads have a connection of their own: a page never waits behind a
  // fan-out's pipeline (thousands of script calls) on the writers' one, and
  // the pipeline ioredis makes per event-loop turn for a lone read does not
  // copy the four scripts onto itself (at half the peak, one pipeline per
  // read: 2.1 KB of a cached GetHomeFeed). A write is answered before the
  // read that must see it is sent, so two connections see one order.
  const reader = new Redis(options.url, connectionOptions({ commandTimeoutMs: 5_000 }));
  reader.on("error", () => undefined);
  const script = (name: string): ScriptCall => {
    const fn = (client as unknown as Record<string, ScriptCall>)[name];
    if (!fn) throw new Error(`script ${name} is not defined`);
    return fn.bind(client);
  };
  const pipelined = (pipeline: ChainableCommander, name: string): PipelinedScriptCall => {
    const fn = (pipeline as unknown as Record<string, PipelinedScriptCall>)[name];
    if (!fn) throw new Error(`script ${name} is not defined`);
    return fn.bind(pipeline);
  };

  const prefix = options.prefix ?? "";
  // The braces are a Redis Cluster hash tag: a timeline and its rebuild share a slot, as scripts touching both require.
  const keyHead = `${prefix}feed:home:{`;
  const keyTail = "}";
  const rebuildTail = "}:rebuild";
  const keyOf = (userId: string) => `${keyHead}${userId}${keyTail}`;
  const rebuildKeyOf = (userId: string) => `${keyHead}${userId}${rebuildTail}`;
  const cap = options.cap;
  const rebuildTtlMs = options.rebuildTtlMs ?? DEFAULT_REBUILD_TTL_MS;
  const flat = (entries: readonly TimelineEntry[]) => entries.flatMap((e) => [e.score, e.postId]);
  const memoEntries = options.pageMemoEntries ?? PAGE_MEMO_ENTRIES;
  const memo = new Map<string, MemoPage>();
  /** A first page's entries: the kept ones while the reply is the same, else parsed (frozen: they may be handed out again). */
  const entriesOf = (key: string, reply: readonly Buffer[]): readonly TimelineEntry[] => {
    const kept = memo.get(key);
    if (kept !== undefined && sameReply(reply, kept.reply)) return kept.entries;
    const text = reply.map((bytes) => bytes.toString());
    const entries = Object.freeze(withScores(text));
    memo.delete(key);
    memo.set(key, { reply: text, entries });
    if (memo.size > memoEntries) memo.delete(memo.keys().next().value!);
    return entries;
  };

  async function addToExistingEach(writes: readonly TimelineWrite[]): Promise<void> {
    const pipeline = client.pipeline();
    const fanOut = pipelined(pipeline, "feedFanOut");
    let calls = 0;
    for (const { userIds, entries } of writes) {
      if (userIds.length === 0 || entries.length === 0) continue;
      const args = flat(entries);
      for (let i = 0; i < userIds.length; i += ADD_USERS_PER_CALL) {
        fanOut(keyHead, keyTail, rebuildTail, cap, packIds(userIds.slice(i, i + ADD_USERS_PER_CALL)), ...args);
        calls += 1;
      }
    }
    if (calls > 0) throwFirstError(await pipeline.exec());
  }

  return {
    kind: "redis",
    keyOf,

    addToExisting(userIds, entries) {
      return addToExistingEach([{ userIds, entries }]);
    },

    addToExistingEach,

    async drop(userId) {
      await client.del(keyOf(userId), rebuildKeyOf(userId));
    },

    async remove(userIds, postIds) {
      if (userIds.length === 0 || postIds.length === 0) return;
      const pipeline = client.pipeline();
      for (const userId of userIds) {
        pipeline.zrem(keyOf(userId), ...postIds);
        pipeline.zrem(rebuildKeyOf(userId), ...postIds);
      }
      throwFirstError(await pipeline.exec());
    },

    async page(userId, limit, before) {
      const key = keyOf(userId);
      // The marker (score 0) sorts after every post and is in the range, so
      // one read answers existence too: it comes back whenever fewer than
      // `limit` posts do, and a reply with no marker is full of posts. An
      // empty reply is a missing timeline.
      if (!before) {
        const reply = await reader.zrevrangebyscoreBuffer(key, "+inf", 0, "WITHSCORES", "LIMIT", 0, limit);
        return reply.length === 0 ? null : entriesOf(key, reply);
      }
      // With a cursor, the ties at its score too, in one transaction.
      const replies = throwFirstError(await reader.multi().zrangebyscore(key, before.score, before.score).zrevrangebyscore(key, `(${before.score}`, 0, "WITHSCORES", "LIMIT", 0, limit).exec());
      const rest = replies[1] as string[];
      if (rest.length === 0) return null;
      const ties = tiesBefore(replies[0] as string[], before);
      return [...ties, ...withScores(rest)].slice(0, limit);
    },

    async members(userId) {
      const key = keyOf(userId);
      const replies = throwFirstError(await reader.multi().exists(key).zrange(key, 0, -1).exec());
      if (replies[0] !== 1) return null;
      return (replies[1] as string[]).filter((member) => member !== MARKER);
    },

    async exists(userId) {
      return (await reader.exists(keyOf(userId))) === 1;
    },

    async beginRebuild(userId): Promise<RebuildStart> {
      const reply = Number(await script("feedBeginRebuild")(keyOf(userId), rebuildKeyOf(userId), rebuildTtlMs));
      return reply === 0 ? "exists" : reply === 1 ? "started" : "busy";
    },

    async fillRebuild(userId, entries) {
      const key = rebuildKeyOf(userId);
      for (let i = 0; i < entries.length; i += FILL_CHUNK) {
        await script("feedAddIfExists")(key, cap, ...flat(entries.slice(i, i + FILL_CHUNK)));
      }
      return (await client.exists(key)) === 1;
    },

    async finishRebuild(userId) {
      return Number(await script("feedFinishRebuild")(rebuildKeyOf(userId), keyOf(userId), cap)) === 1;
    },

    async ping() {
      await Promise.all([client.ping(), reader.ping()]);
    },

    async close() {
      await Promise.all([closeConnection(client), closeConnection(reader)]);
    },
  };
}

/** The ties at the cursor's score that come after it (smaller post id), newest first. */
function tiesBefore(members: string[], before: TimelineCursor): TimelineEntry[] {
  return members
    .filter((postId) => postId !== MARKER && postId < before.postId)
    .sort()
    .reverse()
    .map((postId) => ({ postId, score: before.score }));
}

/** Whether a reply is the one kept, member by member and score by score. */
function sameReply(reply: readonly Buffer[], kept: readonly string[]): boolean {
  if (reply.length !== kept.length) return false;
  for (let i = 0; i < reply.length; i++) if (!sameText(reply[i]!, kept[i]!)) return false;
  return true;
}

/**
 * `bytes` spell `text` (ASCII only: members are post ids and the marker,
 * scores are numbers; anything else reads as different and is parsed anew).
 * Compared in place: no string is made for the reply.
 */
function sameText(bytes: Buffer, text: string): boolean {
  if (bytes.length !== text.length) return false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 127 || bytes[i] !== code) return false;
  }
  return true;
}

/** A WITHSCORES reply as entries, the marker left out. */
function withScores(reply: readonly string[]): TimelineEntry[] {
  const entries: TimelineEntry[] = [];
  for (let i = 0; i + 1 < reply.length; i += 2) if (reply[i] !== MARKER) entries.push({ postId: reply[i]!, score: Number(reply[i + 1]) });
  return entries;
}

function throwFirstError(results: Array<[Error | null, unknown]> | null): unknown[] {
  if (results === null) throw new Error("redis transaction aborted");
  for (const [error] of results) if (error) throw error;
  return results.map(([, value]) => value);
}
