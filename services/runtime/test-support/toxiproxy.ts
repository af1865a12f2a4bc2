/**
 * Toxiproxy (a real TCP fault proxy, built once by `infra.sh tool toxiproxy`)
 * driven through its HTTP API: proxies in front of PostgreSQL, Redis and
 * Kafka, and the faults the chaos harness puts on them — latency, connection
 * resets, and a partition (the proxy disabled: it refuses new connections and
 * drops the open ones).
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "./envoy.ts";
import { infraSh } from "./infra.ts";
import { startServerBinary, type RunningServerBinary } from "./server-binary.ts";

/** The toxics this harness uses; attributes as toxiproxy names them. */
export type Toxic =
  | { type: "latency"; attributes: { latency: number; jitter: number } }
  /** Resets connections (TCP RST) once they have been open `timeout` ms (0: at once). */
  | { type: "reset_peer"; attributes: { timeout: number } };

export interface Proxy {
  name: string;
  /** Where clients connect: 127.0.0.1:<port>. */
  listen: string;
  port: number;
}

export interface Toxiproxy {
  apiUrl: string;
  /** A proxy listening on `port` (a fresh one when omitted) in front of `upstream` (host:port). */
  createProxy(name: string, upstream: string, port?: number): Promise<Proxy>;
  setUpstream(name: string, upstream: string): Promise<void>;
  /** Disabled = partitioned: new connections are refused, open ones closed. */
  setEnabled(name: string, enabled: boolean): Promise<void>;
  /** Adds `toxic` on both directions of the proxy's traffic; removed with removeToxics. */
  addToxic(proxy: string, toxic: Toxic): Promise<void>;
  removeToxics(proxy: string): Promise<void>;
  /** Every proxy enabled, every toxic removed. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export async function startToxiproxy(): Promise<Toxiproxy> {
  const binary = (await infraSh(["tool", "toxiproxy"])).trim();
  const port = await freePort();
  const apiUrl = `http://127.0.0.1:${port}`;
  const dir = await mkdtemp(path.join(tmpdir(), "aviary-toxiproxy-"));
  const server: RunningServerBinary = await startServerBinary({
    name: "toxiproxy",
    binary,
    args: ["-host", "127.0.0.1", "-port", String(port)],
    dir,
    ready: async () => (await fetch(`${apiUrl}/version`).catch(() => undefined))?.ok === true,
  });
  const call = async (method: string, route: string, body?: unknown): Promise<unknown> => {
    const response = await fetch(`${apiUrl}${route}`, {
      method,
      headers: { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`toxiproxy ${method} ${route}: ${response.status} ${text}`);
    return text === "" ? undefined : JSON.parse(text);
  };
  const toxicNames = new Map<string, string[]>();
  return {
    apiUrl,
    async createProxy(name, upstream, listenPort) {
      const chosen = listenPort ?? (await freePort());
      await call("POST", "/proxies", { name, listen: `127.0.0.1:${chosen}`, upstream, enabled: true });
      return { name, listen: `127.0.0.1:${chosen}`, port: chosen };
    },
    async setUpstream(name, upstream) {
      await call("POST", `/proxies/${name}`, { upstream });
    },
    async setEnabled(name, enabled) {
      await call("POST", `/proxies/${name}`, { enabled });
    },
    async addToxic(proxy, toxic) {
      const names = toxicNames.get(proxy) ?? [];
      for (const stream of ["upstream", "downstream"] as const) {
        const name = `${toxic.type}_${stream}_${names.length}`;
        await call("POST", `/proxies/${proxy}/toxics`, { name, type: toxic.type, stream, toxicity: 1, attributes: toxic.attributes });
        names.push(name);
      }
      toxicNames.set(proxy, names);
    },
    async removeToxics(proxy) {
      for (const name of toxicNames.get(proxy) ?? []) await call("DELETE", `/proxies/${proxy}/toxics/${name}`);
      toxicNames.delete(proxy);
    },
    async reset() {
      await call("POST", "/reset");
      toxicNames.clear();
    },
    stop: () => server.stop(),
  };
}
