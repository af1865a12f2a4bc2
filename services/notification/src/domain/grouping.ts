// What makes notifications one group. Likes, comments and replies group per
// post ("Ana and 4 others liked your post"), however far apart they arrive:
// the group moves back to the top, unread, with each new one. Follows group
// per time window, so a follower from last month does not join today's
// "3 new followers". Mentions are never grouped: each mentioning post is
// something to read. Messages (push only, never listed) group per
// conversation: the key only names their pushes' stand-in group.
import type { KindName } from "./kinds.ts";

export interface GroupSource {
  kind: KindName;
  /** The post it is about (like, comment, reply: the recipient's post; mention: the mentioning post). */
  postId?: string;
  /** Messages: their conversation. */
  conversationId?: string;
  /** When the source happened (the event's time), for the follow windows. */
  at: Date;
}

export function groupKey(source: GroupSource, followWindowMs: number): string {
  switch (source.kind) {
    case "follow":
      return `follow:${Math.floor(source.at.getTime() / followWindowMs)}`;
    case "like":
    case "comment":
    case "reply":
    case "mention":
      if (source.postId === undefined) throw new Error(`a ${source.kind} notification needs a post`);
      return `${source.kind}:${source.postId}`;
    case "message":
      if (source.conversationId === undefined) throw new Error("a message notification needs a conversation");
      return `message:${source.conversationId}`;
  }
}

/** How many distinct actors a group keeps for display ("Ana, Ben and 3 others"). */
export const SAMPLE_ACTORS = 3;

/** The sample after `actorId` acted again: moved (or added) to the front, capped. */
export function withNewestActor(sample: readonly string[], actorId: string): string[] {
  return [actorId, ...sample.filter((id) => id !== actorId)].slice(0, SAMPLE_ACTORS);
}
