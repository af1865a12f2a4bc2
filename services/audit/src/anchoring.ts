// The anchoring job: every AUDIT_ANCHOR_INTERVAL, the chain head's seq and
// hash are written outside the database (store/anchors.ts) and logged, so a
// consistent rewrite of the log's tail shows in VerifyChain (and in the
// logs, which are shipped elsewhere). Before it anchors a new head, the job
// checks every entry since the last anchor, and the anchored entry itself:
// a tail rewritten since then is reported and never anchored, so the anchor
// in force keeps pointing at the original. Several instances may run it;
// one that saw an older head can leave an older (still true) anchor behind,
// which only moves the next one later.
import type { Database } from "@aviary/runtime/db/database";
import type { Logger } from "@aviary/runtime/log";
import type { Anchor } from "./domain/anchor.ts";
import { GENESIS_HASH } from "./domain/chain.ts";
import type { AnchorStore } from "./store/anchors.ts";
import { entryAt } from "./store/entries.ts";
import { walkChain } from "./store/verify.ts";

export type AnchorOutcome =
  | { kind: "anchored"; anchor: Anchor }
  /** The head is the anchored entry already (or the log is empty). */
  | { kind: "unchanged"; anchor: Anchor | undefined }
  /** The chain does not match its anchor or its own links: nothing was anchored. */
  | { kind: "broken"; firstBadSeq: number; problem: string };

export interface Anchoring {
  /** Anchors the head now (normally on the timer). */
  anchorNow(): Promise<AnchorOutcome>;
  stop(): Promise<void>;
}

export function startAnchoring(options: { database: Database; anchors: AnchorStore; intervalMs: number; logger: Logger; now?: () => Date }): Anchoring {
  const { database, anchors, logger } = options;
  const now = options.now ?? (() => new Date());
  let running: Promise<AnchorOutcome> | undefined;

  async function anchorOnce(): Promise<AnchorOutcome> {
    const previous = await anchors.latest();
    // Only the entries since the last anchor: the anchored entry's hash pins every one before it.
    const anchored = previous === undefined ? undefined : await entryAt(database.db, previous.seq);
    const broken = (firstBadSeq: number, problem: string): AnchorOutcome => {
      logger.error({ firstBadSeq, problem, anchorSeq: previous?.seq, anchorHash: previous?.hash }, "audit chain does not verify: not anchoring its head");
      return { kind: "broken", firstBadSeq, problem };
    };
    if (previous !== undefined && anchored?.hash !== previous.hash) return broken(previous.seq, "anchor");
    const walk = await walkChain(database.db, previous ?? { seq: 0, hash: GENESIS_HASH }, Number.POSITIVE_INFINITY, undefined);
    if (!walk.intact) return broken(walk.firstBadSeq, walk.problem);
    if (walk.last.seq === 0 || walk.last.seq === previous?.seq) return { kind: "unchanged", anchor: previous };
    const anchor: Anchor = { seq: walk.last.seq, hash: walk.last.hash, anchoredAt: now() };
    await anchors.write(anchor);
    // The log line is a second copy outside the database (log shipping keeps it).
    logger.info({ seq: anchor.seq, hash: anchor.hash, anchoredAt: anchor.anchoredAt.toISOString() }, "audit chain anchored");
    return { kind: "anchored", anchor };
  }

  /** One run at a time: the timer and a direct call share it. */
  function anchorNow(): Promise<AnchorOutcome> {
    running ??= anchorOnce().finally(() => {
      running = undefined;
    });
    return running;
  }

  const timer = setInterval(() => {
    anchorNow().catch((error: unknown) => logger.warn({ err: error }, "audit chain anchoring failed; trying again at the next interval"));
  }, options.intervalMs);
  timer.unref();

  return {
    anchorNow,
    async stop() {
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
