// The Redis adapter of the user-stream port. Every step that touches more
// than one key is one Lua script, so a publish (offset, history, dedup,
// live message) and every presence transition are atomic. Keys carry the user
// id as a hash tag (`rt:{<user>}:…`); presence's sweep set is one global key,
// so this adapter expects a single Redis node (or primary), not a cluster.
//
// Per user:
//   e   epoch            n   newest offset       h   history (stream, ids `<offset>-1`)
//   d   item ids → offset (dedup window = history window)
//   q   sequence marks (hash sequence key → highest seq published; ItemSequence)
//   c   live connections (zset "<session> <connection>" → expiry ms)
//   a   away hints (hash session → "1")   s   last seen ms   p   last announced presence
// Channels: `rt:{<user>}:live` (items), `rt:{<user>}:presence` (presence changes).
import { Redis } from "ioredis";
import type { LogSink } from "../bus/log-sink.ts";
import { consoleSink } from "../bus/log-sink.ts";
import { redisChannels } from "../cache/redis-channels.ts";
import { closeConnection, connectionOptions, packIds, reportOutages } from "../cache/redis-connection.ts";
import { decodeLiveItem, decodePresence, encodeLiveItem } from "./wire.ts";
import {
  checkItem,
  checkItemId,
  defaultHistory,
  newEpoch,
  type Connection,
  type HistoryOptions,
  type PresenceState,
  type PresenceStatus,
  type PublishResult,
  type StoredItem,
  type UserItem,
  type UserStreamHub,
} from "./user-streams.ts";

export interface RedisUserStreamsOptions {
  url: string;
  history?: HistoryOptions;
  /** Key prefix (default "rt:"); tests use their own. */
  prefix?: string;
  logger?: LogSink;
}

/**
 * Redis is this port's store, not an optional cache: a loaded machine (a
 * starved event loop fires connect timers spuriously) gets more time and a
 * few reconnects before a call fails; the cache's budget is 2 s and one.
 */
const BUDGET = { connectTimeoutMs: 10_000, commandTimeoutMs: 10_000, maxRetriesPerRequest: 3 } as const;

/** Presence keys outlive connections so last-seen survives a while (30 days). */
const PRESENCE_TTL_MS = 30 * 86_400_000;

// Starts a new epoch when the user has none, or when its counter is gone
// (evicted or expired on its own): a history whose sequence is lost cannot
// continue it.
const ENSURE_EPOCH = `
local function ensure_epoch(e, n, h, d, fresh, ttl)
  local epoch = redis.call('GET', e)
  if epoch and redis.call('EXISTS', n) == 1 then return epoch end
  redis.call('DEL', h, d)
  redis.call('SET', e, fresh, 'PX', ttl)
  redis.call('SET', n, 0, 'PX', ttl)
  return fresh
end
`;

// KEYS e n h d q; ARGV fresh-epoch, max-items, ttl-ms, channel, then five
// per item: id, payload, sequence key ('' for none), seq, only-next ('1').
// The items of one user, in order: one call for all the events a consumer
// batch has for them. An error stops the loop, so what was published is
// always a prefix of the items (a user's items never overtake each other).
// Replies epoch, then (offset, state) per item: state 0 published, 1
// duplicate, 2 deferred (an only-next item whose mark was not seq - 1:
// nothing stored, the mark unmoved; user-streams.ts ItemSequence). The marks
// (q) are not part of the epoch: they say which seq was delivered, which
// stays true when the history is lost, and they expire with it.
const PUBLISH = `${ENSURE_EPOCH}
local epoch = ensure_epoch(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[3])
local max = tonumber(ARGV[2])
local out = {epoch}
local newest = 0
local marked = false
for i = 5, #ARGV, 5 do
  local key, seq = ARGV[i + 2], tonumber(ARGV[i + 3])
  local mark = nil
  if key ~= '' then mark = tonumber(redis.call('HGET', KEYS[5], key) or '0') end
  local seen = redis.call('ZSCORE', KEYS[4], ARGV[i])
  local state = 0
  if seen then
    out[#out + 1] = tonumber(seen)
    state = 1
  elseif ARGV[i + 4] == '1' and (mark == nil or mark == 0 or mark ~= seq - 1) then
    out[#out + 1] = 0
    state = 2
  else
    newest = redis.call('INCR', KEYS[2])
    redis.call('XADD', KEYS[3], 'MAXLEN', max, newest .. '-1', 'i', ARGV[i], 'p', ARGV[i + 1])
    redis.call('ZADD', KEYS[4], newest, ARGV[i])
    redis.call('PUBLISH', ARGV[4], epoch .. '\\n' .. newest .. '\\n' .. ARGV[i] .. '\\n' .. ARGV[i + 1])
    out[#out + 1] = newest
  end
  out[#out + 1] = state
  if state ~= 2 and mark ~= nil and seq > mark then
    redis.call('HSET', KEYS[5], key, seq)
    marked = true
  end
end
if newest > 0 then
  local floor = newest - max
  if floor > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', floor) end
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
end
if marked or newest > 0 then redis.call('PEXPIRE', KEYS[5], ARGV[3]) end
return out
`;

