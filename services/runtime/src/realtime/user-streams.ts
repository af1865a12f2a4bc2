// The port every producer publishes to a user's live stream through, and the
// realtime service reads from. Two adapters with the same semantics: Redis
// (redis.ts; scripts make each step atomic) and memory (memory.ts, for
// `make dev` and unit tests); one test suite runs against both.
//
// A user's stream has two kinds of item:
// - durable: the next offset of that user's gapless sequence, kept in a
//   bounded history under an epoch, and published live, in one atomic step;
//   idempotent by item id (a second publish with the same id returns the first
//   offset and delivers nothing), so an outbox consumer and a post-commit fast
//   path may both publish the same event; an item may also carry its place
//   in one of the user's ordered sequences (a conversation's seq), so a fast
//   path can publish only the next one and leave the rest to the path that
//   delivers in order (ItemSequence);
// - ephemeral (presence, typing, feed hints): published live only, no offset,
//   never replayed; optionally only to users who hold a live stream.
//
// The epoch changes whenever the history is lost (Redis flushed, keys expired
// or evicted): a position in an old epoch can never be mistaken for one in the
// new sequence, so a resume either replays exactly what was missed or says
// it cannot.
//
// Presence is kept here too, because producers need "does this user hold a
// live stream" (onlyLive) and "which of its sessions are in the foreground"
// (push skips those devices), and the realtime service needs the rest: every live
// stream is a connection with an expiry the holding instance keeps pushing
// forward; a user is online while any unexpired connection's device says
// active, away while all say away, offline otherwise.

/** A place in a user's sequence. */
export interface StreamPosition {
  readonly epoch: string;
  /** The newest offset issued in this epoch (0: none yet). */
  readonly offset: number;
}

/** A durable item as stored (and replayed). */
export interface StoredItem {
  readonly offset: number;
  readonly id: string;
  readonly payload: Uint8Array;
}

/**
 * An item's place in one of its user's ordered sequences (a conversation's
 * seq numbers). The port keeps, per user and sequence, a mark: the highest
 * `seq` published (or found already published) so far. Publishing raises it;
 * with `onlyNext`, the item is published only when the mark is exactly
 * `seq - 1`, and is otherwise deferred: nothing stored or sent, and the mark
 * unmoved. So a post-commit fast path that publishes with `onlyNext` can never
 * put an item ahead of an earlier one (from another instance, or one the
 * fast path missed): those wait for the path that delivers in order (an
 * outbox consumer, publishing without `onlyNext`), which also raises the mark
 * the fast path continues from. With no mark yet (a new member, a history
 * that expired) `onlyNext` always defers.
 */
export interface ItemSequence {
  /** Names the sequence within the user's stream (e.g. the conversation id). */
  readonly key: string;
  /** ≥ 1. */
  readonly seq: number;
  readonly onlyNext?: boolean;
}

/** A durable item for one user (publishMany). */
export interface UserItem {
  readonly userId: string;
  readonly id: string;
  readonly payload: Uint8Array;
  readonly sequence?: ItemSequence;
}

/** What arrives on a user's live channel. */
export interface LiveItem {
  /** The epoch the offset belongs to; "" for ephemeral items. */
  readonly epoch: string;
  /** 0 for ephemeral items. */
  readonly offset: number;
  readonly id: string;
  readonly payload: Uint8Array;
}

export interface PublishResult {
  readonly epoch: string;
  readonly offset: number;
  /** True when the id was already published: nothing was stored or sent again. */
  readonly duplicate: boolean;
  /** True when an `onlyNext` item was not its sequence's next: nothing was stored or sent (offset 0). */
  readonly deferred: boolean;
}

/** What the history can replay after a position. */
export type Replay =
  | { readonly recovered: true; readonly position: StreamPosition; readonly items: readonly StoredItem[] }
  | { readonly recovered: false; readonly position: StreamPosition };

export type PresenceState = "offline" | "online" | "away";

export interface PresenceStatus {
  readonly userId: string;
  readonly state: PresenceState;
  /** Epoch ms of the last time the user held a live stream; undefined when unknown. */
  readonly lastSeenMs: number | undefined;
}

/** A live stream as presence sees it. */
export interface Connection {
  readonly userId: string;
  /** The device's session (the access token's sid): the away hint is per session. */
  readonly sessionId: string;
  /** Unique per stream. */
  readonly connectionId: string;
}

