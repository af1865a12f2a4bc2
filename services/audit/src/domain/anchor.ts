// Anchors of the chain head, kept outside the database. The chain alone
// shows an edited or removed entry, but someone able to write the database
// can rewrite the whole tail consistently (every hash recomputed). An anchor
// is the head's (seq, hash) written to object storage at an interval: the
// tail up to the latest anchor can no longer be rewritten unseen, because
// the entry at the anchored seq must still carry the anchored hash, and
// every entry before it is bound to that hash through the links.

export interface Anchor {
  readonly seq: number;
  readonly hash: string;
  readonly anchoredAt: Date;
}

/** The format version of an anchor object. */
const ANCHOR_VERSION = 1;

/** Anchor objects are small; more than this is not one of ours. */
export const ANCHOR_MAX_BYTES = 4096;

/** The object that always holds the newest anchor (what VerifyChain compares with). */
export const LATEST_ANCHOR_KEY = "anchors/latest.json";

/** Every anchor is also kept under its seq, zero-padded so the keys sort in chain order: the history of the head. */
export function anchorHistoryKey(seq: number): string {
  return `anchors/${String(seq).padStart(20, "0")}.json`;
}

export function anchorDocument(anchor: Anchor): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ version: ANCHOR_VERSION, seq: anchor.seq, hash: anchor.hash, anchored_at: anchor.anchoredAt.toISOString() }));
}

/** The anchor in `bytes`; throws on anything else (an unreadable anchor must not pass for "none"). */
export function parseAnchor(bytes: Uint8Array): Anchor {
  const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
  if (typeof value !== "object" || value === null) throw new Error("anchor: not an object");
  const { version, seq, hash, anchored_at: anchoredAt } = value as Record<string, unknown>;
  if (version !== ANCHOR_VERSION) throw new Error(`anchor: unknown version ${String(version)}`);
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 1) throw new Error("anchor: bad seq");
  if (typeof hash !== "string" || !/^[0-9a-f]{64}$/.test(hash)) throw new Error("anchor: bad hash");
  const at = typeof anchoredAt === "string" ? new Date(anchoredAt) : new Date(Number.NaN);
  if (Number.isNaN(at.getTime())) throw new Error("anchor: bad anchored_at");
  return { seq, hash, anchoredAt: at };
}
