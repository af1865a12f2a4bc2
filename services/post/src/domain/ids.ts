// Ids for posts and comments: UUIDv7 (RFC 9562), time-ordered. Lists sort by
// (created_at, id); two rows created in the same millisecond then still come
// out in creation order (within one instance), instead of in random order.
import { randomBytes } from "node:crypto";

let lastMs = 0;
let counter = 0;

/** A UUIDv7; ids from one process increase strictly (a 12-bit counter orders ids within a millisecond). */
export function newId(nowMs: number = Date.now()): string {
  let ms = Math.max(nowMs, lastMs);
  if (ms === lastMs) {
    counter += 1;
    if (counter > 0xfff) {
      // 4096 ids in one millisecond: borrow the next one.
      ms += 1;
      counter = 0;
    }
  } else {
    counter = 0;
  }
  lastMs = ms;
  const bytes = randomBytes(16);
  bytes.writeUIntBE(ms, 0, 6);
  bytes[6] = 0x70 | (counter >> 8);
  bytes[7] = counter & 0xff;
  bytes[8] = 0x80 | ((bytes[8] ?? 0) & 0x3f);
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
