// The per-user send limit, "COUNT/WINDOW" (CHAT_SEND_RATE, e.g. "30/10s"):
// at most COUNT sends per fixed window of WINDOW, counted in the cache.
import { parseDuration } from "@aviary/runtime/config";

export interface SendRate {
  readonly count: number;
  readonly windowSeconds: number;
}

/** The pattern the config variable must match (checked by loadConfig). */
export const sendRatePattern = /^[1-9][0-9]*\/([0-9]+(ms|s|m|h|d))+$/;

export function parseSendRate(text: string): SendRate {
  const [count, window] = text.split("/");
  const windowMs = window === undefined ? undefined : parseDuration(window);
  if (count === undefined || windowMs === undefined || windowMs < 1000) throw new Error(`invalid send rate ${JSON.stringify(text)}: expected COUNT/WINDOW with a window of at least 1s`);
  return { count: Number(count), windowSeconds: Math.ceil(windowMs / 1000) };
}
