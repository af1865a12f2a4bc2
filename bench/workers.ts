// Load-generator processes of bench/realtime.ts: a child Node process that
// answers commands over the IPC channel, so its CPU and memory are its own
// (read from /proc by the parent) and it does not share an event loop with
// the process that measures. Parent side: startWorker; child side: serveWorker.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { repo } from "./support.ts";

export interface Worker {
  readonly label: string;
  readonly pid: number;
  readonly process: ChildProcess;
  /** Runs `command` in the child; rejects with the child's error, or after `timeoutMs`. */
  call<T = unknown>(command: string, args?: unknown, timeoutMs?: number): Promise<T>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

interface Request {
  id: number;
  command: string;
  args: unknown;
}
type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

/** Starts `script` as a worker; its stdout and stderr go to `.dev/bench-<label>.log`. */
export function startWorker(label: string, script: string, env: Record<string, string> = {}): Worker {
  mkdirSync(resolve(repo, ".dev"), { recursive: true });
  const log = createWriteStream(resolve(repo, `.dev/bench-${label}.log`));
  const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", script], {
    cwd: repo,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
    // Typed arrays (latencies) cross the channel as they are, not as JSON.
    serialization: "advanced",
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void; timer: NodeJS.Timeout }>();
  let nextId = 1;
  child.on("message", (message: Reply) => {
    const waiter = pending.get(message.id);
    if (waiter === undefined) return;
    pending.delete(message.id);
    clearTimeout(waiter.timer);
    if (message.ok) waiter.resolve(message.value);
    else waiter.reject(new Error(`${label}: ${message.error}`));
  });
  const exited = new Promise<void>((done) =>
    child.once("exit", (code, signal) => {
      for (const waiter of pending.values()) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error(`${label} exited (${code ?? signal}) before answering (see .dev/bench-${label}.log)`));
      }
      pending.clear();
      done();
    }),
  );
  return {
    label,
    pid: child.pid ?? -1,
    process: child,
    call<T>(command: string, args: unknown = {}, timeoutMs = 120_000): Promise<T> {
      const id = nextId++;
      return new Promise<T>((resolveCall, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${label}: ${command} did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, { resolve: resolveCall as (value: unknown) => void, reject, timer });
        child.send({ id, command, args } satisfies Request);
      });
    },
    async stop(graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const killed = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(killed);
    },
  };
}

/** The child side: runs each command's handler and sends back its result. Exits when the parent goes away. */
export function serveWorker(handlers: Record<string, (args: never) => unknown>): void {
  if (process.send === undefined) throw new Error("a worker must be started by startWorker (no IPC channel)");
  const send = process.send.bind(process);
  process.on("message", (request: Request) => {
    const handler = handlers[request.command];
    Promise.resolve()
      .then(() => {
        if (handler === undefined) throw new Error(`unknown command ${request.command}`);
        return handler(request.args as never);
      })
      .then(
        (value) => send({ id: request.id, ok: true, value } satisfies Reply),
        (error: unknown) => send({ id: request.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies Reply),
      );
  });
  process.on("disconnect", () => process.exit(0));
  process.on("SIGTERM", () => process.exit(0));
}
