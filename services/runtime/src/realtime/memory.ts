// The in-memory adapter of the user-stream port, for `make dev` and unit
// tests: the same semantics as the Redis adapter (offsets, bounded history,
// epochs, dedup by id, presence with expiring connections), in one process.
// `clear()` plays "Redis was flushed" for tests.
import {
  checkItem,
  checkItemId,
  defaultHistory,
  newEpoch,
  type Connection,
  type HistoryOptions,
  type ItemSequence,
  type LiveItem,
  type PresenceState,
  type PresenceStatus,
  type PublishResult,
  type StoredItem,
  type UserItem,
  type UserStreamHub,
} from "./user-streams.ts";

interface UserHistory {
  epoch: string;
  newest: number;
  items: StoredItem[];
  ids: Map<string, number>;
  /** Sequence key → mark (ItemSequence); lost with the history, as the Redis key expires with it. */
  marks: Map<string, number>;
  expiresAt: number;
}

interface UserPresence {
  /** "<session> <connection>" → expiry ms */
  connections: Map<string, number>;
  awaySessions: Set<string>;
  lastSeenMs: number | undefined;
  announced: PresenceState;
}

function raiseMark(user: UserHistory, sequence: ItemSequence): void {
  if ((user.marks.get(sequence.key) ?? 0) < sequence.seq) user.marks.set(sequence.key, sequence.seq);
}

export class MemoryUserStreams implements UserStreamHub {
  readonly kind = "memory" as const;
  readonly #history: HistoryOptions;
  readonly #users = new Map<string, UserHistory>();
  readonly #presence = new Map<string, UserPresence>();
  /** Users whose newest connection expiry is known, for sweep. */
  readonly #live = new Map<string, number>();
  readonly #listeners = new Map<string, Set<(item: LiveItem) => void>>();
  readonly #watchers = new Map<string, Set<(status: PresenceStatus) => void>>();

  constructor(options: { history?: HistoryOptions } = {}) {
    this.#history = options.history ?? defaultHistory;
  }

  /** Forgets every history and presence (as a Redis flush would). */
  clear(): void {
    this.#users.clear();
    this.#presence.clear();
    this.#live.clear();
  }

  #user(userId: string): UserHistory {
    const now = Date.now();
    let user = this.#users.get(userId);
    if (user === undefined || user.expiresAt <= now) {
      user = { epoch: newEpoch(), newest: 0, items: [], ids: new Map(), marks: new Map(), expiresAt: now + this.#history.ttlSeconds * 1000 };
      this.#users.set(userId, user);
    }
    return user;
  }

