/**
 * A server binary a test starts for itself (Jaeger; the Prometheus support
 * does the same by hand): spawned with the tail of its output kept for error
 * messages, polled until `ready` says so or it exits, stopped with SIGTERM,
 * its temp dir removed.
 */
import { spawn } from "node:child_process";
import { rm } from "node:fs/promises";

export interface RunningServerBinary {
  output(): string;
  stop(): Promise<void>;
}

export async function startServerBinary(options: {
  name: string;
  binary: string;
  args: string[];
  /** Removed on stop. */
  dir: string;
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
}): Promise<RunningServerBinary> {
  const child = spawn(options.binary, options.args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-64 * 1024);
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    await rm(options.dir, { recursive: true, force: true });
  };
  const timeoutMs = options.readyTimeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`${options.name} exited with ${child.exitCode}:\n${output.slice(-4000)}`);
    }
    if (await options.ready()) return { output: () => output, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${options.name} not ready within ${timeoutMs} ms:\n${output.slice(-4000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
