// The reference for `make bench`: a bare connect-node server (no runtime, no
// interceptors) answering grpc.health.v1.Health/Check with SERVING. Prints its
// URL on stdout and serves until killed.
import http2 from "node:http2";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { HealthService, ServingStatus } from "@aviary/runtime/health";

const server = http2.createServer(
  connectNodeAdapter({
    routes: (router) => router.service(HealthService, { check: () => ({ status: ServingStatus.SERVING }) }),
  }),
);
// A clean exit on SIGTERM, so that `--cpu-prof` (bench/ladder.ts BENCH_LADDER_PROFILE) writes its profile.
process.once("SIGTERM", () => process.exit(0));
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address !== null && typeof address === "object") console.log(JSON.stringify({ url: `http://127.0.0.1:${address.port}` }));
});
