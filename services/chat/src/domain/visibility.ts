// History visibility of a group: from each member's join (the default) or
// all of it. Direct conversations start with their members, so their
// joined_seq is 1 and the rule makes no difference there.
import { HistoryVisibility } from "@aviary/gen/aviary/chat/v1/chat_pb";

export type Visibility = "from_join" | "full";

/** The first sequence number `member` may read in `conversation`. */
export function visibleFrom(conversation: { historyVisibility: string }, member: { joinedSeq: number }): number {
  return conversation.historyVisibility === "full" ? 1 : member.joinedSeq;
}

/** A request's value: UNSPECIFIED is undefined (the default, or "unchanged"); an undeclared number is "invalid". */
export function requestedVisibility(value: HistoryVisibility): Visibility | undefined | "invalid" {
  switch (value) {
    case HistoryVisibility.UNSPECIFIED:
      return undefined;
    case HistoryVisibility.FROM_JOIN:
      return "from_join";
    case HistoryVisibility.FULL:
      return "full";
    default:
      return "invalid";
  }
}

export function presentVisibility(value: string): HistoryVisibility {
  return value === "full" ? HistoryVisibility.FULL : HistoryVisibility.FROM_JOIN;
}
