// Structured JSON logs. Every record carries the trace and span id of the
// active OpenTelemetry span, so a log line can be found from a trace and a
// trace from a log line. Credentials never reach the log sink.
import { pino } from "pino";
import type { DestinationStream, Level, Logger } from "pino";
import { trace, isSpanContextValid } from "@opentelemetry/api";

export type { Logger } from "pino";

// Keys whose values are secrets wherever they appear (pino's redaction works on
// explicit paths, so each key is listed at the depths our records use: top
// level, one level down (`headers.authorization`) and two (`req.headers.authorization`)).
const SECRET_KEYS = [
  "authorization",
  "Authorization",
  "cookie",
  "set-cookie",
  "password",
  "currentPassword",
  "newPassword",
  "current_password",
  "new_password",
  "token",
  "accessToken",
  "refreshToken",
  "access_token",
  "refresh_token",
  "idToken",
  "secret",
  "clientSecret",
  "apiKey",
];

export const REDACTED_PATHS: readonly string[] = SECRET_KEYS.flatMap((k) => {
  const key = /^[A-Za-z_$][\w$]*$/.test(k) ? k : `["${k}"]`;
  const dot = key.startsWith("[") ? "" : ".";
  return [key, `*${dot}${key}`, `*.*${dot}${key}`];
});

export interface LoggerOptions {
  /** Where records go (default stdout). Tests pass a capturing stream. */
  destination?: DestinationStream;
}

/**
 * A pino JSON logger for `service`. Level defaults to LOG_LEVEL, else "info".
 * Records look like:
 *   {"level":"info","time":"…","service":"auth","trace_id":"…","span_id":"…","msg":"…"}
 */
export function createLogger(service: string, level?: Level | "silent", options: LoggerOptions = {}): Logger {
  const opts = {
    level: level ?? process.env["LOG_LEVEL"] ?? "info",
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Level names instead of numbers: readable and what log pipelines expect.
    formatters: { level: (label: string) => ({ level: label }) },
    redact: { paths: [...REDACTED_PATHS], censor: "[redacted]" },
    mixin() {
      const ctx = trace.getActiveSpan()?.spanContext();
      if (ctx === undefined || !isSpanContextValid(ctx)) return {};
      return { trace_id: ctx.traceId, span_id: ctx.spanId };
    },
  };
  return options.destination === undefined ? pino(opts) : pino(opts, options.destination);
}
