/**
 * Expiry in milliseconds for a TTL given in seconds, checked the same way by
 * both adapters (Redis rejects a zero or negative expiry; so do we, up front).
 * Fractions are allowed, so tests can use short windows.
 */
export function ttlMilliseconds(seconds: number | undefined): number | undefined {
  if (seconds === undefined) return undefined;
  if (!Number.isFinite(seconds) || seconds <= 0) throw new RangeError(`TTL must be a positive number of seconds, got ${seconds}`);
  return Math.max(1, Math.round(seconds * 1_000));
}

/** Redis' TTL reply: whole seconds left, rounded to the nearest. */
export function secondsLeft(remainingMs: number): number {
  return Math.floor((remainingMs + 500) / 1_000);
}
