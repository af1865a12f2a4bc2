// Responses a handler hands out again and again unchanged (a cached feed
// page) are encoded once: the handler marks the message as unchanging, and
// the grpc-js listener's serializer keeps its bytes for as long as the
// message itself lives. Encoding a page of 20 posts was several percent of a
// cached GetHomeFeed's CPU; the Connect listener encodes on its own, as before.
import { toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";

/** Messages marked unchanging (the keys), with their bytes once encoded. */
const encodings = new WeakMap<object, Uint8Array | undefined>();

/**
 * Marks `message` (a whole response) as never modified again, so its
 * encoding may be reused for every call that returns this same object.
 * Modifying it afterwards would send stale bytes: build a new message instead.
 */
export function unchanging<T extends object>(message: T): T {
  if (!encodings.has(message)) encodings.set(message, undefined);
  return message;
}

/** toBinary, remembered for messages marked `unchanging`. */
export function encodeMessage<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Uint8Array {
  if (!encodings.has(message)) return toBinary(schema, message);
  let bytes = encodings.get(message);
  if (bytes === undefined) {
    bytes = toBinary(schema, message);
    encodings.set(message, bytes);
  }
  return bytes;
}
