// The pure parts of the post service: text parsing, the CreatePost rules and
// the read pipeline's rules and presentation, without any server.
import test from "ava";
import { MediaPurpose, type Media } from "@aviary/gen/aviary/media/v1/media_pb";
import { codePointLength, parseHashtags, parseMentions } from "../src/domain/text.ts";
import { newId } from "../src/domain/ids.ts";
import { checkDraft, checkMedia, checkReplyTarget, draftFrom } from "../src/domain/new-post.ts";
import { applyRules, hydrate, presentPost } from "../src/read/posts.ts";
import type { PostRow } from "../src/store/posts.ts";

test("mentions: lower-cased, de-duplicated in first-use order, 3–30 of [a-z0-9_]", (t) => {
  t.deepEqual(parseMentions("hi @Bob and @alice_99, also @BOB again"), ["bob", "alice_99"]);
  t.deepEqual(parseMentions("@ab is too short, @abc is fine"), ["abc"]);
  t.deepEqual(parseMentions(`@${"a".repeat(30)} ok, @${"b".repeat(31)} too long`), ["a".repeat(30)]);
  t.deepEqual(parseMentions("(@carol) @dave. @eve's @frank!"), ["carol", "dave", "eve", "frank"]);
  t.deepEqual(parseMentions("@start of text"), ["start"]);
});

test("mentions: not inside email addresses, URLs or words", (t) => {
  t.deepEqual(parseMentions("mail a@b.com or first.last@example.org"), []);
  t.deepEqual(parseMentions("write to bob@gmail.com, not @bob"), ["bob"]);
  t.deepEqual(parseMentions("https://example.social/@alice and x@@carol"), []);
  t.deepEqual(parseMentions("@alicé is not alice"), [], "a username cannot be cut short before a letter");
  t.deepEqual(parseMentions("@bob@example.org is a fediverse handle, not @bob"), ["bob"]);
});

test("hashtags: unicode letters and digits, lower-cased, de-duplicated, at most 100 characters", (t) => {
  t.deepEqual(parseHashtags("#Hello #WORLD #hello"), ["hello", "world"]);
  t.deepEqual(parseHashtags("#café #Ünïcode #日本語 #snake_case2"), ["café", "ünïcode", "日本語", "snake_case2"]);
  t.deepEqual(parseHashtags("#tag, #other. #end!"), ["tag", "other", "end"]);
  t.deepEqual(parseHashtags(`#${"x".repeat(100)} #${"y".repeat(101)}`), ["x".repeat(100)]);
  t.deepEqual(parseHashtags("#1 #2024 but #2024goals"), ["2024goals"], "digits alone are numbers");
});

test("hashtags: not inside words, URLs or HTML entities", (t) => {
  t.deepEqual(parseHashtags("C# and a#b and page/#top and &#39; and ##double"), []);
});

test("lengths are code points, as the validation interceptor counts them", (t) => {
  t.is(codePointLength("🐦🐦"), 2);
  t.is("🐦🐦".length, 4);
  const draft = draftFrom({ text: "🐦".repeat(500), mediaIds: [], replyToPostId: "" });
  t.deepEqual(checkDraft(draft), [], "500 emoji are 500 characters");
  t.deepEqual(checkDraft({ ...draft, text: "🐦".repeat(501) }).map((v) => v.field), ["text"]);
});

test("a draft needs text or media; blank text counts as none; repeated media ids are rejected", (t) => {
  t.deepEqual(checkDraft(draftFrom({ text: "  \n\t ", mediaIds: [], replyToPostId: "" })).map((v) => v.reason), ["REQUIRED"]);
  const id = "0b6d1b9e-3f6a-4c8e-9a51-6f5d2f0c1a11";
  t.deepEqual(checkDraft(draftFrom({ text: "", mediaIds: [id], replyToPostId: "" })), []);
  const twice = checkDraft(draftFrom({ text: "x", mediaIds: [id, id.toUpperCase()], replyToPostId: "" }));
  t.deepEqual(twice.map((v) => [v.field, v.reason]), [["media_ids", "DUPLICATE"]]);
});

