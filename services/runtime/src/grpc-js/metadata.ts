// What crosses between connect's view of a call (Headers, ConnectError) and
// @grpc/grpc-js's (Metadata, a status object), both ways, so interceptors and
// handlers written for connect see the same headers and errors whichever
// library carries the call.
//
// The error encoding is connect's own (setTrailerStatus / findTrailerError):
// an error's details travel as a google.rpc.Status in grpc-status-details-bin,
// exactly as connect-node writes them, so a connect client, a grpc-js client
// and the edge read the same details from either server.
import { Metadata, type StatusObject, type status as GrpcStatus } from "@grpc/grpc-js";
import { Code, ConnectError } from "@connectrpc/connect";
import { findTrailerError, headerGrpcMessage, headerGrpcStatus, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";

// Headers grpc-js owns on the wire (it sets them from its own state and
// refuses or ignores them in metadata); they are never copied into Metadata.
const TRANSPORT_HEADERS = new Set(["content-type", "te", "user-agent", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "accept-encoding", "grpc-status", "grpc-message", "connection", "host"]);

/**
 * Metadata as connect's Headers: text values as they are, binary ("-bin")
 * values base64-encoded, which is how connect exposes binary headers.
 */
export function headersFromMetadata(metadata: Metadata, into: Headers = new Headers()): Headers {
  const wire = metadata.toHttp2Headers();
  for (const key in wire) {
    const value = wire[key];
    if (Array.isArray(value)) for (const v of value) into.append(key, v);
    else if (value !== undefined) into.append(key, String(value));
  }
  return into;
}

/** Headers as grpc-js Metadata (base64 "-bin" values decoded), without the headers grpc-js sets itself. */
export function metadataFromHeaders(headers: Headers, into: Metadata = new Metadata()): Metadata {
  headers.forEach((value, key) => {
    if (TRANSPORT_HEADERS.has(key) || key.startsWith(":")) return;
    // Headers joins repeated values with ", "; base64 has neither character.
    if (key.endsWith("-bin")) for (const part of value.split(/,\s*/)) into.add(key, Buffer.from(part, "base64"));
    else into.add(key, value);
  });
  return into;
}

/**
 * The status grpc-js sends for `error`: its code and message, and as
 * trailers its metadata plus grpc-status-details-bin when it has details.
 */
export function statusFromError(error: ConnectError): StatusObject {
  const trailer = setTrailerStatus(new Headers(), error);
  trailer.delete(headerGrpcStatus);
  trailer.delete(headerGrpcMessage);
  // connect's codes are gRPC's status codes, number for number.
  return { code: error.code as number as GrpcStatus, details: error.rawMessage, metadata: metadataFromHeaders(trailer) };
}

/** A status grpc-js reported to a client, as the ConnectError a connect transport would have raised for it. */
export function errorFromStatus(status: Pick<StatusObject, "code" | "details" | "metadata">): ConnectError {
  const trailer = headersFromMetadata(status.metadata);
  trailer.set(headerGrpcStatus, String(status.code));
  trailer.set(headerGrpcMessage, encodeURIComponent(status.details));
  return findTrailerError(trailer) ?? new ConnectError(status.details, Code.Unknown, trailer);
}
