import type { Cache } from "./cache.ts";
import { secondsLeft, ttlMilliseconds } from "./ttl.ts";

interface Entry {
  value: string;
  /** Epoch ms; null = no expiry. */
  expiresAt: number | null;
}

/** How often expired keys nobody reads again are swept out. */
const SWEEP_INTERVAL_MS = 30_000;

/**
 * The in-process cache for `make dev` and unit tests, matching the Redis
 * adapter reply for reply: SET clears an expiry, INCR keeps it, ttl() is -1
 * without expiry and -2 when missing, rounded like Redis. Pub/sub delivers on
 * a later tick, as a network round trip would.
 */
export class MemoryCache implements Cache {
  readonly kind = "memory" as const;
  readonly #entries = new Map<string, Entry>();
  readonly #channels = new Map<string, Set<(message: string) => void>>();
  readonly #sweeper: NodeJS.Timeout;

  constructor() {
    this.#sweeper = setInterval(() => {
      for (const key of [...this.#entries.keys()]) this.#live(key);
    }, SWEEP_INTERVAL_MS);
    this.#sweeper.unref();
  }

  async get(key: string): Promise<string | null> {
    return this.#live(key)?.value ?? null;
  }

  async getMany(keys: readonly string[]): Promise<(string | null)[]> {
    return keys.map((key) => this.#live(key)?.value ?? null);
  }

  async set(key: string, value: string, options?: { ttlSeconds?: number }): Promise<void> {
    this.#entries.set(key, { value, expiresAt: expiry(options?.ttlSeconds) });
  }

  async setIfAbsent(key: string, value: string, options?: { ttlSeconds?: number }): Promise<boolean> {
    const expiresAt = expiry(options?.ttlSeconds);
    if (this.#live(key)) return false;
    this.#entries.set(key, { value, expiresAt });
    return true;
  }

  async del(...keys: string[]): Promise<number> {
    let deleted = 0;
    for (const key of new Set(keys)) if (this.#live(key) && this.#entries.delete(key)) deleted++;
    return deleted;
  }

  async exists(key: string): Promise<boolean> {
    return this.#live(key) !== undefined;
  }

  async incrWindow(key: string, windowSeconds: number): Promise<number> {
    const windowMs = ttlMilliseconds(windowSeconds)!;
    const entry = this.#live(key);
    const current = entry ? Number(entry.value) : 0;
    if (entry && !/^-?\d+$/.test(entry.value)) throw new Error("ERR value is not an integer or out of range");
    const next = current + 1;
    this.#entries.set(key, { value: String(next), expiresAt: entry?.expiresAt ?? Date.now() + windowMs });
    return next;
  }

  async ttl(key: string): Promise<number> {
    const entry = this.#live(key);
    if (!entry) return -2;
    if (entry.expiresAt === null) return -1;
    return secondsLeft(entry.expiresAt - Date.now());
  }

  async publish(channel: string, message: string): Promise<void> {
    const handlers = [...(this.#channels.get(channel) ?? [])];
    if (handlers.length === 0) return;
    setImmediate(() => {
      for (const handler of handlers) handler(message);
    });
  }

  async subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>> {
    let handlers = this.#channels.get(channel);
    if (!handlers) this.#channels.set(channel, (handlers = new Set()));
    handlers.add(onMessage);
    return async () => {
      handlers.delete(onMessage);
      if (handlers.size === 0 && this.#channels.get(channel) === handlers) this.#channels.delete(channel);
    };
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#channels.clear();
  }

  /** The entry if present and not expired; expired entries are dropped on sight. */
  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry?.expiresAt != null && entry.expiresAt <= Date.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }
}

function expiry(ttlSeconds: number | undefined): number | null {
  const ms = ttlMilliseconds(ttlSeconds);
  return ms === undefined ? null : Date.now() + ms;
}
