// Post events travel through the outbox to the real Kafka broker, as protobuf
// messages keyed by the post id, read back here by a consumer group of our own.
import test from "ava";
import { Code } from "@connectrpc/connect";
import { openEventBus } from "@aviary/runtime/bus/open";
import type { DeliveredEvent, EventBus, Subscription } from "@aviary/runtime/bus/bus";
import { decodeEvent } from "@aviary/runtime/outbox/enqueue";
import {
  CommentCreatedSchema,
  CommentDeletedSchema,
  LikeCreatedSchema,
  LikeDeletedSchema,
  PostCreatedSchema,
  PostDeletedSchema,
} from "@aviary/gen/aviary/events/v1/post_events_pb";
import { eventually, infra, uniqueName } from "../../runtime/test-support/infra.ts";
import { postEventsTopic } from "../src/index.ts";
import { rejection, startTestPost, type TestPost } from "./harness.ts";

let h: TestPost;
let bus: EventBus;
let subscription: Subscription;
const received: DeliveredEvent[] = [];

test.before(async () => {
  h = await startTestPost();
  bus = await openEventBus({ brokers: (await infra()).kafkaBrokers, clientId: "post-events-test" });
  subscription = await bus.subscribe({
    groupId: uniqueName("post_events_test"),
    topics: [postEventsTopic],
    fromBeginning: true,
    handle: async (event) => void received.push(event),
  });
});
test.after.always(async () => {
  await subscription?.stop();
  await bus?.close();
  await h?.close();
});

test("create, reply, comment, like (twice), unlike and delete publish their events, keyed by the post", async (t) => {
  const [ada, bob] = await Promise.all([h.signUp(), h.signUp()]);
  const media = await h.uploadMedia(ada);
  const parent = (await h.client.createPost({ text: "hi @Bob_b #News", mediaIds: [media] }, ada.call)).post!;
  const reply = (await h.client.createPost({ text: "hello back", replyToPostId: parent.postId }, bob.call)).post!;
  const comment = (await h.client.createComment({ postId: parent.postId, text: "nice" }, bob.call)).comment!;
  await h.client.likePost({ postId: parent.postId }, bob.call);
  await h.client.likePost({ postId: parent.postId }, bob.call); // no second event
  await h.client.unlikePost({ postId: parent.postId }, bob.call);
  await h.client.deletePost({ postId: parent.postId }, ada.call);
  await h.client.deletePost({ postId: parent.postId }, ada.call); // no second event

  const of = (postId: string) => received.filter((e) => e.key === postId);
  await eventually("the parent's five events and the reply's one", () => of(parent.postId).length >= 5 && of(reply.postId).length >= 1, 30_000);
  await h.service.eventsFlushed(10_000);
  // Whatever else was committed has been handed to Kafka; give the consumer a moment to see a wrong extra event.
  await new Promise((resolve) => setTimeout(resolve, 500));

  t.deepEqual(
    of(parent.postId).map((e) => e.headers["event-type"]),
    ["aviary.events.v1.PostCreated", "aviary.events.v1.CommentCreated", "aviary.events.v1.LikeCreated", "aviary.events.v1.LikeDeleted", "aviary.events.v1.PostDeleted"],
  );
  const [created, commented, liked, unliked, deleted] = of(parent.postId) as [DeliveredEvent, DeliveredEvent, DeliveredEvent, DeliveredEvent, DeliveredEvent];
  const createdEvent = decodeEvent(PostCreatedSchema, created);
  t.like(createdEvent, { postId: parent.postId, authorId: ada.userId, replyToPostId: "", replyToAuthorId: "" });
  t.deepEqual(createdEvent.mentions, ["bob_b"]);
  t.deepEqual(createdEvent.hashtags, ["news"]);
  t.deepEqual(createdEvent.mediaIds, [media]);
  t.truthy(createdEvent.createdAt);
  t.like(decodeEvent(CommentCreatedSchema, commented), { commentId: comment.commentId, postId: parent.postId, authorId: bob.userId, postAuthorId: ada.userId });
  t.like(decodeEvent(LikeCreatedSchema, liked), { postId: parent.postId, likerId: bob.userId, postAuthorId: ada.userId });
  const unlikedEvent = decodeEvent(LikeDeletedSchema, unliked);
  t.like(unlikedEvent, { postId: parent.postId, likerId: bob.userId, postAuthorId: ada.userId });
  t.truthy(unlikedEvent.deletedAt);
  const deletedEvent = decodeEvent(PostDeletedSchema, deleted);
  t.like(deletedEvent, { postId: parent.postId, authorId: ada.userId });
  t.truthy(deletedEvent.deletedAt);

  t.deepEqual(of(reply.postId).map((e) => e.headers["event-type"]), ["aviary.events.v1.PostCreated"]);
  t.like(decodeEvent(PostCreatedSchema, of(reply.postId)[0]!), {
    postId: reply.postId,
    authorId: bob.userId,
    replyToPostId: parent.postId,
    replyToAuthorId: ada.userId,
  });
  for (const event of [...of(parent.postId), ...of(reply.postId)]) {
    t.regex(event.headers["event-id"] ?? "", /^[0-9a-f-]{36}$/);
    t.is(event.headers["content-type"], "application/x-protobuf");
    t.is(event.topic, postEventsTopic);
  }
});

