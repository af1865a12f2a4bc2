// SearchPosts on real PostgreSQL behind real auth and user services: words
// and hashtags, newest and best match, the cursor (stable under new posts),
// the visibility rules (deleted and removed posts, blocks either way,
// suspended authors, restored on unsuspension), and bad input.
import test from "ava";
import { Code } from "@connectrpc/connect";
import { create, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { SearchOrder } from "@aviary/gen/aviary/post/v1/post_pb";
import { ContentRemovedSchema, UserSuspendedSchema, UserUnsuspendedSchema } from "@aviary/gen/aviary/events/v1/moderation_events_pb";
import { EventHeaders } from "@aviary/runtime/bus/bus";
import { PROTOBUF_CONTENT_TYPE } from "@aviary/runtime/outbox/enqueue";
import { eventually, uniqueName } from "../../runtime/test-support/infra.ts";
import { rejection, startTestPost, violatedFields, type Account, type TestPost } from "./harness.ts";

let h: TestPost;
let topic: string;
let ada: Account;
let bob: Account;
let cy: Account;
/** A word of this suite's own, so other suites' posts never match. */
const word = `heron${Date.now().toString(36)}`;
const tag = `${word}tag`;

test.before(async () => {
  topic = uniqueName("moderation_events_test");
  h = await startTestPost({ MODERATION_EVENTS_TOPIC: topic });
  [ada, bob, cy] = await Promise.all([h.signUp(), h.signUp(), h.signUp()]);
});

test.after.always(async () => {
  await h?.close();
});

async function post(account: Account, text: string): Promise<string> {
  const { post } = await h.client.createPost({ text }, account.call);
  return post!.postId;
}

async function search(viewer: Account, query: string, order = SearchOrder.NEWEST, pageSize = 100): Promise<string[]> {
  const ids: string[] = [];
  let pageToken = "";
  do {
    const page = await h.client.searchPosts({ query, order, pageSize, pageToken }, viewer.call);
    ids.push(...page.posts.map((p) => p.postId));
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return ids;
}

function publish<Desc extends DescMessage>(schema: Desc, key: string, message: MessageInitShape<Desc>): Promise<void> {
  return h.service.bus.publish([
    {
      topic,
      key,
      value: toBinary(schema, create(schema, message)),
      headers: { [EventHeaders.id]: crypto.randomUUID(), [EventHeaders.type]: schema.typeName, [EventHeaders.contentType]: PROTOBUF_CONTENT_TYPE },
    },
  ]);
}

test.serial("finds posts by word and by hashtag, newest first, in pages that neither skip nor repeat when posts arrive", async (t) => {
  const first = await post(ada, `the ${word} stands in the reeds #${tag}`);
  const second = await post(bob, `a grey ${word.toUpperCase()} again`);
  const third = await post(ada, `only the tag here #${tag}`);
  await post(ada, "nothing to find here");

  t.deepEqual(await search(cy, word), [second, first], "words match case-insensitively, newest first");
  t.deepEqual(await search(cy, `#${tag}`), [third, first]);
  t.deepEqual(await search(cy, `${word} #${tag}`), [first], "words and hashtags must all match");
  t.deepEqual(await search(cy, `"${word} stands"`), [first], "phrases");
  t.deepEqual(await search(cy, `${word} -grey`), [first], "exclusions");

  // Page by page (1 each), with a new match posted after the first page: it is newer, so it is not in this walk, and nothing repeats.
  const page1 = await h.client.searchPosts({ query: word, pageSize: 1 }, cy.call);
  t.deepEqual(page1.posts.map((p) => p.postId), [second]);
  await post(bob, `late ${word}`);
  const page2 = await h.client.searchPosts({ query: word, pageSize: 1, pageToken: page1.nextPageToken }, cy.call);
  t.deepEqual(page2.posts.map((p) => p.postId), [first]);
  t.is(page2.nextPageToken, "");
});

test.serial("best match ranks by relevance, ties newest first", async (t) => {
  const term = `${word}rank`;
  const once = await post(bob, `${term} once among many other words in a longer post about nothing in particular`);
  const thrice = await post(bob, `${term} ${term} ${term}`);
  const onceAgain = await post(bob, `${term} once among many other words in a longer post about nothing in particular`);
  t.deepEqual(await search(cy, term, SearchOrder.BEST_MATCH), [thrice, onceAgain, once]);
  t.deepEqual(await search(cy, term, SearchOrder.BEST_MATCH, 1), [thrice, onceAgain, once], "the same across pages of one");
  t.deepEqual(await search(cy, term, SearchOrder.NEWEST), [onceAgain, thrice, once]);
});

test.serial("never deleted or removed posts, nor authors blocked either way; suspended authors vanish until unsuspended", async (t) => {
  const term = `${word}vis`;
  const dan = await h.signUp();
  const deleted = await post(ada, `${term} deleted`);
  await h.client.deletePost({ postId: deleted }, ada.call);
  const removed = await post(ada, `${term} removed`);
  const adas = await post(ada, `${term} by ada`);
  const bobs = await post(bob, `${term} by bob`);
  const dans = await post(dan, `${term} by dan`);

  await publish(ContentRemovedSchema, removed, { target: { kind: { case: "postId", value: removed } }, actorId: bob.userId, reason: "spam", removedAt: timestampFromDate(new Date()) });
  await eventually("the removal applied", async () => !(await search(cy, term)).includes(removed), 60_000);
  t.deepEqual(await search(cy, term), [dans, bobs, adas]);

  await h.user.client.block({ userId: cy.userId }, dan.call);
  await h.user.client.block({ userId: bob.userId }, cy.call);
  t.deepEqual(await search(cy, term), [adas], "dan blocked cy, cy blocked bob");
  t.deepEqual(await search(dan, term), [dans, bobs, adas], "blocking cy hides nothing from dan");

  await publish(UserSuspendedSchema, ada.userId, { userId: ada.userId, actorId: bob.userId, reason: "spam", suspendedAt: timestampFromDate(new Date()) });
  await eventually("ada's suspension applied", async () => (await search(dan, term)).length === 2, 60_000);
  t.deepEqual(await search(dan, term), [dans, bobs]);
  t.deepEqual(await search(dan, `#${tag}`), [], "hashtag search too");
  await publish(UserUnsuspendedSchema, ada.userId, { userId: ada.userId, actorId: bob.userId, reason: "appeal", unsuspendedAt: timestampFromDate(new Date()) });
  await eventually("ada's unsuspension applied", async () => (await search(dan, term)).length === 3, 60_000);
  t.deepEqual(await search(dan, term), [dans, bobs, adas]);
});

test.serial("bad input gets field errors", async (t) => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ["empty query", { query: "" }, "query"],
    ["blank query", { query: "   " }, "query"],
    ["not a hashtag", { query: "#" }, "query"],
    ["too many hashtags", { query: Array.from({ length: 11 }, (_, i) => `#t${i}x`).join(" ") }, "query"],
    ["too long", { query: "a".repeat(201) }, "query"],
    ["unknown order", { query: word, order: 9 }, "order"],
    ["negative page size", { query: word, pageSize: -1 }, "page_size"],
    ["forged token", { query: word, pageToken: "eyJ9.AAAAAAAAAAAAAAAAAAAAAA" }, "page_token"],
  ];
  for (const [what, request, field] of cases) {
    const error = await rejection(h.client.searchPosts(request, cy.call));
    t.is(error.code, Code.InvalidArgument, what);
    t.deepEqual(violatedFields(error), [field], what);
  }
  const page = await h.client.searchPosts({ query: word, pageSize: 1 }, cy.call);
  const other = await rejection(h.client.searchPosts({ query: `${word} other`, pageSize: 1, pageToken: page.nextPageToken }, cy.call));
  t.deepEqual(violatedFields(other), ["page_token"], "a token is bound to its query");
  t.is((await rejection(h.client.searchPosts({ query: word }))).code, Code.Unauthenticated);
});
