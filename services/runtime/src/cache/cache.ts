/**
 * The cache port: for what may be lost and rebuilt (OTP codes, rate-limit
 * windows, session denylist, feed caches, pub/sub). Losing it degrades speed or
 * forces a re-send, never correctness of stored data.
 * Two adapters: Redis (ioredis) and in-memory, sharing one test suite.
 */
export interface Cache {
  readonly kind: "redis" | "memory";
  get(key: string): Promise<string | null>;
  /** Several values in one round trip, in the order of `keys` (null where missing). */
  getMany(keys: readonly string[]): Promise<(string | null)[]>;
  /** Sets a value; with `ttlSeconds`, it expires. */
  set(key: string, value: string, options?: { ttlSeconds?: number }): Promise<void>;
  /** Sets only when absent; true if it was set. */
  setIfAbsent(key: string, value: string, options?: { ttlSeconds?: number }): Promise<boolean>;
  del(...keys: string[]): Promise<number>;
  exists(key: string): Promise<boolean>;
  /** Increments a counter; the first increment of a window sets the TTL. Returns the new value. */
  incrWindow(key: string, windowSeconds: number): Promise<number>;
  /** Seconds until the key expires: -1 without expiry, -2 when missing. */
  ttl(key: string): Promise<number>;
  publish(channel: string, message: string): Promise<void>;
  /** Resolves once subscribed; the returned function unsubscribes. */
  subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