test("unliking removes a like once, as one LikeDeleted; deleting a comment is one CommentDeleted; the no-ops publish nothing", async (t) => {
  const [ada, bob, cy] = await Promise.all([h.signUp(), h.signUp(), h.signUp()]);
  const post = (await h.client.createPost({ text: "take it back" }, ada.call)).post!;
  // cy never liked it: no event. bob likes, unlikes twice: one LikeCreated, one LikeDeleted.
  t.is((await h.client.unlikePost({ postId: post.postId }, cy.call)).likeCount, 0n);
  await h.client.likePost({ postId: post.postId }, bob.call);
  t.is((await h.client.unlikePost({ postId: post.postId }, bob.call)).likeCount, 0n);
  await h.client.unlikePost({ postId: post.postId }, bob.call);
  // bob comments and deletes it; a second delete is NOT_FOUND and no event.
  const comment = (await h.client.createComment({ postId: post.postId, text: "oops" }, bob.call)).comment!;
  await h.client.deleteComment({ postId: post.postId, commentId: comment.commentId }, bob.call);
  t.is((await rejection(h.client.deleteComment({ postId: post.postId, commentId: comment.commentId }, bob.call))).code, Code.NotFound);

  const of = () => received.filter((e) => e.key === post.postId);
  await eventually("the post's five events", () => of().length >= 5, 30_000);
  await h.service.eventsFlushed(10_000);
  await new Promise((resolve) => setTimeout(resolve, 500));

  t.deepEqual(
    of().map((e) => e.headers["event-type"]),
    ["aviary.events.v1.PostCreated", "aviary.events.v1.LikeCreated", "aviary.events.v1.LikeDeleted", "aviary.events.v1.CommentCreated", "aviary.events.v1.CommentDeleted"],
  );
  const [, , unliked, , uncommented] = of() as DeliveredEvent[];
  t.like(decodeEvent(LikeDeletedSchema, unliked!), { postId: post.postId, likerId: bob.userId, postAuthorId: ada.userId });
  const deletedComment = decodeEvent(CommentDeletedSchema, uncommented!);
  t.like(deletedComment, { commentId: comment.commentId, postId: post.postId, authorId: bob.userId, postAuthorId: ada.userId });
  t.truthy(deletedComment.deletedAt);
  t.false(of().some((e) => e.headers["event-type"] === "aviary.events.v1.LikeDeleted" && decodeEvent(LikeDeletedSchema, e).likerId === cy.userId));
});
