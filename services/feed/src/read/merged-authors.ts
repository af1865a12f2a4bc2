// Whether a reader follows anyone whose posts are merged at read time
// (authors above FEED_FANOUT_THRESHOLD, whose posts are not fanned out).
// Most readers follow nobody of the kind, and for them GetHomeFeed's merge
// query (read-statements.ts, notFannedOutFolloweePosts) can only come back
// empty; it was a PostgreSQL round trip on every read, cached or not. This
// remembers the answer per reader, so the query runs only for readers it can
// find something for.
//
// A "no" turns into a "yes" in two ways only, and both notify MERGE_CHANNEL
// from the consumer's transaction (delivered on commit):
// - the reader follows someone: the payload is the reader's id;
// - an author gets their first live post that is not fanned out (they crossed
//   the threshold): the payload is "*", every reader.
// Every feed process that serves reads LISTENs and forgets what a
// notification names; the process that applied the change also forgets it
// synchronously (`forget`), so its own next read is exact. A "yes" that went
// stale (an unfollow, a deletion) only costs a query that finds nothing, so
// nothing else notifies. While the LISTEN connection is down nothing is
// remembered (notifications would be missed); every answer also expires
// after MAX_AGE_MS as a backstop.
import type { Database } from "@aviary/runtime/db/database";
import { EVERY_READER, MERGE_CHANNEL } from "../store/projection.ts";

export { EVERY_READER };
/** Answers kept at most (per process); past it the oldest goes. */
export const MEMO_ENTRIES = 50_000;
export const MAX_AGE_MS = 60_000;

export interface MergedAuthors {
  /** Whether `readerId` follows at least one author whose posts are merged at read time (a "yes" may be stale; a "no" is not). */
  followsAny(readerId: string): Promise<boolean>;
  /** Forgets the answer for `readerId`, or every answer for EVERY_READER. */
  forget(readerId: string): void;
  stop(): Promise<void>;
}

export interface MergedAuthorsDeps {
  /** Where the notifications come from (only its listen is used). */
  database: Pick<Database, "listen">;
  /** The answer from the database. */
  query(readerId: string): Promise<boolean>;
  now?: () => number;
  entries?: number;
}

interface Answer {
  follows: boolean;
  at: number;
}

export async function startMergedAuthors(deps: MergedAuthorsDeps): Promise<MergedAuthors> {
  const now = deps.now ?? performance.now.bind(performance);
  const capacity = deps.entries ?? MEMO_ENTRIES;
  const answers = new Map<string, Answer>();
  // An answer read from the database is kept only if nothing that could
  // change it was forgotten while the query ran: `everyone` counts the
  // whole-memo forgets, `changed` the last per-reader forget's generation.
  let everyone = 0;
  let generation = 0;
  const changed = new Map<string, number>();
  let listening = true;

  const forget = (readerId: string) => {
    generation++;
    if (readerId === EVERY_READER) {
      everyone++;
      answers.clear();
      changed.clear();
      return;
    }
    answers.delete(readerId);
    changed.set(readerId, generation);
    if (changed.size > capacity) changed.delete(changed.keys().next().value!);
  };

  const unlisten = await deps.database.listen(MERGE_CHANNEL, (payload) => forget(payload.toLowerCase()), {
    onListening: (state) => {
      listening = state;
      forget(EVERY_READER);
    },
  });

  return {
    async followsAny(reader) {
      const readerId = reader.toLowerCase();
      const kept = answers.get(readerId);
      if (kept !== undefined && now() - kept.at < MAX_AGE_MS) return kept.follows;
      const startedEveryone = everyone;
      const startedAt = generation;
      const follows = await deps.query(reader);
      const unchanged = everyone === startedEveryone && (changed.get(readerId) ?? -1) <= startedAt;
      if (listening && unchanged) {
        answers.delete(readerId);
        answers.set(readerId, { follows, at: now() });
        if (answers.size > capacity) answers.delete(answers.keys().next().value!);
      }
      return follows;
    },
    forget: (readerId) => forget(readerId.toLowerCase()),
    stop: unlisten,
  };
}
