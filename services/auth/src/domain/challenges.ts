// The short-lived ticket between a right password and a second factor. Not
// an access token: an opaque random value the client sends back to
// VerifySecondFactor, kept (as its SHA-256) in the cache with what the
// session will need. Each challenge allows a few code attempts, then it is
// dropped and the user signs in again. Losing the cache only means that.
import { createHash, randomBytes } from "node:crypto";
import type { Cache } from "@aviary/runtime/cache/cache";

export interface LoginChallenge {
  userId: string;
  deviceName: string;
}

export type ChallengeAttempt = { kind: "ok"; challenge: LoginChallenge } | { kind: "missing" } | { kind: "exhausted" };

export interface LoginChallenges {
  readonly ttlSeconds: number;
  open(challenge: LoginChallenge): Promise<string>;
  /** Counts one attempt on the challenge; past the limit it is dropped. */
  attempt(token: string): Promise<ChallengeAttempt>;
  /** Ends the challenge; true for the one caller that ended it (so one challenge opens one session). */
  close(token: string): Promise<boolean>;
}

export function cacheLoginChallenges(cache: Cache, options: { ttlSeconds: number; maxAttempts: number }): LoginChallenges {
  const key = (token: string) => `auth:2fa-challenge:${digest(token)}`;
  const attemptsKey = (token: string) => `auth:2fa-challenge-attempts:${digest(token)}`;
  return {
    ttlSeconds: options.ttlSeconds,
    async open(challenge) {
      const token = randomBytes(32).toString("base64url");
      await cache.set(key(token), JSON.stringify(challenge), { ttlSeconds: options.ttlSeconds });
      return token;
    },
    async attempt(token) {
      const stored = await cache.get(key(token));
      const challenge = stored === null ? undefined : parseChallenge(stored);
      if (challenge === undefined) return { kind: "missing" };
      const attempts = await cache.incrWindow(attemptsKey(token), options.ttlSeconds);
      if (attempts > options.maxAttempts) {
        await cache.del(key(token), attemptsKey(token));
        return { kind: "exhausted" };
      }
      return { kind: "ok", challenge };
    },
    async close(token) {
      const removed = await cache.del(key(token));
      await cache.del(attemptsKey(token));
      return removed > 0;
    },
  };
}

function parseChallenge(text: string): LoginChallenge | undefined {
  try {
    const value = JSON.parse(text) as Partial<LoginChallenge>;
    return typeof value.userId === "string" && typeof value.deviceName === "string" ? { userId: value.userId, deviceName: value.deviceName } : undefined;
  } catch {
    return undefined;
  }
}

function digest(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
