// Helpers for interceptors that must follow a streaming call to its end: the
// interceptor's `await next(req)` returns as soon as the stream starts, so
// errors and completion arrive later, while the response is iterated.

/** Hooks around iterating a stream. */
export interface StreamHooks<T> {
  /** Runs each pull of the underlying iterator (e.g. inside a tracing context). */
  pull?: (pull: () => Promise<IteratorResult<T>>) => Promise<IteratorResult<T>>;
  /** Maps an error thrown while iterating before it is rethrown. */
  mapError?: (error: unknown) => unknown;
  /** Called exactly once when the stream ends: normally, with an error, or when the consumer stops early. */
  onEnd?: (error: unknown) => void;
}

/** Wraps `source` so the hooks see every pull, error and the end. */
export function followStream<T>(source: AsyncIterable<T>, hooks: StreamHooks<T>): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      const it = source[Symbol.asyncIterator]();
      let ended = false;
      const end = (error: unknown) => {
        if (ended) return;
        ended = true;
        hooks.onEnd?.(error);
      };
      const pull = hooks.pull ?? ((p) => p());
      return {
        async next() {
          try {
            const r = await pull(() => it.next());
            if (r.done === true) end(undefined);
            return r;
          } catch (e) {
            const mapped = hooks.mapError === undefined ? e : hooks.mapError(e);
            end(mapped);
            throw mapped;
          }
        },
        async return(value?: unknown) {
          // The consumer stopped early (client went away, write failed).
          end(undefined);
          const r = await it.return?.(value);
          return r ?? { done: true, value: undefined };
        },
        async throw(error?: unknown) {
          end(error);
          if (it.throw !== undefined) return it.throw(error);
          throw error;
        },
      };
    },
  };
}

/** Maps every item of `source` (used to validate incoming stream messages). */
export async function* mapStream<T, U>(source: AsyncIterable<T>, f: (item: T) => U): AsyncIterable<U> {
  for await (const item of source) yield f(item);
}
