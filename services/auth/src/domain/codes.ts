import { createHash, randomInt, timingSafeEqual } from "node:crypto";
import type { Cache } from "@aviary/runtime/cache/cache";
import { identityKey, type Identity } from "./identity.ts";

/** What a one-time code proves. */
export type CodePurpose = "verify" | "password_reset";

/** The outcome of checking a code. */
export type CodeCheck = "ok" | "mismatch" | "missing" | "locked";

export interface OneTimeCodes {
  /** Issues a fresh six-digit code (replacing any earlier one) and returns it. */
  issue(purpose: CodePurpose, identity: Identity): Promise<string>;
  /** Checks a code; a correct code is consumed, so it works once. */
  check(purpose: CodePurpose, identity: Identity, code: string): Promise<CodeCheck>;
  readonly ttlSeconds: number;
}

/**
 * One-time codes in the cache, stored as hashes with a TTL. Guesses are
 * counted atomically (INCR) per identity and purpose, with or without a
 * pending code: after `maxAttempts` wrong ones the code is dropped, so a
 * six-digit code cannot be brute-forced within its lifetime.
 * Losing the cache only means the user asks for a new code.
 */
export function cacheOneTimeCodes(cache: Cache, options: { ttlSeconds: number; maxAttempts: number }): OneTimeCodes {
  const codeKey = (purpose: CodePurpose, identity: Identity) => `auth:code:${purpose}:${identityKey(identity)}`;
  const attemptsKey = (purpose: CodePurpose, identity: Identity) => `auth:code-attempts:${purpose}:${identityKey(identity)}`;
  return {
    ttlSeconds: options.ttlSeconds,
    async issue(purpose, identity) {
      const code = randomInt(0, 1_000_000).toString().padStart(6, "0");
      await cache.del(attemptsKey(purpose, identity));
      await cache.set(codeKey(purpose, identity), digest(code), { ttlSeconds: options.ttlSeconds });
      return code;
    },
    async check(purpose, identity, code) {
      // Every guess counts, whether a code is pending or not, so the lock
      // comes at the same guess for an identity with a code, one without and
      // one that has no account: the answers cannot tell them apart.
      const attempts = await cache.incrWindow(attemptsKey(purpose, identity), options.ttlSeconds);
      if (attempts > options.maxAttempts) return lockNow();
      const stored = await cache.get(codeKey(purpose, identity));
      if (stored === null || !timingSafeEqual(Buffer.from(stored, "hex"), Buffer.from(digest(code), "hex"))) {
        if (attempts === options.maxAttempts) return lockNow();
        return stored === null ? "missing" : "mismatch";
      }
      // Consume before answering, so a code cannot be used twice by racing requests.
      const removed = await cache.del(codeKey(purpose, identity));
      await cache.del(attemptsKey(purpose, identity));
      return removed > 0 ? "ok" : "missing";

      async function lockNow(): Promise<CodeCheck> {
        await cache.del(codeKey(purpose, identity), attemptsKey(purpose, identity));
        return "locked";
      }
    },
  };
}

function digest(code: string): string {
  return createHash("sha256").update(code).digest("hex");
}
