// Diagnosis for the benchmarks: attach to a server process started with
// --inspect=127.0.0.1:<port> (Chrome DevTools protocol over the built-in
// WebSocket), run V8's CPU profiler (the one --cpu-prof uses) or its sampling
// heap profiler over exactly the window of interest, and summarize where the
// time or the memory went: by area (which package or part of the repo the
// code lives in) and by function.
//
// `node bench/profiles.ts <file.cpuprofile>` prints the summary of a profile
// written by --cpu-prof.
import { readFile } from "node:fs/promises";
import { round } from "./support.ts";

export interface Inspector {
  send<T = unknown>(method: string, params?: Record<string, unknown>): Promise<T>;
  /** Starts V8's CPU profiler (sampling every `intervalUs`). */
  startCpuProfile(intervalUs?: number): Promise<void>;
  stopCpuProfile(): Promise<CpuProfile>;
  /** Evaluates `expression` in the process and returns its JSON value. */
  evaluate<T = unknown>(expression: string): Promise<T>;
  close(): void;
}

/** Connects to the inspector listening on `port` (retries while the process starts). */
export async function attachInspector(port: number, timeoutMs = 15_000): Promise<Inspector> {
  const deadline = performance.now() + timeoutMs;
  let target: string | undefined;
  while (target === undefined) {
    try {
      const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
      target = list[0]?.webSocketDebuggerUrl;
    } catch (error) {
      if (performance.now() > deadline) throw new Error(`no inspector on port ${port}: ${(error as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  const socket = new WebSocket(target);
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener("open", () => resolve(), { once: true });
    socket.addEventListener("error", () => reject(new Error(`cannot connect to ${target}`)), { once: true });
  });
  let nextId = 1;
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message: string } };
    if (message.id === undefined) return;
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (message.error) waiter?.reject(new Error(message.error.message));
    else waiter?.resolve(message.result);
  });
  socket.addEventListener("close", () => {
    for (const waiter of pending.values()) waiter.reject(new Error("inspector closed"));
    pending.clear();
  });
  const send = <T>(method: string, params: Record<string, unknown> = {}) =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      socket.send(JSON.stringify({ id, method, params }));
    });
  return {
    send,
    async startCpuProfile(intervalUs = 1000) {
      await send("Profiler.enable");
      await send("Profiler.setSamplingInterval", { interval: intervalUs });
      await send("Profiler.start");
    },
    async stopCpuProfile() {
      const { profile } = await send<{ profile: CpuProfile }>("Profiler.stop");
      await send("Profiler.disable");
      return profile;
    },
    async evaluate<T>(expression: string) {
      const reply = await send<{ result: { value: T }; exceptionDetails?: { text: string } }>("Runtime.evaluate", { expression, returnByValue: true });
      if (reply.exceptionDetails) throw new Error(`evaluate failed: ${reply.exceptionDetails.text}`);
      return reply.result.value;
    },
    close: () => socket.close(),
  };
}

export type GcCounts = Record<string, { count: number; ms: number }>;

/**
 * Counts the process's garbage collections (a PerformanceObserver installed
 * through the inspector) from now until `read`: number and total pause by kind.
 */
export async function countGcs(inspector: Inspector): Promise<{ read(): Promise<GcCounts> }> {
  await inspector.evaluate(`(() => {
    const g = (globalThis.__benchGc ??= { entries: [] });
    g.entries = [];
    if (!g.observer) {
      g.observer = new PerformanceObserver((list) => { for (const e of list.getEntries()) g.entries.push([e.detail ? e.detail.kind : e.kind, e.duration]); });
      g.observer.observe({ entryTypes: ["gc"] });
    }
    return true;
  })()`);
  return {
    read: () =>
      inspector.evaluate<GcCounts>(`(() => {
        const names = { 1: "scavenge", 2: "minor mark-sweep", 4: "mark-sweep-compact (major)", 8: "incremental marking", 16: "weak callbacks" };
        const out = {};
        for (const [kind, ms] of globalThis.__benchGc.entries) {
          const entry = (out[names[kind] ?? String(kind)] ??= { count: 0, ms: 0 });
          entry.count += 1;
          entry.ms = Math.round((entry.ms + ms) * 10) / 10;
        }
        return out;
      })()`),
  };
}

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

export interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

export interface HeapSamplingNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapSamplingNode[];
}

export interface Breakdown {
  /** Busy CPU ms in the window (CPU profiles), or live bytes sampled (heap). */
  total: number;
  byArea: { area: string; percent: number }[];
  topFunctions: { fn: string; percent: number }[];
}

/** Where code lives, by its script URL: a package, a part of this repo, Node's internals, or V8 itself. */
export function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === "") return functionName.startsWith("(") ? functionName : "V8 builtins / native";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith("node:")) return `node:${url.slice(5).split("/").filter((p) => p !== "internal")[0] ?? ""}`;
  const own = /(services\/[^/]+\/src(?:\/[^/]+(?=\/))?)/.exec(url);
  if (own) return own[1]!;
  if (url.includes("/gen/")) return "gen (generated code)";
  return url.replace(/^file:\/\/\/?/, "");
}

function describe(frame: CallFrame): string {
  const where = frame.url === "" ? "" : ` ${frame.url.replace(/^(?:file:\/\/)?.*?\/(node_modules|services|gen|bench)\//, "$1/").replace(/^node_modules\//, "")}:${frame.lineNumber + 1}`;
  return `${frame.functionName || "(anonymous)"}${where}`;
}

function breakdown(entries: Iterable<[CallFrame, number]>, top = 15): Breakdown {
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  let total = 0;
  for (const [frame, amount] of entries) {
    total += amount;
    const area = areaOf(frame);
    areas.set(area, (areas.get(area) ?? 0) + amount);
    const fn = describe(frame);
    functions.set(fn, (functions.get(fn) ?? 0) + amount);
  }
  const share = (amount: number) => round((amount / Math.max(1, total)) * 100, 1);
  return {
    total,
    byArea: [...areas].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([area, amount]) => ({ area, percent: share(amount) })),
    topFunctions: [...functions].sort((a, b) => b[1] - a[1]).slice(0, top).map(([fn, amount]) => ({ fn, percent: share(amount) })),
  };
}

/** Self time of the busy samples (idle, program and GC are reported apart). */
export function summarizeCpuProfile(profile: CpuProfile): Breakdown & { gcPercent: number; programPercent: number } {
  const byId = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const busy: [CallFrame, number][] = [];
  for (const [id, us] of selfUs) {
    const frame = byId.get(id);
    if (frame === undefined || frame.functionName === "(idle)") continue;
    busy.push([frame, us]);
  }
  const summary = breakdown(busy);
  const part = (name: string) => round((busy.filter(([f]) => f.functionName === name).reduce((sum, [, us]) => sum + us, 0) / Math.max(1, summary.total)) * 100, 1);
  return { ...summary, total: Math.round(summary.total / 1000), gcPercent: part("(garbage collector)"), programPercent: part("(program)") };
}

/** Live bytes by the function that allocated them (a sampling heap profile). */
export function summarizeHeapSampling(head: HeapSamplingNode): Breakdown {
  const entries: [CallFrame, number][] = [];
  const walk = (node: HeapSamplingNode, depth: number) => {
    if (node.selfSize > 0) entries.push([node.callFrame, node.selfSize]);
    if (depth < 400) for (const child of node.children) walk(child, depth + 1);
  };
  walk(head, 0);
  return breakdown(entries);
}

if (import.meta.filename === process.argv[1]) {
  const file = process.argv[2];
  if (file === undefined) {
    console.error("usage: node bench/profiles.ts <file.cpuprofile>");
    process.exit(2);
  }
  const summary = summarizeCpuProfile(JSON.parse(await readFile(file, "utf8")) as CpuProfile);
  console.log(`busy ${summary.total} ms (GC ${summary.gcPercent} %, program ${summary.programPercent} %)`);
  for (const a of summary.byArea) console.log(`${String(a.percent).padStart(6)} %  ${a.area}`);
  console.log();
  for (const f of summary.topFunctions) console.log(`${String(f.percent).padStart(6)} %  ${f.fn}`);
}
