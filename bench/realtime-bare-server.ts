// The reference of bench/realtime.ts's idle-streams scenario: a bare
// node:http2 server (no connect, no runtime) that answers every request as a
// gRPC server stream that never ends: response headers, then nothing. What
// 10,000 such streams cost is the transport's share of a held stream. Same
// HTTP/2 settings as the runtime's server (1,000 concurrent streams per
// connection). Prints its URL on stdout and serves until killed.
import http2 from "node:http2";

const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
server.on("stream", (stream) => {
  stream.on("error", () => {});
  stream.respond({ ":status": 200, "content-type": "application/grpc" });
  // Read (and drop) the request message, as a server would.
  stream.resume();
});
server.on("sessionError", () => {});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address !== null && typeof address === "object") console.log(JSON.stringify({ url: `http://127.0.0.1:${address.port}` }));
});
process.on("SIGTERM", () => process.exit(0));
