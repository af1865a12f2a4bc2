// A service as a process of its own, for tests that SIGKILL it mid-work.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import path from "node:path";
import { repoRoot } from "./infra.ts";

export interface ServiceProcessOptions {
  /** The entry point, relative to the repository (e.g. "services/feed/src/main.ts"). */
  entry: string;
  env: Record<string, string>;
  /** A line of the service's log that says it is up (its "… listening" message). */
  ready: string;
  /** How long to wait for `ready` (default 60 s). */
  timeoutMs?: number;
  /** A file the whole output is appended to (long runs that want the logs afterwards). */
  logFile?: string;
}

/** Starts the process with LOG_LEVEL info; resolves once its log shows `ready`, rejects with its output if it exits first. */
export async function startServiceProcess(options: ServiceProcessOptions): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", path.join(repoRoot, options.entry)], {
    env: { ...process.env, ...options.env, LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  if (options.logFile !== undefined) {
    const log = createWriteStream(options.logFile, { flags: "a" });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
  }
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Not returned, so nobody else could stop it: a child left running keeps the test worker alive.
      child.kill("SIGKILL");
      reject(new Error(`${options.entry} did not start:\n${output.slice(-2000)}`));
    }, options.timeoutMs ?? 60_000);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`${options.entry} exited (${code}):\n${output.slice(-2000)}`));
    };
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(options.ready)) {
        clearTimeout(timer);
        child.off("exit", onExit);
        resolve();
      }
    });
    child.stderr!.on("data", (chunk: Buffer) => void (output += chunk.toString()));
    child.on("exit", onExit);
  });
  // Keep draining its output so a chatty child never blocks on a full pipe.
  child.stdout!.resume();
  child.stderr!.resume();
  return child;
}
