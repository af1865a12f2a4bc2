/**
 * A peer service that is down: an HTTP/2 server that answers every call with
 * UNAVAILABLE, in the gRPC protocol (trailers-only, grpc-status 14) or the
 * Connect protocol (HTTP 503 with a JSON error), whichever the caller speaks.
 *
 * Why not a port that was bound and released: while a test runs, another
 * test file's server may be handed that port by the kernel and answer with
 * something else (a TCP server that drops connections reads as CANCELED).
 * This server keeps the port for the test's whole life.
 */
import { constants, createServer, type Http2Server, type ServerHttp2Session } from "node:http2";

export interface UnavailablePeer {
  url: string;
  /** How many calls it has refused. */
  calls(): number;
  close(): Promise<void>;
}

const MESSAGE = "the test's peer is down";

export async function startUnavailablePeer(): Promise<UnavailablePeer> {
  let calls = 0;
  const server: Http2Server = createServer();
  const sessions = new Set<ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  server.on("stream", (stream, headers) => {
    calls++;
    const contentType = String(headers[constants.HTTP2_HEADER_CONTENT_TYPE] ?? "");
    stream.on("error", () => undefined);
    if (contentType.startsWith("application/grpc")) {
      stream.respond({ ":status": 200, "content-type": contentType, "grpc-status": "14", "grpc-message": encodeURIComponent(MESSAGE) }, { endStream: true });
      return;
    }
    stream.respond({ ":status": 503, "content-type": "application/json" });
    stream.end(JSON.stringify({ code: "unavailable", message: MESSAGE }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (typeof address !== "object" || address === null) throw new Error("unavailable peer: no address");
  return {
    url: `http://127.0.0.1:${address.port}`,
    calls: () => calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Open client sessions would hold close() until they idle out.
        for (const session of sessions) session.destroy();
      }),
  };
}
