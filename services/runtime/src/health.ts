// Readiness and the standard grpc.health.v1.Health service.
//
// One process serves several gRPC services that share the same dependencies,
// so every served service (and "", the whole server) has the same status:
// SERVING when all readiness checks pass, NOT_SERVING when one fails, and
// NOT_SERVING for good once shutdown began. /readyz reports the same thing.
import { Code, ConnectError } from "@connectrpc/connect";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  Health as HealthService,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "@aviary/gen/grpc/health/v1/health_pb";
import type { HealthCheckRequest } from "@aviary/gen/grpc/health/v1/health_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HealthCheckResponseSchema } from "@aviary/gen/grpc/health/v1/health_pb";
import type { Logger } from "./log.ts";

export { HealthService, ServingStatus };

export interface ReadinessCheck {
  name: string;
  /** Resolves when the dependency is usable; rejects (or times out) otherwise. */
  check: () => Promise<void>;
}

export interface ReadinessReport {
  ready: boolean;
  /** Failing checks with a short reason ("timeout" or "failed"); details go to the log, not the caller. */
  failing: { name: string; reason: "timeout" | "failed" }[];
}

export interface HealthOptions {
  checks: readonly ReadinessCheck[];
  /** Names of the gRPC services this process serves (Check/Watch answer for these and ""). */
  services: () => ReadonlySet<string>;
  /** Per-check time budget (default 2 s). */
  checkTimeoutMs?: number;
  /** How often checks rerun while someone Watches (default 5 s). */
  pollIntervalMs?: number;
  logger?: Logger;
}

export interface Health {
  /** The grpc.health.v1.Health implementation. */
  readonly impl: ServiceImpl<typeof HealthService>;
  /** Runs the checks now (concurrent callers share one run) and updates the status. */
  readiness(): Promise<ReadinessReport>;
  /** Current status without running checks. */
  status(): ServingStatus;
  /** Marks the server NOT_SERVING for good and tells watchers. */
  beginShutdown(): void;
  readonly shuttingDown: boolean;
  /** Stops background polling. */
  stop(): void;
}

type CheckResponse = MessageInitShape<typeof HealthCheckResponseSchema>;

export function createHealth(options: HealthOptions): Health {
  const checkTimeoutMs = options.checkTimeoutMs ?? 2_000;
  const pollIntervalMs = options.pollIntervalMs ?? 5_000;
  let current: ServingStatus = ServingStatus.NOT_SERVING;
  let ready = false;
  let shuttingDown = false;
  let running: Promise<ReadinessReport> | undefined;
  const watchers = new Set<(s: ServingStatus) => void>();
  let poller: NodeJS.Timeout | undefined;

  const setStatus = () => {
    const next = !shuttingDown && ready ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
    if (next === current) return;
    current = next;
    for (const w of watchers) w(next);
  };

  const runOne = async (c: ReadinessCheck): Promise<ReadinessReport["failing"][number] | undefined> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), checkTimeoutMs);
    });
    try {
      const outcome = await Promise.race([c.check().then(() => "ok" as const), timeout]);
      return outcome === "ok" ? undefined : { name: c.name, reason: "timeout" };
    } catch (e) {
      options.logger?.debug({ err: e, check: c.name }, "readiness check failed");
      return { name: c.name, reason: "failed" };
    } finally {
      clearTimeout(timer);
    }
  };

  const readiness = (): Promise<ReadinessReport> => {
    running ??= (async () => {
      try {
        const failing = (await Promise.all(options.checks.map(runOne))).filter((f) => f !== undefined);
        const wasReady = ready;
        ready = failing.length === 0;
        // Log transitions only: a probe every few seconds during an outage must not flood the log.
        if (wasReady !== ready) {
          if (ready) options.logger?.info("ready");
          else options.logger?.warn({ failing }, "not ready");
        }
        setStatus();
        return { ready: ready && !shuttingDown, failing };
      } finally {
        running = undefined;
      }
    })();
    return running;
  };

  const startPolling = () => {
    poller ??= setInterval(() => void readiness(), pollIntervalMs).unref();
  };
  const stopPolling = () => {
    if (poller !== undefined && watchers.size === 0) {
      clearInterval(poller);
      poller = undefined;
    }
  };

  const known = (service: string) => service === "" || options.services().has(service);

  async function* watch(req: HealthCheckRequest, ctx: HandlerContext): AsyncGenerator<CheckResponse> {
    // A queue of status changes, drained by this stream.
    const pending: ServingStatus[] = [];
    let wake: (() => void) | undefined;
    const watcher = (s: ServingStatus) => {
      pending.push(s);
      wake?.();
    };
    const aborted = new Promise<never>((_, reject) => {
      const onAbort = () => reject(ctx.signal.reason);
      if (ctx.signal.aborted) onAbort();
      else ctx.signal.addEventListener("abort", onAbort, { once: true });
    });
    aborted.catch(() => {});

    if (!known(req.service)) {
      // Per the health protocol: report SERVICE_UNKNOWN and keep the stream open.
      yield { status: ServingStatus.SERVICE_UNKNOWN };
      await aborted;
      return;
    }
    watchers.add(watcher);
    startPolling();
    try {
      await Promise.race([readiness(), aborted]);
      let last = current;
      yield { status: last };
      for (;;) {
        while (pending.length === 0) {
          await Promise.race([new Promise<void>((resolve) => (wake = resolve)), aborted]);
        }
        const s = pending.shift() ?? last;
        if (s !== last) {
          last = s;
          yield { status: s };
        }
      }
    } finally {
      watchers.delete(watcher);
      stopPolling();
    }
  }

  const impl: ServiceImpl<typeof HealthService> = {
    async check(req): Promise<CheckResponse> {
      if (!known(req.service)) throw new ConnectError(`unknown service ${req.service}`, Code.NotFound);
      await readiness();
      return { status: current };
    },
    watch,
    async list() {
      await readiness();
      const statuses: Record<string, CheckResponse> = { "": { status: current } };
      for (const s of options.services()) statuses[s] = { status: current };
      return { statuses };
    },
  };

  return {
    impl,
    readiness,
    status: () => current,
    beginShutdown() {
      shuttingDown = true;
      setStatus();
    },
    get shuttingDown() {
      return shuttingDown;
    },
    stop() {
      if (poller !== undefined) clearInterval(poller);
      poller = undefined;
    },
  };
}