// KEYS e n h d; ARGV fresh-epoch, ttl-ms
const POSITION = `${ENSURE_EPOCH}
local epoch = ensure_epoch(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2])
return {epoch, tonumber(redis.call('GET', KEYS[2]))}
`;

// KEYS e n h d; ARGV fresh-epoch, ttl-ms, since-epoch, since-offset.
// Replays only when every item after since is still there: same epoch, an
// offset that was issued, and history entries since+1..n all present.
const REPLAY = `${ENSURE_EPOCH}
local epoch = ensure_epoch(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2])
local n = tonumber(redis.call('GET', KEYS[2]))
if epoch ~= ARGV[3] then return {epoch, n, 0} end
local since = tonumber(ARGV[4])
if since > n then return {epoch, n, 0} end
if since == n then return {epoch, n, 1, {}} end
local items = redis.call('XRANGE', KEYS[3], (since + 1) .. '-1', '+')
if #items ~= n - since or items[1][1] ~= (since + 1) .. '-1' then return {epoch, n, 0} end
return {epoch, n, 1, items}
`;

// KEYS e h; ARGV epoch, from, to
const RANGE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
local from, to = tonumber(ARGV[2]), tonumber(ARGV[3])
local items = redis.call('XRANGE', KEYS[2], from .. '-1', to .. '-1')
if #items ~= to - from + 1 then return false end
return items
`;

// ARGV now, only-live, message, key head, connections tail, channel tail,
// the users' ids joined by commas; a user's connections key is head .. id ..
// connections tail, its live channel head .. id .. channel tail
// (userStreamKeys). Returns how many users it published to. One call serves
// many users (SIGNAL_USERS_PER_CALL) and the script builds their key names:
// a call per user cost the feed's fan-out about 10 µs of CPU per follower in
// command encoding and reply parsing, more than writing the timelines, and
// two arguments per user still 1.5–6 µs (docs/decisions.md, "The write path").
// Undeclared keys spanning users' slots are fine on a single Redis; a Redis
// Cluster deployment would group the users by slot and declare them (as the
// feed's timeline fan-out would).
const SIGNAL = `
local now, onlyLive, message, head, connectionsTail, channelTail = ARGV[1], ARGV[2] == '1', ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local sent = 0
for id in string.gmatch(ARGV[7], '[^,]+') do
  if not onlyLive or redis.call('ZCOUNT', head .. id .. connectionsTail, '(' .. now, '+inf') > 0 then
    redis.call('PUBLISH', head .. id .. channelTail, message)
    sent = sent + 1
  end
end
return sent
`;

/** Users per SIGNAL call: bounds how long one call blocks Redis (well under a millisecond) and its argument list. */
const SIGNAL_USERS_PER_CALL = 500;

// Presence: the state from unexpired connections and hints, announced on the
// user's presence channel when it differs from the last one announced.
const PRESENCE_STATE = `
local function presence_state(c, a, now)
  redis.call('ZREMRANGEBYSCORE', c, '-inf', now)
  local members = redis.call('ZRANGE', c, 0, -1)
  if #members == 0 then return 'offline' end
  for _, m in ipairs(members) do
    local session = string.match(m, '^(%S+) ')
    if redis.call('HGET', a, session) ~= '1' then return 'online' end
  end
  return 'away'
