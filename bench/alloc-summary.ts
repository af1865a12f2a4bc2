// What bench/alloc-sampler.ts reports: a sampling heap profile's bytes per
// call, by the npm package or repo file that allocated them.
import { fileURLToPath } from "node:url";

export interface ProfileNode {
  callFrame: { url: string };
  selfSize: number;
  children?: ProfileNode[];
}

export interface AllocationSummary {
  calls: number;
  bytes: number;
  bytesPerCall: number;
  /** Largest first. */
  byOrigin: Array<{ origin: string; bytesPerCall: number; share: number }>;
}

/** How long a reader of the summaries waits for one after a window closes (it is written within milliseconds; this is for a busy machine). */
export const SUMMARY_WAIT_MS = 30_000;

const repoRoot = fileURLToPath(new URL("..", import.meta.url));

/** The npm package or the repo file a frame's script belongs to; undefined for Node's internals and native code. */
export function originOf(url: string): string | undefined {
  if (url === "" || url.startsWith("node:")) return undefined;
  const path = url.startsWith("file://") ? fileURLToPath(url) : url;
  const modules = path.lastIndexOf("/node_modules/");
  if (modules >= 0) {
    const [scope = "", name = ""] = path.slice(modules + "/node_modules/".length).split("/");
    return scope.startsWith("@") ? `${scope}/${name}` : scope;
  }
  return path.startsWith(repoRoot) ? path.slice(repoRoot.length) : path;
}

export function summarize(head: ProfileNode, calls: number): AllocationSummary {
  const byOrigin = new Map<string, number>();
  let bytes = 0;
  const walk = (node: ProfileNode, inherited: string) => {
    const origin = originOf(node.callFrame.url) ?? inherited;
    if (node.selfSize > 0) {
      bytes += node.selfSize;
      byOrigin.set(origin, (byOrigin.get(origin) ?? 0) + node.selfSize);
    }
    for (const child of node.children ?? []) walk(child, origin);
  };
  walk(head, "(node internals, no caller of ours)");
  const perCall = (n: number) => Math.round(n / Math.max(1, calls));
  return {
    calls,
    bytes,
    bytesPerCall: perCall(bytes),
    byOrigin: [...byOrigin.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([origin, n]) => ({ origin, bytesPerCall: perCall(n), share: Math.round((n / Math.max(1, bytes)) * 1000) / 1000 })),
  };
}
