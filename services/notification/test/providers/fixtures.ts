// Small things every provider test needs: a clock that moves only when told,
// and a message to send.

import { randomUUID } from "node:crypto";
import type http2 from "node:http2";
import type { PushMessage } from "../../src/push/provider.ts";

export interface ManualClock {
  readonly now: () => number;
  advance(ms: number): void;
}

/** Starts at a fixed instant (not the wall clock), so a test's times are the same on every run. */
export function manualClock(startMs = Date.UTC(2030, 0, 15, 12, 0, 0)): ManualClock {
  let t = startMs;
  return {
    now: () => t,
    advance: (ms) => void (t += ms),
  };
}

export function sampleMessage(overrides: Partial<PushMessage> = {}): PushMessage {
  return {
    id: randomUUID(),
    title: "Ada liked your post",
    body: "and 2 others",
    collapseKey: "likes:post-123",
    badge: 4,
    data: { notification_id: "n-1", group_id: "g-1", kind: "like" },
    ...overrides,
  };
}

/** Request headers as a plain map: lower-case names, pseudo-headers left out, repeats joined. */
export function flatHeaders(h: http2.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(h)) {
    if (name.startsWith(":") || value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(", ") : String(value);
  }
  return out;
}

/**
 * The request timeout of tests where the server never answers: long enough
 * that the answered requests of the same test never hit it on a busy
 * machine, short enough to keep the test quick.
 */
export const HANG_TIMEOUT_MS = 2_000;