end
local function announce(p, s, channel, state, ttl)
  local previous = redis.call('GET', p) or 'offline'
  redis.call('SET', p, state, 'PX', ttl)
  local seen = redis.call('GET', s) or ''
  if previous ~= state then redis.call('PUBLISH', channel, state .. '\\n' .. seen) end
  return {state, seen}
end
-- A live connection's expiry pushed forward (added when missing), and the
-- user's last seen and sweep entry with it; returns 1 when it was added.
local function touch(c, s, sweep, user, member, expiry, now, ttl)
  local added = redis.call('ZADD', c, expiry, member)
  redis.call('PEXPIRE', c, ttl)
  redis.call('ZADD', sweep, 'GT', expiry, user)
  redis.call('SET', s, now, 'PX', ttl)
  return added
end
`;

// KEYS c a s p L; ARGV now, expiry, member, user, channel, ttl
const CONNECT = `${PRESENCE_STATE}
touch(KEYS[1], KEYS[3], KEYS[5], ARGV[4], ARGV[3], ARGV[2], ARGV[1], ARGV[6])
return announce(KEYS[4], KEYS[3], ARGV[5], presence_state(KEYS[1], KEYS[2], ARGV[1]), ARGV[6])
`;

// KEYS L; ARGV prefix, now, ttl, expiry, then the connections as one string,
// a "user session connection\n" line each (ids never hold spaces or line
// breaks).
// The periodic refresh of every connection an instance holds, many per call:
// it only pushes expiries forward, and works out (and announces) a user's
// state only for a connection that had been swept meanwhile. Builds key names
// from the prefix, so like the sweep set it assumes a single node. At rest
// this is most of what an instance sends Redis: one argument for a batch, not
// three per connection, spares the client an allocation and the server a
// parse per value.
const REFRESH = `${PRESENCE_STATE}
local prefix, now, ttl, expiry = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
for user, member in string.gmatch(ARGV[5], '(%S+) (%S+ %S+)\\n') do
  local base = prefix .. '{' .. user .. '}:'
  local c = base .. 'c'
  if touch(c, base .. 's', KEYS[1], user, member, expiry, now, ttl) == 1 then announce(base .. 'p', base .. 's', base .. 'presence', presence_state(c, base .. 'a', now), ttl) end