test("media must be confirmed, the author's own, and uploaded for a post", (t) => {
  const [mine, theirs, avatar, pending] = ["a", "b", "c", "d"].map((c) => `${c.repeat(8)}-0000-4000-8000-000000000000`) as [string, string, string, string];
  const found = new Map([
    [mine, { ownerId: "me", purpose: MediaPurpose.POST }],
    [theirs, { ownerId: "you", purpose: MediaPurpose.POST }],
    [avatar, { ownerId: "me", purpose: MediaPurpose.AVATAR }],
  ]);
  t.deepEqual(checkMedia("me", [mine], found), []);
  t.deepEqual(
    checkMedia("me", [mine, theirs, avatar, pending], found).map((v) => [v.field, v.reason]),
    [
      ["media_ids", "MEDIA_NOT_OWNED"],
      ["media_ids", "MEDIA_WRONG_PURPOSE"],
      ["media_ids", "MEDIA_NOT_READY"],
    ],
  );
  t.deepEqual(checkReplyTarget(true), []);
  t.deepEqual(checkReplyTarget(false).map((v) => v.field), ["reply_to_post_id"]);
});

function row(id: string, authorId: string, extra: Partial<PostRow> = {}): PostRow {
  return {
    id,
    authorId,
    text: `post ${id}`,
    mediaIds: [],
    replyToPostId: null,
    mentions: [],
    hashtags: [],
    likeCount: 0,
    commentCount: 0,
    createdAt: new Date("2025-01-01T00:00:00Z"),
    deletedAt: null,
    ...extra,
  };
}

test("read pipeline: one call per source for all rows; tombstones, blockers' and removed posts are dropped", async (t) => {
  const rows = [
    row("p1", "viewer", { mediaIds: ["m1", "m2"] }),
    row("p2", "friend", { mediaIds: ["m2", "m3"] }),
    row("p3", "blocker"),
    row("p4", "friend", { deletedAt: new Date(), mediaIds: ["m9"] }),
    row("p5", "friend"),
    row("p6", "viewer"),
  ];
  const removedAt = new Date("2025-02-01T00:00:00Z");
  const calls: Record<string, string[][]> = { users: [], media: [], likes: [], removed: [] };
  const hydration = await hydrate(rows, "viewer", {
    visibleUsers: async (ids) => (calls.users!.push([...ids]), new Set(ids.filter((id) => id !== "blocker"))),
    readyMedia: async (ids) => (calls.media!.push([...ids]), new Map(ids.filter((id) => id !== "m3").map((id) => [id, { mediaId: id } as Media]))),
    likedByViewer: async (ids) => (calls.likes!.push([...ids]), new Set(["p2"])),
    removedPosts: async (ids) => (calls.removed!.push([...ids]), new Map(["p5", "p6"].map((id) => [id, { reason: "spam", removedAt }]))),
  });
  t.deepEqual(
    calls,
    { users: [["friend", "blocker"]], media: [["m1", "m2", "m3"]], likes: [["p1", "p2", "p3", "p5", "p6"]], removed: [["p1", "p2", "p3", "p5", "p6"]] },
    "the viewer and tombstones need no lookups",
  );
  const visible = applyRules(rows, hydration, "viewer");
  t.deepEqual(visible.map((r) => r.id), ["p1", "p2", "p6"], "a removed post is gone for others, kept for its author");
  const [own, friends, ownRemoved] = visible.map((r) => presentPost(r, hydration));
  t.is(own?.removal, undefined);
  t.deepEqual(ownRemoved?.removal?.reason, "spam", "the author sees why");
  t.deepEqual(own?.media?.map((m) => m.mediaId), ["m1", "m2"], "media in the author's order");
  t.deepEqual(friends?.media?.map((m) => m.mediaId), ["m2"], "media the media service no longer has are left out");
  t.is(own?.likedByViewer, false);
  t.is(friends?.likedByViewer, true);
});

test("read pipeline: a failing source fails the read", async (t) => {
  await t.throwsAsync(
    hydrate([row("p1", "friend")], "viewer", {
      visibleUsers: async () => {
        throw new Error("user service down");
      },
      readyMedia: async () => new Map(),
      likedByViewer: async () => new Set(),
      removedPosts: async () => new Map(),
    }),
    { message: "user service down" },
  );
});

test("ids are UUIDv7 and strictly increasing, also within one millisecond", (t) => {
  const ids = Array.from({ length: 5000 }, () => newId(1_700_000_000_000));
  t.true(ids.every((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id)));
  t.deepEqual([...ids].sort(), ids);
  t.is(new Set(ids).size, ids.length);
  t.true(newId(1_600_000_000_000) > ids.at(-1)!, "a clock going back does not go back in ids");
});
