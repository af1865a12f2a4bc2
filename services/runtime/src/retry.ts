// When to try a call to an outside provider again (push services, mail and
// SMS gateways). Exponential backoff with full jitter (so a provider outage
// does not turn into synchronised retry waves), and the provider's
// Retry-After honoured when it sent one (capped, so one answer cannot park a
// worker for hours).
export interface RetryPolicy {
  /** Sends per message, the first included. */
  maxAttempts: number;
  /** The backoff before the second send; doubles after each. */
  initialBackoffMs: number;
  /** No wait is longer than this, Retry-After included. */
  maxBackoffMs: number;
}

/** The wait before send number `attempt + 1`, after `attempt` sends (1-based). */
export function retryDelayMs(policy: RetryPolicy, attempt: number, retryAfterMs: number | undefined, random: () => number = Math.random): number {
  if (retryAfterMs !== undefined) return Math.min(Math.max(0, retryAfterMs), policy.maxBackoffMs);
  const ceiling = Math.min(policy.initialBackoffMs * 2 ** (attempt - 1), policy.maxBackoffMs);
  // Full jitter, but never less than half the step: a retry right away rarely helps a struggling provider.
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
