// The hash chain. An entry's hash is SHA-256 over a canonical encoding of
// its position (seq), the previous entry's hash and every recorded field, so
// changing any of them, or removing or reordering entries, shows at that
// entry (its hash) or the next one (its link).
//
// Two rules, by `chainVersion`. Version 1 (entries recorded before erasure
// existed) hashes the personal fields in clear. Version 2 hashes a salted
// digest of each personal field instead — the actor, the subject and each
// detail value, each with a salt of its own — so erasing a field (its
// cleartext and its salt, the digest stays) leaves the hash as it was and
// the id can neither be read back nor confirmed by guessing.
import { createHash, createHmac, randomBytes } from "node:crypto";

/** The previous hash of entry 1. */
export const GENESIS_HASH = "0".repeat(64);

/** What an entry is appended with (events/entries.ts makes these). */
export interface EntryFields {
  readonly occurredAt: Date;
  readonly kind: string;
  /** Undefined: the system or an anonymous caller. */
  readonly actorId: string | undefined;
  readonly subject: string;
  readonly details: Readonly<Record<string, string>>;
  readonly sourceEventId: string;
}

/**
 * An entry as stored. Version 1 has no salts or digests. In version 2 each
 * personal field has a salt and a digest; an erased field has neither
 * cleartext nor salt but keeps its digest (for details: its key stays in
 * `detailsDigests`, leaves `details` and `detailsSalts`). An absent actor
 * has no digest at all.
 */
export interface ChainedEntry {
  readonly seq: number;
  readonly chainVersion: number;
  readonly occurredAt: Date;
  readonly kind: string;
  readonly actorId: string | undefined;
  readonly actorSalt: string | undefined;
  readonly actorDigest: string | undefined;
  /** Undefined once erased. */
  readonly subject: string | undefined;
  readonly subjectSalt: string | undefined;
  readonly subjectDigest: string | undefined;
  readonly details: Readonly<Record<string, string>>;
  readonly detailsSalts: Readonly<Record<string, string>> | undefined;
  readonly detailsDigests: Readonly<Record<string, string>> | undefined;
  readonly sourceEventId: string;
  /** Set by an erasure (version 1 entries then verify by their link only). */
  readonly erasedAt: Date | undefined;
  readonly prevHash: string;
  readonly hash: string;
}

/** The rule new entries are chained with. */
export const CURRENT_CHAIN_VERSION = 2;

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** A personal field's digest: HMAC-SHA256 keyed by its own salt, so without the salt a guessed value cannot be checked. */
export function fieldDigest(salt: string, value: string): string {
  return createHmac("sha256", Buffer.from(salt, "hex")).update(value).digest("hex");
}

const newSalt = () => randomBytes(16).toString("hex");

const sortedPairs = (values: Readonly<Record<string, string>>) =>
  Object.keys(values)
    .sort()
    .map((key) => [key, values[key] ?? ""]);

/**
 * Version 1's bytes: a JSON array in a fixed order, details as [key, value]
 * pairs sorted by key (jsonb does not keep key order), the time as ISO-8601
 * in milliseconds (what timestamptz round-trips from a JS Date).
 */
export function canonicalEncodingV1(seq: number, prevHash: string, fields: EntryFields): string {
  return JSON.stringify([1, seq, prevHash, fields.occurredAt.toISOString(), fields.kind, fields.actorId ?? "", fields.subject, sortedPairs(fields.details), fields.sourceEventId]);
}

/** Version 2's bytes: the same order, the digests in place of the personal values ("" for an absent actor). */
export function canonicalEncodingV2(seq: number, prevHash: string, entry: Pick<ChainedEntry, "occurredAt" | "kind" | "actorDigest" | "subjectDigest" | "detailsDigests" | "sourceEventId">): string {
  return JSON.stringify([2, seq, prevHash, entry.occurredAt.toISOString(), entry.kind, entry.actorDigest ?? "", entry.subjectDigest ?? "", sortedPairs(entry.detailsDigests ?? {}), entry.sourceEventId]);
}