end
return 0
`;

/** Connections per REFRESH call. */
const REFRESH_BATCH = 500;

// KEYS c a s p L; ARGV now, member, user, channel, ttl
const DISCONNECT = `${PRESENCE_STATE}
redis.call('ZREM', KEYS[1], ARGV[2])
local state = presence_state(KEYS[1], KEYS[2], ARGV[1])
if state == 'offline' then redis.call('ZREM', KEYS[5], ARGV[3]) end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[5])
return announce(KEYS[4], KEYS[3], ARGV[4], state, ARGV[5])
`;

// KEYS c a s p; ARGV now, session, away (1|0), hint-ttl, channel, ttl
const HINT = `${PRESENCE_STATE}
if ARGV[3] == '1' then redis.call('HSET', KEYS[2], ARGV[2], '1') else redis.call('HDEL', KEYS[2], ARGV[2]) end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return announce(KEYS[4], KEYS[3], ARGV[5], presence_state(KEYS[1], KEYS[2], ARGV[1]), ARGV[6])
`;

// KEYS c a s; ARGV now
const READ_PRESENCE = `${PRESENCE_STATE}
return {presence_state(KEYS[1], KEYS[2], ARGV[1]), redis.call('GET', KEYS[3]) or ''}
`;

// KEYS c a; ARGV now. The distinct sessions of the unexpired connections
// whose session has no away hint (presence_state's notion of "active"),
// without presence_state's pruning: a read for producers writes nothing.
const FOREGROUND = `
local found, seen = {}, {}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')) do
  local session = string.match(m, '^(%S+) ')
  if session and not seen[session] then
    seen[session] = true
    if redis.call('HGET', KEYS[2], session) ~= '1' then found[#found + 1] = session end
  end
end
return found
`;

// KEYS c a s p L; ARGV now, user, channel, ttl. Returns nil unless the user went offline here.
const SWEEP_USER = `${PRESENCE_STATE}
if (redis.call('ZSCORE', KEYS[5], ARGV[2]) or '+inf') == '+inf' then return false end
local state = presence_state(KEYS[1], KEYS[2], ARGV[1])
if state ~= 'offline' then return false end
redis.call('ZREM', KEYS[5], ARGV[2])
if (redis.call('GET', KEYS[4]) or 'offline') == 'offline' then return false end
return announce(KEYS[4], KEYS[3], ARGV[3], state, ARGV[4])
`;

type Reply = Buffer | number | null | Reply[];

interface StreamCommands {
  rtPublishBuffer(e: string, n: string, h: string, d: string, q: string, fresh: string, max: number, ttl: number, channel: string, ...items: Array<string | Buffer>): Promise<Reply>;
  rtPositionBuffer(e: string, n: string, h: string, d: string, fresh: string, ttl: number): Promise<Reply>;
  rtReplayBuffer(e: string, n: string, h: string, d: string, fresh: string, ttl: number, sinceEpoch: string, sinceOffset: number): Promise<Reply>;
  rtRangeBuffer(e: string, h: string, epoch: string, from: number, to: number): Promise<Reply>;
  rtConnect(c: string, a: string, s: string, p: string, l: string, now: number, expiry: number, member: string, user: string, channel: string, ttl: number): Promise<[string, string]>;
  rtDisconnect(c: string, a: string, s: string, p: string, l: string, now: number, member: string, user: string, channel: string, ttl: number): Promise<[string, string]>;
  rtHint(c: string, a: string, s: string, p: string, now: number, session: string, away: string, hintTtl: number, channel: string, ttl: number): Promise<[string, string]>;
  rtSweepUser(c: string, a: string, s: string, p: string, l: string, now: number, user: string, channel: string, ttl: number): Promise<[string, string] | null>;
}

const SCRIPTS: Record<string, { numberOfKeys: number; lua: string }> = {
  rtPublish: { numberOfKeys: 5, lua: PUBLISH },
  rtPosition: { numberOfKeys: 4, lua: POSITION },
  rtReplay: { numberOfKeys: 4, lua: REPLAY },
  rtRange: { numberOfKeys: 2, lua: RANGE },
  rtSignal: { numberOfKeys: 0, lua: SIGNAL },
  rtConnect: { numberOfKeys: 5, lua: CONNECT },
  rtRefresh: { numberOfKeys: 1, lua: REFRESH },
  rtDisconnect: { numberOfKeys: 5, lua: DISCONNECT },
  rtHint: { numberOfKeys: 4, lua: HINT },
  rtReadPresence: { numberOfKeys: 3, lua: READ_PRESENCE },
  rtForeground: { numberOfKeys: 2, lua: FOREGROUND },
  rtSweepUser: { numberOfKeys: 5, lua: SWEEP_USER },
};

/**
 * The connections key and live channel of any user as head + id + tail, from
 * userStreamKeys itself (so the two cannot disagree), for SIGNAL.
 */
function signalKeyParts(prefix: string) {
  const marker = "\u0000";
  const keys = userStreamKeys(prefix, marker);
  const [head = "", connectionsTail = ""] = keys.connections.split(marker);
  return { head, connectionsTail, channelTail: keys.live.split(marker)[1] ?? "" };
}

/** The key names of one user (hash-tagged so a user's keys share a slot). */
export function userStreamKeys(prefix: string, userId: string) {
  const base = `${prefix}{${userId}}:`;
  return {
    epoch: `${base}e`,
    newest: `${base}n`,
    history: `${base}h`,
    ids: `${base}d`,
    marks: `${base}q`,
    connections: `${base}c`,
    hints: `${base}a`,
    seen: `${base}s`,
    announced: `${base}p`,
    live: `${base}live`,
    presence: `${base}presence`,
  };
}

function text(reply: Reply | undefined): string {
  return Buffer.isBuffer(reply) ? reply.toString("utf8") : reply === null || reply === undefined ? "" : String(reply);
}

/** XRANGE entries ([id, [field, value, …]]) as stored items. */
function storedItems(reply: Reply | undefined): StoredItem[] {
  if (!Array.isArray(reply)) return [];
  return reply.map((entry) => {
    const [id, fields] = entry as [Buffer, Buffer[]];
    const offset = Number(id.toString("latin1").split("-", 1)[0]);
    let itemId = "";
    let payload = new Uint8Array();
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = fields[i]!.toString("latin1");
      if (name === "i") itemId = fields[i + 1]!.toString("utf8");
      else if (name === "p") payload = new Uint8Array(fields[i + 1]!);
    }
    return { offset, id: itemId, payload };
  });
}

function status(userId: string, reply: [string, string] | readonly [string, string]): PresenceStatus {
  const seen = Number(reply[1]);
  return { userId, state: reply[0] as PresenceState, lastSeenMs: reply[1] !== "" && Number.isFinite(seen) ? seen : undefined };
}

/** A publishMany call waiting for its turn's pipeline. */
type QueuedPublish = { items: readonly UserItem[]; resolve(results: PublishResult[]): void; reject(error: Error): void };

/** One publishMany call's results, in the order of its items, from the replies of its script calls (one per user, `users` holding each user's item indexes). */
function publishResults(count: number, users: readonly number[][], replies: ReadonlyArray<[Error | null, unknown]>): PublishResult[] {
  const results: PublishResult[] = new Array(count);
  users.forEach((indexes, call) => {
    const [error, value] = replies[call] ?? [new Error("no reply from the realtime redis pipeline"), null];
    if (error) throw error;
    const reply = value as Reply[];
    const epoch = text(reply[0]);
    indexes.forEach((index, n) => {
      const state = reply[2 + 2 * n];
      results[index] = { epoch, offset: Number(reply[1 + 2 * n]), duplicate: state === 1, deferred: state === 2 };
    });
  });
  return results;
}

export function openRedisUserStreams(options: RedisUserStreamsOptions): UserStreamHub {
  const log = options.logger ?? consoleSink;
  const history = options.history ?? defaultHistory;
  const historyTtlMs = history.ttlSeconds * 1000;
  const prefix = options.prefix ?? "rt:";
  const sweepKey = `${prefix}presence:live`;
  const client = new Redis(options.url, connectionOptions(BUDGET));
  reportOutages(client, "realtime redis", log);
  for (const [name, script] of Object.entries(SCRIPTS)) client.defineCommand(name, script);
  const commands = client as unknown as StreamCommands;
  const channels = redisChannels(options.url, log, "realtime redis subscriber", BUDGET);
  const keys = (userId: string) => userStreamKeys(prefix, userId);
  const signalKeys = signalKeyParts(prefix);
  const member = (c: Connection) => `${c.sessionId} ${c.connectionId}`;
  /** publishMany calls waiting for this turn's pipeline. */
  let queued: QueuedPublish[] = [];

  /**
   * One script call per user with all of that user's items. Calls made in
   * the same turn of the event loop share one pipeline (a consumer's batches
   * of different partitions, handled concurrently, arrive together from one
   * fetch): one write and one round trip for all of them, where each call
   * had its own. Each call still succeeds or fails on its own replies.
   */
  function publishMany(items: readonly UserItem[]): Promise<PublishResult[]> {
    if (items.length === 0) return Promise.resolve([]);
    try {
      for (const item of items) checkItem(item);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return new Promise((resolve, reject) => {
      if (queued.length === 0) setImmediate(flushQueued);
      queued.push({ items, resolve, reject });
    });
  }

  function flushQueued(): void {
    const calls = queued;
    queued = [];
    const pipeline = client.pipeline() as unknown as StreamCommands;
    // The epoch a user without one starts (ensure_epoch): one for the whole
    // pipeline, not one per user. An epoch only has to differ from that
    // user's earlier ones, which 128 random bits per flush do as well; users
    // sharing the value never meet (positions are per user). Per user it
    // was 1.4 % of the chat process at 900 direct messages/s.
    const fresh = newEpoch();
    // Per call, its users' item indexes in call order: the pipeline's replies come in the same order.
    const plans = calls.map(({ items }) => {
      const byUser = new Map<string, number[]>();
      items.forEach((item, index) => {
        const indexes = byUser.get(item.userId);
        if (indexes === undefined) byUser.set(item.userId, [index]);
        else indexes.push(index);
      });
      for (const [userId, indexes] of byUser) {
        const k = keys(userId);
        const itemArgs: Array<string | Buffer> = [];
        for (const index of indexes) {
          const { id, payload, sequence } = items[index]!;
          itemArgs.push(id, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), sequence?.key ?? "", String(sequence?.seq ?? 0), sequence?.onlyNext === true ? "1" : "0");
        }
        void pipeline.rtPublishBuffer(k.epoch, k.newest, k.history, k.ids, k.marks, fresh, history.maxItems, historyTtlMs, k.live, ...itemArgs);
      }
      return [...byUser.values()];
    });
    (pipeline as unknown as ReturnType<Redis["pipeline"]>).exec().then(
      (replies) => {
        let reply = 0;
        calls.forEach((call, n) => {
          const users = plans[n]!;
          const own = (replies ?? []).slice(reply, reply + users.length);
          reply += users.length;
          try {
            call.resolve(publishResults(call.items.length, users, own));
          } catch (error) {
            call.reject(error as Error);
          }
        });
      },
      (error: unknown) => {
        for (const call of calls) call.reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  return {
    kind: "redis",

    async publish(userId, item) {
      return (await publishMany([{ userId, ...item }]))[0]!;
    },

    publishMany,

    async signal(userIds, item, signalOptions) {
      if (userIds.length === 0) return 0;
      checkItemId(item.id);
      const now = Date.now();
      const onlyLive = signalOptions?.onlyLive === true ? "1" : "0";
      const message = encodeLiveItem({ epoch: "", offset: 0, id: item.id, payload: item.payload });
      const pipeline = client.pipeline();
      for (let i = 0; i < userIds.length; i += SIGNAL_USERS_PER_CALL) {
        const ids = packIds(userIds.slice(i, i + SIGNAL_USERS_PER_CALL));
        (pipeline as unknown as { rtSignal(...args: unknown[]): void }).rtSignal(now, onlyLive, message, signalKeys.head, signalKeys.connectionsTail, signalKeys.channelTail, ids);
      }
      const results = (await pipeline.exec()) ?? [];
      let sent = 0;
      for (const [error, value] of results) {
        if (error) throw error;
        sent += Number(value);
      }
      return sent;
    },

    async position(userId) {
      const k = keys(userId);
      const reply = (await commands.rtPositionBuffer(k.epoch, k.newest, k.history, k.ids, newEpoch(), historyTtlMs)) as Reply[];
      return { epoch: text(reply[0]), offset: Number(reply[1]) };
    },

    async replay(userId, since) {
      const k = keys(userId);
      const reply = (await commands.rtReplayBuffer(k.epoch, k.newest, k.history, k.ids, newEpoch(), historyTtlMs, since.epoch, since.offset)) as Reply[];
      const position = { epoch: text(reply[0]), offset: Number(reply[1]) };
      if (reply[2] !== 1) return { recovered: false, position };
      return { recovered: true, position, items: storedItems(reply[3]) };
    },

    async range(userId, epoch, from, to) {
      if (to < from) return [];
      const k = keys(userId);
      const reply = await commands.rtRangeBuffer(k.epoch, k.history, epoch, from, to);
      return reply === null ? null : storedItems(reply);
    },

    async listen(userId, onItem) {
      return channels.subscribe(keys(userId).live, (message) => {
        const item = decodeLiveItem(message);
        if (item === undefined) log.warn({ userId }, "undecodable live item dropped");
        else onItem(item);
      });
    },

    onResume: (listener) => channels.onReconnect(listener),

    async connect(connection, ttlMs) {
      const k = keys(connection.userId);
      const now = Date.now();
      const reply = await commands.rtConnect(k.connections, k.hints, k.seen, k.announced, sweepKey, now, now + ttlMs, member(connection), connection.userId, k.presence, PRESENCE_TTL_MS);
      return status(connection.userId, reply);
    },

    async refresh(connections, ttlMs) {
      if (connections.length === 0) return;
      const now = Date.now();
      const pipeline = client.pipeline();
      for (let i = 0; i < connections.length; i += REFRESH_BATCH) {
        let lines = "";
        for (let j = i; j < Math.min(i + REFRESH_BATCH, connections.length); j++) {
          const connection = connections[j]!;
          lines += `${connection.userId} ${member(connection)}\n`;
        }
        (pipeline as unknown as { rtRefresh(...args: unknown[]): void }).rtRefresh(sweepKey, prefix, now, PRESENCE_TTL_MS, now + ttlMs, lines);
      }
      for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
    },

    async disconnect(connection) {
      const k = keys(connection.userId);
      const reply = await commands.rtDisconnect(k.connections, k.hints, k.seen, k.announced, sweepKey, Date.now(), member(connection), connection.userId, k.presence, PRESENCE_TTL_MS);
      return status(connection.userId, reply);
    },

    async hint(userId, sessionId, away, hintTtlMs) {
      const k = keys(userId);
      const reply = await commands.rtHint(k.connections, k.hints, k.seen, k.announced, Date.now(), sessionId, away ? "1" : "0", hintTtlMs, k.presence, PRESENCE_TTL_MS);
      return status(userId, reply);
    },

    async presence(userIds) {
      if (userIds.length === 0) return [];
      const now = Date.now();
      const pipeline = client.pipeline();
      for (const userId of userIds) {
        const k = keys(userId);
        (pipeline as unknown as { rtReadPresence(...args: unknown[]): void }).rtReadPresence(k.connections, k.hints, k.seen, now);
      }
      const results = (await pipeline.exec()) ?? [];
      return results.map(([error, value], i) => {
        if (error) throw error;
        return status(userIds[i]!, value as [string, string]);
      });
    },

    async foregroundSessions(userIds) {
      const result = new Map<string, Set<string>>();
      if (userIds.length === 0) return result;
      const now = Date.now();
      // One round trip for every user; one script per user keeps each user's keys in one call.
      const pipeline = client.pipeline();
      for (const userId of userIds) {
        const k = keys(userId);
        (pipeline as unknown as { rtForeground(...args: unknown[]): void }).rtForeground(k.connections, k.hints, now);
      }
      const results = (await pipeline.exec()) ?? [];
      results.forEach(([error, value], i) => {
        if (error) throw error;
        const userId = userIds[i]!;
        const sessions = result.get(userId) ?? new Set<string>();
        for (const session of value as string[]) sessions.add(session);
        result.set(userId, sessions);
      });
      return result;
    },

    async sweep(limit) {
      const now = Date.now();
      const due = await client.zrangebyscore(sweepKey, "-inf", now, "LIMIT", 0, limit);
      const offline: PresenceStatus[] = [];
      for (const userId of due) {
        const k = keys(userId);
        const reply = await commands.rtSweepUser(k.connections, k.hints, k.seen, k.announced, sweepKey, now, userId, k.presence, PRESENCE_TTL_MS);
        if (reply !== null) offline.push(status(userId, reply));
      }
      return offline;
    },

    async watchPresence(userId, onChange) {
      return channels.subscribe(keys(userId).presence, (message) => {
        const decoded = decodePresence(message.toString("utf8"));
        if (decoded) onChange({ userId, ...decoded });
      });
    },

    async ping() {
      await client.ping();
    },

    async close() {
      await Promise.all([closeConnection(client), channels.close()]);
    },
  };
}
