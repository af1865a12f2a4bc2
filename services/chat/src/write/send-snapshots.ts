// What this instance knows of the conversations it sends to: the number and
// the members each had right after its own latest send into it. The next
// send into one of them skips the lookup (store/entries.ts sendLookup) and
// goes straight to the one statement, which only takes the next number
// while the conversation still has that number and exactly those members
// (sendInOneStatement); when it has moved on (a send of another instance, a
// membership change, a purge), the send looks it up after all. So a snapshot
// never has to be right, only usually right: it saves a round trip, it never
// decides anything.
//
// Sends into one conversation take their turn here, one statement at a
// time: concurrent sends of this instance would otherwise all expect the
// same number and all but one fall back to the lookup and the row lock.
import type { SendSnapshot } from "../store/entries.ts";

export interface SendSnapshots {
  get(conversationId: string): SendSnapshot | undefined;
  /** Keeps the snapshot unless a newer one (a higher number) is known. */
  remember(conversationId: string, snapshot: SendSnapshot): void;
  forget(conversationId: string): void;
  /** Runs `send` once every earlier send of this conversation given here has settled. */
  inTurn<T>(conversationId: string, send: () => Promise<T>): Promise<T>;
}

/**
 * What is kept, the conversations sent to most recently first: at most this
 * many, holding at most this many member ids in all (an id is about 100
 * bytes of heap, so 10 MB; a group has up to 256 members).
 */
export const SNAPSHOTS_KEPT = { conversations: 10_000, memberIds: 100_000 };

export function sendSnapshots(kept = SNAPSHOTS_KEPT): SendSnapshots {
  // A Map iterates in insertion order, and remember() re-inserts: the first key is the least recently sent to.
  const known = new Map<string, SendSnapshot>();
  const turns = new Map<string, Promise<void>>();
  let memberIds = 0;
  const forget = (conversationId: string) => {
    const snapshot = known.get(conversationId);
    if (snapshot === undefined) return;
    known.delete(conversationId);
    memberIds -= snapshot.memberIds.length;
  };
  return {
    get: (conversationId) => known.get(conversationId),
    remember(conversationId, snapshot) {
      const current = known.get(conversationId);
      if (current !== undefined && current.lastSeq > snapshot.lastSeq) return;
      forget(conversationId);
      known.set(conversationId, snapshot);
      memberIds += snapshot.memberIds.length;
      while (known.size > kept.conversations || memberIds > kept.memberIds) forget(known.keys().next().value!);
    },
    forget,
    inTurn(conversationId, send) {
      const sent = (turns.get(conversationId) ?? Promise.resolve()).then(send);
      const settled = sent.then(
        () => undefined,
        () => undefined,
      );
      turns.set(conversationId, settled);
      // The last in line clears the queue, so idle conversations hold nothing.
      void settled.then(() => {
        if (turns.get(conversationId) === settled) turns.delete(conversationId);
      });
      return sent;
    },
  };
}