/** The producers' side: notification, chat and feed publish through this. */
export interface UserStreamPublisher {
  /** Stores the item as the user's next offset and publishes it live; idempotent by `id`. */
  publish(userId: string, item: { id: string; payload: Uint8Array }): Promise<PublishResult>;
  /**
   * `publish` for many items at once (an outbox consumer's batch of events):
   * each user's items in the order given, in one round trip for all users.
   * Results in the order of `items`. Throws when any item could not be
   * published; what was published is then, per user, a prefix of that
   * user's items, so retrying the whole list (ids make it idempotent)
   * publishes the rest in order (a deferred item is not a failure: items
   * after it are still published, and an `onlyNext` item after a deferred one
   * of the same sequence is deferred too, since the mark did not move).
   */
  publishMany(items: readonly UserItem[]): Promise<PublishResult[]>;
  /**
   * Publishes an ephemeral item to each user's live channel. With `onlyLive`,
   * users with no unexpired connection are skipped (nothing is sent for
   * them). Returns how many users it was sent to.
   */
  signal(userIds: readonly string[], item: { id: string; payload: Uint8Array }, options?: { onlyLive?: boolean }): Promise<number>;
  /**
   * For each user, the sessions that hold an unexpired live connection and
   * have no away hint: the devices the user is looking at right now (what
   * makes presence "online"), so push can skip them. Every user asked about
   * is a key; users with no such session map to an empty set. Read-only.
   */
  foregroundSessions(userIds: readonly string[]): Promise<Map<string, Set<string>>>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The realtime service's side. */
export interface UserStreamHub extends UserStreamPublisher {
  readonly kind: "redis" | "memory";
  /** The user's current position; starts an epoch when the user has none. */
  position(userId: string): Promise<StreamPosition>;
  /**
   * Everything after `since`, when the history still holds all of it in the
   * same epoch; otherwise `recovered: false` with the current position.
   */
  replay(userId: string, since: StreamPosition): Promise<Replay>;
  /** Items `from`..`to` (inclusive) of `epoch`, or null when any is gone (other epoch, trimmed). */
  range(userId: string, epoch: string, from: number, to: number): Promise<StoredItem[] | null>;
  /**
   * Calls `onItem` for every item published to the user from now on. All
   * listens of one hub share one subscriber connection; resolves once the
   * subscription is live, so nothing published after it resolves is missed.
   */
  listen(userId: string, onItem: (item: LiveItem) => void): Promise<() => Promise<void>>;
  /**
   * Called when live delivery resumes after an interruption (the subscriber
   * connection dropped and came back): items published meanwhile were not
   * delivered live, so listeners compare positions and catch up from history.
   */
  onResume(listener: () => void): void;

  /** A stream opened (or is still open): its connection lives until now + ttlMs. Returns the user's presence. */
  connect(connection: Connection, ttlMs: number): Promise<PresenceStatus>;
  /** Pushes the expiry of live connections forward (one round trip for all of them). */
  refresh(connections: readonly Connection[], ttlMs: number): Promise<void>;
  /** A stream ended. Returns the user's presence. */
  disconnect(connection: Connection): Promise<PresenceStatus>;
  /** The device's hint; kept for as long as the session's streams may live (hintTtlMs). */
  hint(userId: string, sessionId: string, away: boolean, hintTtlMs: number): Promise<PresenceStatus>;
  presence(userIds: readonly string[]): Promise<PresenceStatus[]>;
  /**
   * Users whose last connection expired without a disconnect (an instance
   * died): they are marked offline and their change announced. Any instance
   * may run it; each expired user is announced once.
   */
  sweep(limit: number): Promise<PresenceStatus[]>;
  /** Calls `onChange` when the user's presence state changes (shared subscriber connection, like listen). */
  watchPresence(userId: string, onChange: (status: PresenceStatus) => void): Promise<() => Promise<void>>;
}

/** History bounds. */
export interface HistoryOptions {
  /** Durable items kept per user (older ones are trimmed). */
  maxItems: number;
  /** A user's history (and epoch) expires this long after the last publish. */
  ttlSeconds: number;
}

export const defaultHistory: HistoryOptions = { maxItems: 1000, ttlSeconds: 86_400 };

/** A new epoch: 128 random bits, base64url (matches the contract's epoch pattern). */
export function newEpoch(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64url");
}

/** Item ids travel in a newline-framed wire format and as Redis members. */
export function checkItemId(id: string): void {
  if (id === "" || id.length > 128 || /[\n\r]/.test(id)) throw new Error(`invalid stream item id ${JSON.stringify(id)}`);
}

/** An item as publishMany takes it: a valid id, and a sequence with a key and a whole seq ≥ 1. */
export function checkItem(item: UserItem): void {
  checkItemId(item.id);
  const sequence = item.sequence;
  if (sequence === undefined) return;
  if (sequence.key === "" || sequence.key.length > 128) throw new Error(`invalid stream item sequence key ${JSON.stringify(sequence.key)}`);
  if (!Number.isSafeInteger(sequence.seq) || sequence.seq < 1) throw new Error(`invalid stream item seq ${sequence.seq}`);
}
