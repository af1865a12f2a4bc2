// Walking the chain: every entry against the one before it (domain/chain.ts)
// and, where the walk passes the latest anchor, against the hash anchored
// outside the database (domain/anchor.ts). Shared by VerifyChain (a slice
// per call) and the anchoring job (everything since the last anchor, before
// it anchors a new head).
import type { Queryable } from "@aviary/runtime/db/database";
import type { Anchor } from "../domain/anchor.ts";
import { firstBreak, type ChainProblem } from "../domain/chain.ts";
import { entriesAfter } from "./entries.ts";

/** Entries read per query. */
const READ_SLICE = 1_000;

export type WalkProblem = ChainProblem | "anchor";

export type Walk =
  | {
      readonly intact: true;
      readonly checked: number;
      /** The last entry checked (the start when there was none). */
      readonly last: { seq: number; hash: string };
      /** False when `limit` ran out before the end of the chain. */
      readonly complete: boolean;
      /** The walk passed the anchor's seq and found its hash there. */
      readonly anchorChecked: boolean;
    }
  | { readonly intact: false; readonly checked: number; readonly firstBadSeq: number; readonly problem: WalkProblem };

/**
 * Checks up to `limit` entries after `start` (whose hash is trusted as the
 * first link). With an anchor: the entry at its seq must carry its hash
 * ("anchor" there otherwise, the entries up to it were rewritten), and a
 * chain that ends before it lost its tail ("anchor" at the first missing seq).
 */
export async function walkChain(db: Queryable, start: { seq: number; hash: string }, limit: number, anchor: Anchor | undefined): Promise<Walk> {
  let previous = start;
  let checked = 0;
  let anchorChecked = false;
  while (checked < limit) {
    const rows = await entriesAfter(db, previous.seq, Math.min(READ_SLICE, limit - checked));
    if (rows.length === 0) {
      if (anchor !== undefined && previous.seq < anchor.seq) return { intact: false, checked: checked + 1, firstBadSeq: previous.seq + 1, problem: "anchor" };
      return { intact: true, checked, last: previous, complete: true, anchorChecked };
    }
    const broken = firstBreak(previous, rows);
    const anchored = anchor === undefined ? undefined : rows.find((row) => row.seq === anchor.seq);
    const anchorBroken = anchored !== undefined && anchored.hash !== anchor?.hash && (broken === undefined || broken.seq > anchored.seq);
    const bad = anchorBroken ? { seq: anchored.seq, problem: "anchor" as const } : broken;
    if (bad !== undefined) return { intact: false, checked: checked + rows.filter((row) => row.seq < bad.seq).length + 1, firstBadSeq: bad.seq, problem: bad.problem };
    if (anchored !== undefined) anchorChecked = true;
    checked += rows.length;
    previous = rows.at(-1)!;
  }
  return { intact: true, checked, last: previous, complete: false, anchorChecked };
}