  #emit(userId: string, item: LiveItem): void {
    // Delivered on a later tick, as a subscriber connection would.
    const listeners = this.#listeners.get(userId);
    if (listeners === undefined || listeners.size === 0) return;
    queueMicrotask(() => {
      for (const listener of [...listeners]) listener(item);
    });
  }

  async publish(userId: string, item: { id: string; payload: Uint8Array }) {
    checkItemId(item.id);
    return this.#publishNow(userId, item);
  }

  #publishNow(userId: string, item: { id: string; payload: Uint8Array; sequence?: ItemSequence }): PublishResult {
    const user = this.#user(userId);
    const sequence = item.sequence;
    const seen = user.ids.get(item.id);
    if (seen !== undefined) {
      if (sequence !== undefined) raiseMark(user, sequence);
      return { epoch: user.epoch, offset: seen, duplicate: true, deferred: false };
    }
    if (sequence?.onlyNext === true && user.marks.get(sequence.key) !== sequence.seq - 1) return { epoch: user.epoch, offset: 0, duplicate: false, deferred: true };
    if (sequence !== undefined) raiseMark(user, sequence);
    const offset = ++user.newest;
    const payload = new Uint8Array(item.payload);
    user.items.push({ offset, id: item.id, payload });
    user.ids.set(item.id, offset);
    while (user.items.length > this.#history.maxItems) {
      const dropped = user.items.shift()!;
      user.ids.delete(dropped.id);
    }
    user.expiresAt = Date.now() + this.#history.ttlSeconds * 1000;
    this.#emit(userId, { epoch: user.epoch, offset, id: item.id, payload });
    return { epoch: user.epoch, offset, duplicate: false, deferred: false };
  }

  /** All at once, as the Redis adapter's pipeline: concurrent calls are applied whole, in call order; an invalid id refuses the call before anything is published. */
  async publishMany(items: readonly UserItem[]) {
    for (const item of items) checkItem(item);
    return items.map(({ userId, ...item }) => this.#publishNow(userId, item));
  }

  async signal(userIds: readonly string[], item: { id: string; payload: Uint8Array }, options?: { onlyLive?: boolean }) {
    checkItemId(item.id);
    let sent = 0;
    for (const userId of userIds) {
      if (options?.onlyLive === true && this.#liveConnections(userId).length === 0) continue;
      this.#emit(userId, { epoch: "", offset: 0, id: item.id, payload: new Uint8Array(item.payload) });
      sent++;
    }
    return sent;
  }

  async foregroundSessions(userIds: readonly string[]) {
    const result = new Map<string, Set<string>>();
    for (const userId of userIds) {
      const away = this.#presence.get(userId)?.awaySessions ?? new Set<string>();
      const sessions = this.#liveConnections(userId).map((member) => member.split(" ", 1)[0]!);
      result.set(userId, new Set(sessions.filter((session) => !away.has(session))));
    }
    return result;
  }

  async position(userId: string) {
    const user = this.#user(userId);
    return { epoch: user.epoch, offset: user.newest };
  }

  async replay(userId: string, since: { epoch: string; offset: number }) {
    const user = this.#user(userId);
    const position = { epoch: user.epoch, offset: user.newest };
    if (since.epoch !== user.epoch || since.offset > user.newest) return { recovered: false as const, position };
    const items = user.items.filter((i) => i.offset > since.offset);
    if (items.length !== user.newest - since.offset) return { recovered: false as const, position };
    return { recovered: true as const, position, items };
  }

  async range(userId: string, epoch: string, from: number, to: number) {
    if (to < from) return [];
    const user = this.#users.get(userId);
    if (user === undefined || user.epoch !== epoch) return null;
    const items = user.items.filter((i) => i.offset >= from && i.offset <= to);
    return items.length === to - from + 1 ? items : null;
  }

  async listen(userId: string, onItem: (item: LiveItem) => void) {
    return this.#add(this.#listeners, userId, onItem);
  }

  /** In one process live delivery is never interrupted. */
  onResume(): void {}

  async watchPresence(userId: string, onChange: (status: PresenceStatus) => void) {
    return this.#add(this.#watchers, userId, onChange);
  }

  #add<T>(map: Map<string, Set<T>>, key: string, value: T): () => Promise<void> {
    let set = map.get(key);
    if (set === undefined) map.set(key, (set = new Set()));
    set.add(value);
    return async () => {
      set.delete(value);
      if (set.size === 0 && map.get(key) === set) map.delete(key);
    };
  }

  #presenceOf(userId: string): UserPresence {
    let p = this.#presence.get(userId);
    if (p === undefined) this.#presence.set(userId, (p = { connections: new Map(), awaySessions: new Set(), lastSeenMs: undefined, announced: "offline" }));
    return p;
  }

  #liveConnections(userId: string): string[] {
    const p = this.#presence.get(userId);
    if (p === undefined) return [];
    const now = Date.now();
    for (const [member, expiry] of p.connections) if (expiry <= now) p.connections.delete(member);
    return [...p.connections.keys()];
  }

  #state(userId: string): PresenceState {
    const live = this.#liveConnections(userId);
    if (live.length === 0) return "offline";
    const away = this.#presenceOf(userId).awaySessions;
    return live.some((member) => !away.has(member.split(" ", 1)[0]!)) ? "online" : "away";
  }

  #announce(userId: string, state: PresenceState): PresenceStatus {
    const p = this.#presenceOf(userId);
    const status = { userId, state, lastSeenMs: p.lastSeenMs };
    if (p.announced !== state) {
      p.announced = state;
      const watchers = this.#watchers.get(userId);
      if (watchers) queueMicrotask(() => watchers.forEach((w) => w(status)));
    }
    return status;
  }

  async connect(connection: Connection, ttlMs: number) {
    const now = Date.now();
    const p = this.#presenceOf(connection.userId);
    p.connections.set(`${connection.sessionId} ${connection.connectionId}`, now + ttlMs);
    p.lastSeenMs = now;
    this.#live.set(connection.userId, Math.max(this.#live.get(connection.userId) ?? 0, now + ttlMs));
    return this.#announce(connection.userId, this.#state(connection.userId));
  }

  async refresh(connections: readonly Connection[], ttlMs: number) {
    for (const connection of connections) await this.connect(connection, ttlMs);
  }

  async disconnect(connection: Connection) {
    const p = this.#presenceOf(connection.userId);
    p.connections.delete(`${connection.sessionId} ${connection.connectionId}`);
    p.lastSeenMs = Date.now();
    const state = this.#state(connection.userId);
    if (state === "offline") this.#live.delete(connection.userId);
    return this.#announce(connection.userId, state);
  }

  async hint(userId: string, sessionId: string, away: boolean) {
    const p = this.#presenceOf(userId);
    if (away) p.awaySessions.add(sessionId);
    else p.awaySessions.delete(sessionId);
    return this.#announce(userId, this.#state(userId));
  }

  async presence(userIds: readonly string[]) {
    return userIds.map((userId) => ({ userId, state: this.#state(userId), lastSeenMs: this.#presence.get(userId)?.lastSeenMs }));
  }

  async sweep(limit: number) {
    const now = Date.now();
    const offline: PresenceStatus[] = [];
    for (const [userId, expiry] of this.#live) {
      if (offline.length >= limit) break;
      if (expiry > now || this.#state(userId) !== "offline") continue;
      this.#live.delete(userId);
      if (this.#presenceOf(userId).announced !== "offline") offline.push(this.#announce(userId, "offline"));
    }
    return offline;
  }

  async ping() {}

  async close() {
    this.#listeners.clear();
    this.#watchers.clear();
  }
}
