// Worker processes of bench/notification.ts (started by startWorker, so each
// one's CPU is its own, from /proc):
//
//   server   the local APNs of the notification tests
//            (services/notification/test/providers/apns-server.ts: HTTP/2
//            over TLS, provider-token check, Apple's answers), plus a window
//            of what reached it: requests arrived and answered, the first
//            arrival and the last answer on the shared monotonic clock, the
//            most streams open at once, and the statuses answered.
//   client   the reference: the same kind of POSTs straight from a bare
//            node:http2 session, N in flight, to that server.
//
// Times are process.hrtime (CLOCK_MONOTONIC, one clock for every process on
// the machine) in milliseconds, so the parent compares them with its own.
import http2 from "node:http2";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { serveWorker } from "./workers.ts";
import { startApnsServer, type ApnsServer } from "../services/notification/test/providers/apns-server.ts";

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

export interface ApnsWindow {
  arrived: number;
  answered: number;
  firstArrivalMs: number;
  lastAnswerMs: number;
  maxInFlight: number;
  /** HTTP status → how many, of the requests the server recorded in the window. */
  statuses: Record<string, number>;
}

export interface BlastResult {
  startMs: number;
  endMs: number;
  statuses: Record<string, number>;
}

// The APNs test server creates its own http2 server and does not hand it out;
// to see streams arrive and close, the factory is wrapped before it is called.
let captured: http2.Http2SecureServer | undefined;
const createSecureServer = http2.createSecureServer;
(http2 as { createSecureServer: unknown }).createSecureServer = (...args: Parameters<typeof createSecureServer>) => {
  const server = createSecureServer(...args);
  captured = server;
  return server;
};

let apns: ApnsServer | undefined;
let recordedAtMark = 0;
let window = freshWindow();
let inFlight = 0;

function freshWindow() {
  return { arrived: 0, answered: 0, firstArrivalMs: Number.NaN, lastAnswerMs: Number.NaN, maxInFlight: 0 };
}

let session: http2.ClientHttp2Session | undefined;

serveWorker({
  /** Starts the local APNs; returns its URL and the CA to trust. */
  async start(args: { teamId: string; keyId: string; publicKey: string; topic: string }) {
    apns = await startApnsServer(args);
    if (captured === undefined) throw new Error("the APNs test server did not create its http2 server through http2.createSecureServer");
    captured.on("stream", (stream) => {
      window.arrived += 1;
      if (Number.isNaN(window.firstArrivalMs)) window.firstArrivalMs = nowMs();
      inFlight += 1;
      window.maxInFlight = Math.max(window.maxInFlight, inFlight);
      stream.once("close", () => {
        inFlight -= 1;
        window.answered += 1;
        window.lastAnswerMs = nowMs();
      });
    });
    return { url: apns.url, ca: apns.ca };
  },
  /** Starts a new window (and forgets the requests recorded so far: the server keeps every one). */
  mark() {
    window = freshWindow();
    recordedAtMark = apns?.requests.length ?? 0;
    return null;
  },
  stats(): ApnsWindow {
    const statuses: Record<string, number> = {};
    for (const request of apns?.requests.slice(recordedAtMark) ?? []) {
      const key = request.status === undefined ? "none" : `${request.status}${request.reason ? ` ${request.reason}` : ""}`;
      statuses[key] = (statuses[key] ?? 0) + 1;
    }
    return { ...window, statuses };
  },

  /** Client side: one HTTP/2 session to the server, opened (TLS handshake done) before anything is timed. */
  async connect(args: { url: string; ca: string }) {
    session = http2.connect(args.url, { ca: args.ca });
    session.on("error", () => undefined);
    await once(session, "connect");
    return null;
  },
  /**
   * POSTs one alert per token, `concurrency` in flight on the session, each
   * with the headers and the kind of payload the APNs adapter sends; resolves
   * once every one is answered.
   */
  async blast(args: { jwt: string; topic: string; tokens: string[]; concurrency: number }): Promise<BlastResult> {
    const s = session;
    if (s === undefined) throw new Error("connect first");
    const statuses: Record<string, number> = {};
    let next = 0;
    const post = (token: string) =>
      new Promise<number>((resolve, reject) => {
        const id = randomUUID();
        const body = JSON.stringify({
          notification_id: id,
          group_id: "bench-group",
          kind: "like",
          post_id: id,
          aps: { alert: { title: "Aviary", body: "Someone liked your post" }, badge: 1, sound: "default", "thread-id": "bench-group" },
        });
        const stream = s.request({
          ":method": "POST",
          ":path": `/3/device/${token}`,
          authorization: `bearer ${args.jwt}`,
          "apns-topic": args.topic,
          "apns-push-type": "alert",
          "apns-priority": "10",
          "apns-expiration": String(Math.floor(Date.now() / 1000) + 86_400),
          "apns-collapse-id": "bench-group",
          "apns-id": id,
          "content-type": "application/json",
        });
        let status = 0;
        stream.on("response", (headers) => (status = Number(headers[":status"])));
        stream.on("data", () => undefined);
        stream.on("end", () => resolve(status));
        stream.on("error", reject);
        stream.end(body);
      });
    const startMs = nowMs();
    await Promise.all(
      Array.from({ length: Math.min(args.concurrency, args.tokens.length) }, async () => {
        while (next < args.tokens.length) {
          const status = await post(args.tokens[next++]!);
          statuses[String(status)] = (statuses[String(status)] ?? 0) + 1;
        }
      }),
    );
    return { startMs, endMs: nowMs(), statuses };
  },
  async closeAll() {
    session?.close();
    await apns?.close();
    return null;
  },
});
