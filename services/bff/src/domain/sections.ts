// A screen is made of sections, each filled by one dependency. A section that
// fails (or runs out of its time budget) is left empty and reported by name,
// so one slow or broken service costs the client one part of the screen, not
// the whole call. Pure: no clients, no context, so it is tested alone.
import { Code, ConnectError } from "@connectrpc/connect";
import { codeName } from "@aviary/runtime/interceptors/tracing";

export interface SectionFailure {
  section: string;
  /** The Connect code in the protocol's spelling, e.g. "unavailable". */
  code: string;
  message: string;
}

export type SectionResult<T> = { ok: true; value: T } | { ok: false; failure: SectionFailure; error: ConnectError };

/**
 * Runs `load` under its own deadline. The abort signal given to `load` fires
 * when the budget is spent or the whole call is cancelled.
 */
export async function loadSection<T>(section: string, budgetMs: number, parent: AbortSignal, load: (signal: AbortSignal, timeoutMs: number) => Promise<T>): Promise<SectionResult<T>> {
  // A plain timer, not AbortSignal.timeout: that one is unref'd, and it is
  // cleared as soon as the section settles.
  const budget = new AbortController();
  const timer = setTimeout(() => budget.abort(new ConnectError("section budget spent", Code.DeadlineExceeded)), budgetMs);
  const signal = AbortSignal.any([parent, budget.signal]);
  try {
    return { ok: true, value: await load(signal, budgetMs) };
  } catch (e) {
    const error = ConnectError.from(e);
    // A budget spent reads as the deadline it is, not as "canceled".
    const code = error.code === Code.Canceled && !parent.aborted ? Code.DeadlineExceeded : error.code;
    // Callees' messages are already client-safe; a local bug's message is not.
    const message = e instanceof ConnectError ? error.rawMessage : "this section failed";
    return { ok: false, error, failure: { section, code: codeName(code), message } };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Errors that are about the caller, not about a section: an invalid or revoked
 * token fails the whole call, as it would have failed any single call.
 */
export function callerError(results: readonly SectionResult<unknown>[]): ConnectError | undefined {
  for (const result of results) {
    if (!result.ok && result.error.code === Code.Unauthenticated) return result.error;
  }
  return undefined;
}
