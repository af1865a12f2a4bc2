// The realtime stream as a REST client reads it through the edge
// (GET /v1/realtime/stream, newline-delimited JSON), for the edge tests of
// every service that delivers to streams.
import http from "node:http";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { SubscribeResponseSchema, type SubscribeResponse } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import type { Device } from "./harness.ts";

export interface RestStream {
  /** Every JSON line so far, parsed, in arrival order (an error answered before any frame: one JSON status). */
  readonly lines: unknown[];
  /** Settles when the response ends (or the request is closed). */
  readonly done: Promise<void>;
  close(): void;
}

/** GET /v1/realtime/stream with curl's manners: one JSON frame per line, read as they come. */
export function restStream(base: string, device: Device, query: string): RestStream {
  const lines: unknown[] = [];
  let request: http.ClientRequest | undefined;
  const done = new Promise<void>((resolve, reject) => {
    request = http.get(`${base}/v1/realtime/stream${query}`, { headers: device.call.headers }, (res) => {
      let buffer = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        let nl: number;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (line !== "") lines.push(JSON.parse(line));
        }
      });
      res.on("end", () => {
        // An error answered before any frame is one JSON status without a newline.
        if (buffer.trim() !== "") lines.push(JSON.parse(buffer));
        resolve();
      });
      res.on("error", () => resolve());
    });
    request.on("error", (e) => (request?.destroyed ? resolve() : reject(e)));
  });
  return { lines, done, close: () => request?.destroy() };
}

/** A line as the frame a gRPC, gRPC-web or Connect client would have decoded (the transcoder writes proto3 JSON). */
export function restFrame(line: unknown): SubscribeResponse {
  return fromJson(SubscribeResponseSchema, line as JsonValue);
}
