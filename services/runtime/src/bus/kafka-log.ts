import { logLevel, type logCreator } from "kafkajs";
import type { LogSink } from "./log-sink.ts";

/** Identical lines within this window are counted, not repeated. */
const REPEAT_WINDOW_MS = 30_000;
const MAX_TRACKED_LINES = 500;

/**
 * Routes kafkajs' WARN and ERROR lines to the service's log sink. While a
 * broker is down kafkajs repeats the same connection error many times per
 * second; each distinct line is logged once per window, and the next one
 * carries how many were suppressed.
 */
export function kafkaLogCreator(sink: LogSink): logCreator {
  const seen = new Map<string, { at: number; suppressed: number }>();

  return () =>
    ({ namespace, level, log }) => {
      if (level !== logLevel.ERROR && level !== logLevel.WARN) return;
      // Deliberate, see kafka.ts: bounded producer retries let a failed
      // publish surface, so the outbox relay can roll back and try again.
      if (log.message.startsWith("Limiting retries for the idempotent producer")) return;
      // Stacks of connection errors say nothing the message does not.
      const { message, timestamp: _timestamp, stack: _stack, ...context } = log;
      const line = `${namespace}: ${message}`;
      const now = Date.now();
      const previous = seen.get(line);
      if (previous && now - previous.at < REPEAT_WINDOW_MS) {
        previous.suppressed++;
        return;
      }
      if (seen.size >= MAX_TRACKED_LINES) seen.clear();
      seen.set(line, { at: now, suppressed: 0 });
      const entry = { ...context, namespace, ...(previous?.suppressed ? { suppressedRepeats: previous.suppressed } : {}) };
      if (level === logLevel.ERROR) sink.error(entry, `kafkajs ${line}`);
      else sink.warn(entry, `kafkajs ${line}`);
    };
}