/** The hash an entry should have under its version's rule; undefined for a version 1 entry whose cleartext was erased. */
export function expectedHash(entry: ChainedEntry): string | undefined {
  if (entry.chainVersion === 2) return sha256(canonicalEncodingV2(entry.seq, entry.prevHash, entry));
  // An unknown rule matches no hash.
  if (entry.chainVersion !== 1) return "";
  if (entry.erasedAt !== undefined || entry.subject === undefined) return undefined;
  return sha256(canonicalEncodingV1(entry.seq, entry.prevHash, { ...entry, subject: entry.subject }));
}

/** Links `fields` after the entry (seq, hash), or as the first one, under the current rule with fresh salts. */
export function chain(previous: { seq: number; hash: string } | undefined, fields: EntryFields): ChainedEntry {
  const seq = (previous?.seq ?? 0) + 1;
  const prevHash = previous?.hash ?? GENESIS_HASH;
  const actorSalt = fields.actorId === undefined ? undefined : newSalt();
  const subjectSalt = newSalt();
  const detailsSalts = Object.fromEntries(Object.keys(fields.details).map((key) => [key, newSalt()]));
  const entry: Omit<ChainedEntry, "hash"> = {
    seq,
    chainVersion: CURRENT_CHAIN_VERSION,
    prevHash,
    occurredAt: fields.occurredAt,
    kind: fields.kind,
    sourceEventId: fields.sourceEventId,
    actorId: fields.actorId,
    actorSalt,
    actorDigest: fields.actorId === undefined || actorSalt === undefined ? undefined : fieldDigest(actorSalt, fields.actorId),
    subject: fields.subject,
    subjectSalt,
    subjectDigest: fieldDigest(subjectSalt, fields.subject),
    details: { ...fields.details },
    detailsSalts,
    detailsDigests: Object.fromEntries(Object.entries(fields.details).map(([key, value]) => [key, fieldDigest(detailsSalts[key]!, value)])),
    erasedAt: undefined,
  };
  return { ...entry, hash: sha256(canonicalEncodingV2(seq, prevHash, entry)) };
}

/**
 * Whether one personal field is consistent with its digest: present (value
 * and salt match the digest), erased (neither, digest kept) or absent
 * (nothing at all). Anything else — a value without its salt, a changed
 * value — is tampering.
 */
function fieldIntact(value: string | undefined, salt: string | undefined, digest: string | undefined): boolean {
  if (digest === undefined) return value === undefined && salt === undefined;
  if (value === undefined && salt === undefined) return true;
  return value !== undefined && salt !== undefined && fieldDigest(salt, value) === digest;
}

/** A version 2 entry's cleartext against its digests (the hash covers the digests, not the cleartext). */
function digestsIntact(entry: ChainedEntry): boolean {
  if (!fieldIntact(entry.actorId, entry.actorSalt, entry.actorDigest)) return false;
  if (!fieldIntact(entry.subject, entry.subjectSalt, entry.subjectDigest)) return false;
  const digests = entry.detailsDigests ?? {};
  const salts = entry.detailsSalts ?? {};
  const keys = new Set([...Object.keys(entry.details), ...Object.keys(salts)]);
  for (const key of keys) {
    if (digests[key] === undefined || !fieldIntact(entry.details[key], salts[key], digests[key])) return false;
  }
  return true;
}

export type ChainProblem = "hash" | "link" | "gap" | "digest";

/**
 * Checks `rows` (in seq order) following `previous`; the first entry that
 * does not fit, or undefined when all do. A version 1 entry whose cleartext
 * was erased is checked by its link only: its stored hash is still pinned
 * by the next entry's link, but its own content can no longer be
 * recomputed (docs/decisions.md, "Audit log").
 */
export function firstBreak(previous: { seq: number; hash: string }, rows: readonly ChainedEntry[]): { seq: number; problem: ChainProblem } | undefined {
  let last = previous;
  for (const row of rows) {
    if (row.seq !== last.seq + 1) return { seq: last.seq + 1, problem: "gap" };
    if (row.prevHash !== last.hash) return { seq: row.seq, problem: "link" };
    const expected = expectedHash(row);
    if (expected !== undefined && expected !== row.hash) return { seq: row.seq, problem: "hash" };
    if (row.chainVersion === 2 && !digestsIntact(row)) return { seq: row.seq, problem: "digest" };
    last = row;
  }
  return undefined;
}
