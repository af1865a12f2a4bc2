// More than one process per service on one host (AVIARY_PROCESSES=N): the
// process runService starts becomes a supervisor that forks N workers with
// node:cluster, and each worker runs the service as it would run alone. The
// workers' listening sockets are the supervisor's, shared: connections are
// handed to the workers in turn (cluster's round-robin on Linux), so the
// main port and the internal listener each stay one port. Everything a
// service keeps beyond one call lives in PostgreSQL, Redis or Kafka, so a
// worker is one more replica, not a shard: consumers join the same group,
// relays claim outbox rows with SKIP LOCKED, migrations take an advisory lock.
//
// What the supervisor does:
// - a worker that dies before it is up (bad configuration, a migration that
//   fails) fails the whole start: the others are stopped and the supervisor
//   exits 1, as one process would;
// - a worker that dies later is replaced, at most once a second;
// - SIGTERM/SIGINT are passed to every worker as SIGTERM (each drains as
//   runService does), and the supervisor exits once they are gone: 0 when
//   every worker stopped cleanly, else 1; a second signal kills them.
// Workers ignore SIGINT: a terminal's Ctrl-C reaches the whole process group,
// and the supervisor's SIGTERM is the one that counts.
import cluster, { type Worker } from "node:cluster";
import { setTimeout as sleep } from "node:timers/promises";
import { int, loadConfig } from "./config.ts";
import type { Logger } from "./log.ts";

export const processesConfigSpec = {
  /** Processes serving this service on this host (cluster workers sharing its ports); 1: this process alone. */
  processes: int("AVIARY_PROCESSES", { default: 1, min: 1, max: 64 }),
};

/** The message a worker sends its supervisor once the service is up. */
const READY = "aviary:ready";

/** Whether this process is a worker that runService's supervisor forked. */
export function isServiceWorker(): boolean {
  return cluster.isWorker;
}

/** Tells the supervisor this worker's service is up (no-op outside a supervised worker). */
export function announceWorkerReady(): void {
  if (cluster.isWorker) process.send?.(READY);
}

/** How long a worker whose supervisor died gets to finish its calls before it exits. */
const ORPHAN_GRACE_MS = 10_000;

/**
 * A worker whose supervisor is gone (SIGKILL, OOM) must not live on: its
 * listening sockets were the supervisor's, so nothing new reaches it, and
 * nobody would stop it. It closes what it can within ORPHAN_GRACE_MS (the
 * listeners' close needs the supervisor, so it may not finish) and exits 1.
 */
export function onSupervisorGone(running: { close(): Promise<void> }, log: () => Logger, exit: (code: number) => void): void {
  process.once("disconnect", () => {
    log().error("the supervisor process is gone; this worker stops");
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, ORPHAN_GRACE_MS)));
    void Promise.race([running.close().catch(() => undefined), grace]).finally(() => {
      clearTimeout(timer);
      exit(1);
    });
  });
}

export function processCountFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  return loadConfig(processesConfigSpec, env).processes;
}

export interface SupervisorOptions {
  processes: number;
  logger: Logger;
  exit: (code: number) => void;
  signals: { on(event: "SIGTERM" | "SIGINT", listener: (signal: NodeJS.Signals) => void): unknown };
  /** Least time between two replacements of crashed workers (default 1 s). */
  restartDelayMs?: number;
}

/** Runs the supervisor: forks the workers and looks after them until a signal stops them. */
export function superviseWorkers(options: SupervisorOptions): void {
  const { logger, exit } = options;
  const restartDelayMs = options.restartDelayMs ?? 1_000;
  const ready = new Set<Worker>();
  let stopping = false;
  let failedStart = false;
  let cleanStops = true;
  let lastRestart = 0;

  const fork = (): void => {
    const worker = cluster.fork();
    worker.on("message", (message: unknown) => {
      if (message !== READY) return;
      ready.add(worker);
      if (ready.size === options.processes) logger.info({ processes: options.processes }, "all worker processes are up");
    });
    worker.once("exit", (code: number | null, signal: string | null) => void onExit(worker, code, signal));
  };

  const living = (): Worker[] => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());

  const stopAll = (signal: NodeJS.Signals): void => {
    for (const worker of living()) worker.process.kill(signal);
  };

  const onExit = async (worker: Worker, code: number | null, signal: string | null): Promise<void> => {
    const wasReady = ready.delete(worker);
    if (stopping || failedStart) {
      if (code !== 0) cleanStops = false;
      if (living().length === 0) exit(failedStart || !cleanStops ? 1 : 0);
      return;
    }
    if (!wasReady) {
      // It never came up: the next one would not either. Stop the rest, fail as one process would.
      logger.fatal({ pid: worker.process.pid, code, signal }, "a worker process exited before its service was up");
      failedStart = true;
      stopAll("SIGTERM");
      if (living().length === 0) exit(1);
      return;
    }
    logger.error({ pid: worker.process.pid, code, signal }, "a worker process died; starting another");
    const wait = lastRestart + restartDelayMs - Date.now();
    lastRestart = Math.max(Date.now(), lastRestart + restartDelayMs);
    if (wait > 0) await sleep(wait);
    if (!stopping) fork();
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      stopAll("SIGKILL");
      exit(1);
      return;
    }
    stopping = true;
    logger.info({ signal, processes: living().length }, "signal received, stopping the worker processes");
    if (living().length === 0) {
      exit(0);
      return;
    }
    stopAll("SIGTERM");
  };
  options.signals.on("SIGTERM", onSignal);
  options.signals.on("SIGINT", onSignal);

  logger.info({ processes: options.processes }, "starting worker processes");
  for (let i = 0; i < options.processes; i++) fork();
}
