// The per-user send limit, counted in the cache (the runtime's window limits):
// a failing cache lets sends through, so losing it does not stop chat.
import type { Cache } from "@aviary/runtime/cache/cache";
import type { LogSink } from "@aviary/runtime/bus/log-sink";
import { cacheWindowLimiter, type WindowLimiter } from "@aviary/runtime/window-limit";
import type { SendRate } from "../domain/send-rate.ts";

export type SendLimiter = WindowLimiter;

export function sendLimiter(cache: Cache, rate: SendRate, logger?: LogSink): SendLimiter {
  return cacheWindowLimiter(cache, { keyPrefix: "chat:send-rate", rate, actions: "messages", logger });
}
