/**
 * The little logging the data adapters need. A pino logger fits as is
 * (`logger.warn({ err }, "message")`), so adapters take the service's logger
 * without depending on pino themselves.
 */
export interface LogSink {
  warn(context: object, message: string): void;
  error(context: object, message: string): void;
}

/** Default when a caller passes no logger: one line on stderr per entry. */
export const consoleSink: LogSink = {
  warn: (context, message) => console.warn(`[aviary] ${message}`, describe(context)),
  error: (context, message) => console.error(`[aviary] ${message}`, describe(context)),
};

/** Drops everything; for tests that provoke failures on purpose. */
export const silentSink: LogSink = {
  warn: () => undefined,
  error: () => undefined,
};

function describe(context: object): string {
  return JSON.stringify(context, (_key, value: unknown) =>
    value instanceof Error ? `${value.name}: ${value.message}` : value,
  );
}
