// The soak benchmark's system under test, in its own process so the load
// generator's memory and event loop are not in what bench/soak.ts samples:
// the whole mesh behind a real Envoy on the real infrastructure
// (services/runtime/test-support/mesh.ts). Writes where everything listens to
// SOAK_MESH_INFO, then announces the edge URL on stdout (bench/support.ts
// spawnServer); stops everything and drops its databases on SIGTERM.
import { writeFile } from "node:fs/promises";
import { startTestMesh } from "../services/runtime/test-support/mesh.ts";

const infoPath = process.env["SOAK_MESH_INFO"];
if (!infoPath) throw new Error("SOAK_MESH_INFO is not set (bench/soak.ts sets it)");
// Tokens last the whole run (the auth service's maximum), so the load never has to refresh them.
const mesh = await startTestMesh({ envoy: { discardOutput: true }, env: { auth: { AUTH_ACCESS_TOKEN_TTL: "1h" } } });
await writeFile(infoPath, JSON.stringify({ url: mesh.envoy.url, adminUrl: mesh.envoy.adminUrl, upstreams: mesh.upstreams }));
console.log(JSON.stringify({ url: mesh.envoy.url }));
process.once("SIGTERM", () => {
  void mesh.close().finally(() => process.exit(0));
});
