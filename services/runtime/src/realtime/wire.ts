// The live-channel message format shared by the Redis scripts and the adapter:
// `epoch \n offset \n id \n payload`, payload as raw bytes (no base64: it is
// the last field, so it may contain anything). Ephemeral items have an empty
// epoch and offset 0. Presence changes are `state \n lastSeenMs`.
import type { LiveItem, PresenceState } from "./user-streams.ts";

const NL = 0x0a;

export function encodeLiveItem(item: LiveItem): Buffer {
  return Buffer.concat([Buffer.from(`${item.epoch}\n${item.offset}\n${item.id}\n`, "utf8"), item.payload]);
}

export function decodeLiveItem(message: Buffer): LiveItem | undefined {
  const a = message.indexOf(NL);
  const b = a < 0 ? -1 : message.indexOf(NL, a + 1);
  const c = b < 0 ? -1 : message.indexOf(NL, b + 1);
  if (c < 0) return undefined;
  const offset = Number(message.toString("latin1", a + 1, b));
  if (!Number.isSafeInteger(offset) || offset < 0) return undefined;
  return {
    epoch: message.toString("utf8", 0, a),
    offset,
    id: message.toString("utf8", b + 1, c),
    // A copy: the subscriber may reuse its buffer.
    payload: new Uint8Array(message.subarray(c + 1)),
  };
}

const STATES = new Set<string>(["offline", "online", "away"]);

export function decodePresence(message: string): { state: PresenceState; lastSeenMs: number | undefined } | undefined {
  const [state, seen] = message.split("\n");
  if (state === undefined || !STATES.has(state)) return undefined;
  const lastSeenMs = seen ? Number(seen) : undefined;
  return { state: state as PresenceState, lastSeenMs: lastSeenMs !== undefined && Number.isFinite(lastSeenMs) ? lastSeenMs : undefined };
}
