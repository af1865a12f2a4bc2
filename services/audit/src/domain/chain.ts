// The hash chain. An entry's hash is SHA-256 over a canonical encoding of
// its position (seq), the previous entry's hash and every recorded field, so
// changing any of them, or removing or reordering entries, shows at that
// entry (its hash) or the next one (its link).
import { createHash } from "node:crypto";

/** The previous hash of entry 1. */
export const GENESIS_HASH = "0".repeat(64);

export interface EntryFields {
  readonly occurredAt: Date;
  readonly kind: string;
  /** Undefined: the system or an anonymous caller. */
  readonly actorId: string | undefined;
  readonly subject: string;
  readonly details: Readonly<Record<string, string>>;
  readonly sourceEventId: string;
}

export interface ChainedEntry extends EntryFields {
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
}

/**
 * The bytes hashed: a JSON array in a fixed order, details as [key, value]
 * pairs sorted by key (jsonb does not keep key order), the time as ISO-8601
 * in milliseconds (what timestamptz round-trips from a JS Date).
 */
export function canonicalEncoding(seq: number, prevHash: string, fields: EntryFields): string {
  const details = Object.keys(fields.details)
    .sort()
    .map((key) => [key, fields.details[key] ?? ""]);
  return JSON.stringify([1, seq, prevHash, fields.occurredAt.toISOString(), fields.kind, fields.actorId ?? "", fields.subject, details, fields.sourceEventId]);
}

export function entryHash(seq: number, prevHash: string, fields: EntryFields): string {
  return createHash("sha256").update(canonicalEncoding(seq, prevHash, fields)).digest("hex");
}

/** Links `fields` after the entry (seq, hash), or as the first one. */
export function chain(previous: { seq: number; hash: string } | undefined, fields: EntryFields): ChainedEntry {
  const seq = (previous?.seq ?? 0) + 1;
  const prevHash = previous?.hash ?? GENESIS_HASH;
  return { ...fields, seq, prevHash, hash: entryHash(seq, prevHash, fields) };
}

export type ChainProblem = "hash" | "link" | "gap";

/**
 * Checks `rows` (in seq order) following `previous`; the first entry that
 * does not fit, or undefined when all do.
 */
export function firstBreak(previous: { seq: number; hash: string }, rows: readonly ChainedEntry[]): { seq: number; problem: ChainProblem } | undefined {
  let last = previous;
  for (const row of rows) {
    if (row.seq !== last.seq + 1) return { seq: last.seq + 1, problem: "gap" };
    if (row.prevHash !== last.hash) return { seq: row.seq, problem: "link" };
    if (entryHash(row.seq, row.prevHash, row) !== row.hash) return { seq: row.seq, problem: "hash" };
    last = row;
  }
  return undefined;
}
