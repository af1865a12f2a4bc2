// The plain rules behind message changes: the reaction set (the heart with
// or without its variation selector), the order counts are shown in,
// history visibility, the text rule, and the edit window setting.
import test from "ava";
import { HistoryVisibility } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { ConfigError } from "@aviary/runtime/config";
import { presentReactions } from "../src/domain/present.ts";
import { ALLOWED_REACTIONS, canonicalReaction, reactionRank } from "../src/domain/reactions.ts";
import { textViolation } from "../src/domain/text.ts";
import { requestedVisibility, visibleFrom } from "../src/domain/visibility.ts";
import { chatConfigFromEnv } from "../src/index.ts";

test("reactions: only the set, the heart spelled either way is stored with U+FE0F; counts in the set's order", (t) => {
  for (const r of ALLOWED_REACTIONS) t.is(canonicalReaction(r), r);
  t.is(canonicalReaction("\u2764"), "\u2764\uFE0F");
  t.is(canonicalReaction("👍\uFE0F"), "👍");
  for (const bad of ["", "🦄", "👍👍", "+1", "heart"]) t.is(canonicalReaction(bad), undefined, bad);
  t.true(reactionRank("👍") < reactionRank("🙏"));
  t.deepEqual(
    presentReactions([
      { reaction: "🙏", count: 1, reacted: false },
      { reaction: "👍", count: 3, reacted: true },
      { reaction: "😂", count: 2, reacted: false },
    ]).map((r) => [r.reaction, r.count, r.reacted]),
    [
      ["👍", 3, true],
      ["😂", 2, false],
      ["🙏", 1, false],
    ],
  );
});

test("history visibility: from the join unless FULL; UNSPECIFIED is no choice, an undeclared number invalid", (t) => {
  t.is(visibleFrom({ historyVisibility: "from_join" }, { joinedSeq: 7 }), 7);
  t.is(visibleFrom({ historyVisibility: "full" }, { joinedSeq: 7 }), 1);
  t.is(requestedVisibility(HistoryVisibility.UNSPECIFIED), undefined);
  t.is(requestedVisibility(HistoryVisibility.FROM_JOIN), "from_join");
  t.is(requestedVisibility(HistoryVisibility.FULL), "full");
  t.is(requestedVisibility(9 as HistoryVisibility), "invalid");
});

test("text: required unless there are attachments, never only whitespace", (t) => {
  t.is(textViolation("hi", false), undefined);
  t.is(textViolation("", true), undefined);
  t.is(textViolation("", false)?.reason, "REQUIRED");
  t.is(textViolation(" \n", true)?.reason, "BLANK");
});

test("CHAT_EDIT_WINDOW: 15 minutes by default, a duration of 1s to 7d", (t) => {
  t.is(chatConfigFromEnv({}).editWindowMs, 15 * 60_000);
  t.is(chatConfigFromEnv({ CHAT_EDIT_WINDOW: "1h" }).editWindowMs, 3_600_000);
  for (const bad of ["500ms", "8d", "15"]) t.throws(() => chatConfigFromEnv({ CHAT_EDIT_WINDOW: bad }), { instanceOf: ConfigError }, bad);
});
