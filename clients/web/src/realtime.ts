// The device's one live stream (RealtimeService.Subscribe over gRPC-web):
// screens register for event kinds; the stream resumes from the last
// (epoch, offset) after any drop, and when the server cannot replay what was
// missed (`recovered: false`) every screen re-reads its state.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { StreamPositionSchema, type Event, type StreamPosition } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import { api, refreshSession, session } from "./transport.ts";

type Payload = NonNullable<Event["payload"]["case"]>;
type PayloadValue<K extends Payload> = Extract<Event["payload"], { case: K }>["value"];
export type LiveStatus = "connecting" | "live" | "reconnecting" | "stopped";

const handlers = new Map<Payload, Set<(value: never, event: Event) => void>>();
const resyncHandlers = new Set<() => void>();
const statusHandlers = new Set<(status: LiveStatus) => void>();

/** Calls `handler` for every event of this kind; returns the unsubscribe. */
export function onLive<K extends Payload>(kind: K, handler: (value: PayloadValue<K>, event: Event) => void): () => void {
  const set = handlers.get(kind) ?? new Set();
  handlers.set(kind, set);
  set.add(handler as (value: never, event: Event) => void);
  return () => set.delete(handler as (value: never, event: Event) => void);
}

const reconnectHandlers = new Set<() => void>();

/**
 * Called when a stream opens again after a drop or rotation (whatever was
 * replayed follows). Ephemeral items (feed hints, typing) are never replayed:
 * a screen that shows one re-checks here.
 */
export function onReconnect(handler: () => void): () => void {
  reconnectHandlers.add(handler);
  return () => reconnectHandlers.delete(handler);
}

/** Called after a resume that could not replay what was missed: re-read state with the list RPCs. */
export function onResync(handler: () => void): () => void {
  resyncHandlers.add(handler);
  return () => resyncHandlers.delete(handler);
}

export function onStatus(handler: (status: LiveStatus) => void): void {
  statusHandlers.add(handler);
}

const setStatus = (status: LiveStatus) => {
  for (const handler of statusHandlers) handler(status);
};

function dispatch(event: Event): void {
  const kind = event.payload.case;
  if (kind === undefined) return;
  for (const handler of handlers.get(kind) ?? []) handler(event.payload.value as never, event);
}

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 15_000;
/** Full jitter, so many clients dropped at once do not reconnect in step. */
const backoff = (attempt: number) => Math.random() * Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

let running: AbortController | undefined;

/** Opens the stream (once); `stopLive` ends it (sign-out). */
export function startLive(): void {
  if (running) return;
  running = new AbortController();
  void run(running.signal);
}

export function stopLive(): void {
  running?.abort();
  running = undefined;
  setStatus("stopped");
}

async function run(stopped: AbortSignal): Promise<void> {
  let position: StreamPosition | undefined;
  let attempt = 0;
  setStatus("connecting");
  while (!stopped.aborted) {
    // One controller per stream: the watchdog aborts a stream that went silent.
    const stream = new AbortController();
    const abortStream = () => stream.abort();
    stopped.addEventListener("abort", abortStream, { once: true });
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    let silenceMs = 60_000;
    const heard = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(abortStream, silenceMs);
    };
    let retryAfterMs: number | undefined;
    // The token this stream opens with (the interceptor reads the same session).
    const openedWith = session.current()?.accessToken;
    try {
      heard();
      for await (const response of api.realtime.subscribe(position ? { since: position } : {}, { signal: stream.signal })) {
        heard();
        const frame = response.frame;
        if (frame.case === "ready") {
          const resumed = position !== undefined;
          // The server asks for a reconnect after two silent intervals.
          silenceMs = 2 * Math.max(1, frame.value.heartbeatIntervalSeconds) * 1000 + 1000;
          heard();
          position = frame.value.position ?? position;
          attempt = 0;
          setStatus("live");
          if (resumed) for (const handler of reconnectHandlers) handler();
          if (resumed && !frame.value.recovered) for (const handler of resyncHandlers) handler();
        } else if (frame.case === "event") {
          // Replayed items follow `ready` with offsets at or below its position: keep the highest.
          if (position && frame.value.offset > position.offset) position = create(StreamPositionSchema, { epoch: position.epoch, offset: frame.value.offset });
          dispatch(frame.value);
        } else if (frame.case === "heartbeat") {
          // The server has delivered more than this stream carried: resume to get the rest.
          if (position && frame.value.offset > position.offset) break;
        } else if (frame.case === "rotate") {
          retryAfterMs = frame.value.retryAfterMs;
          break;
        }
      }
    } catch (failure) {
      if (stopped.aborted) break;
      if (ConnectError.from(failure).code === Code.Unauthenticated) {
        // The access token expired (streams end with it): resume at once with the one the
        // scheduled refresh already got, or refresh first.
        if (session.current() && session.current()?.accessToken !== openedWith) continue;
        try {
          await refreshSession();
          continue;
        } catch {
          // Refused: the session is over and the app shows sign-in. Unreachable: back off and retry.
          if (!session.current()) break;
        }
      }
    } finally {
      clearTimeout(watchdog);
      stopped.removeEventListener("abort", abortStream);
      stream.abort();
    }
    if (stopped.aborted) break;
    setStatus("reconnecting");
    await pause(retryAfterMs ?? backoff(attempt++), stopped);
  }
  setStatus("stopped");
}
