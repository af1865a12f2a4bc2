import { EventHeaders, type DeliveredEvent, type EventBus, type Subscription } from "@aviary/runtime/bus/bus";
import { isEventOf } from "@aviary/runtime/outbox/enqueue";
import { decodedEvent as decoded, eventTime as time, eventUuid as uuid } from "@aviary/runtime/outbox/fields";
import { PostCreatedSchema, PostDeletedSchema } from "@aviary/gen/aviary/events/v1/post_events_pb";
import { FollowCreatedSchema, FollowDeletedSchema, UserBlockedSchema } from "@aviary/gen/aviary/events/v1/user_events_pb";
import { applyFollowCreated, applyFollowDeleted, applyPostDeleted, applyPostsCreated, applyUserBlocked, type CreatedPost, type ProjectorDeps } from "./apply.ts";

/** The post service's topic, keyed by post id (a post's creation and deletion stay in order). */
export const postEventsTopic = "aviary.post.events";
/** The user service's topic, keyed by the acting user's id. */
export const userEventsTopic = "aviary.user.events";

/** The default consumer group (FEED_GROUP). */
export const feedGroup = "feed";

export interface ConsumeOptions extends ProjectorDeps {
  bus: EventBus;
  groupId: string;
  /** Partitions applied at the same time (FEED_CONSUMER_CONCURRENCY); one at a time within each. */
  partitionsConcurrently?: number;
  /** Delivery policy overrides (tests); the bus' defaults otherwise. */
  maxAttempts?: number;
  initialBackoffMs?: number;
}

/**
 * One subscription on both topics: events are applied in order per
 * partition (several partitions at once; a batch's consecutive posts
 * together, see handleFeedEvents), at least once (handleOnce and idempotent
 * timeline writes absorb redeliveries). Events of different
 * partitions may interleave: a post fanned out while its author gains a
 * follower reaches them through the fan-out or the back-fill (each reads
 * after its own commit), and a post fanned out while its author loses one is
 * dropped by the read-time rule that a feed only shows followed authors. Other event types on these topics (comments, likes, profile
 * updates) are skipped. A timeline Redis or database outage is waited out by
 * the bus (the partition holds, retrying with backoff, nothing is parked);
 * an event that cannot be decoded is parked on `<topic>.dlq` at once, one
 * that keeps failing for another reason after its attempts.
 */
export function consumeFeedEvents(options: ConsumeOptions): Promise<Subscription> {
  return options.bus.subscribe({
    groupId: options.groupId,
    topics: [postEventsTopic, userEventsTopic],
    ...(options.partitionsConcurrently === undefined ? {} : { partitionsConcurrently: options.partitionsConcurrently }),
    ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
    ...(options.initialBackoffMs === undefined ? {} : { initialBackoffMs: options.initialBackoffMs }),
    ...(options.telemetry === undefined ? {} : { telemetry: options.telemetry }),
    handle: (event) => handleFeedEvent(options, event),
    handleBatch: (events) => handleFeedEvents(options, events),
  });
}

/**
 * A run of one partition's events, in order: consecutive PostCreated events
 * are applied together (`applyPostsCreated`: one transaction, one timeline
 * round trip for the lot), anything else as `handleFeedEvent` would, in its
 * place. An event that cannot be decoded throws, and the bus retries the run
 * one by one, parking that event.
 */
export async function handleFeedEvents(deps: ProjectorDeps, events: readonly DeliveredEvent[]): Promise<void> {
  let created: CreatedPost[] = [];
  const flush = async () => {
    if (created.length > 0) await applyPostsCreated(deps, created);
    created = [];
  };
  for (const event of events) {
    if (isEventOf(PostCreatedSchema, event)) {
      created.push(createdPost(event));
    } else if (handledTypes.has(event.headers[EventHeaders.type] ?? "")) {
      await flush();
      await handleFeedEvent(deps, event);
    }
  }
  await flush();
}

/** The event types this consumer acts on (others on its topics, like comments and likes, are skipped). */
const handledTypes = new Set<string>([PostCreatedSchema, PostDeletedSchema, FollowCreatedSchema, FollowDeletedSchema, UserBlockedSchema].map((schema) => schema.typeName));

function createdPost(event: DeliveredEvent): CreatedPost {
  const { id, message } = decoded(PostCreatedSchema, event);
  return {
    eventId: id,
    postId: uuid(message.postId, "post_id", id),
    authorId: uuid(message.authorId, "author_id", id),
    createdAt: time(message.createdAt, "created_at", id),
  };
}

export async function handleFeedEvent(deps: ProjectorDeps, event: DeliveredEvent): Promise<void> {
  if (isEventOf(PostCreatedSchema, event)) {
    await applyPostsCreated(deps, [createdPost(event)]);
  } else if (isEventOf(PostDeletedSchema, event)) {
    const { id, message } = decoded(PostDeletedSchema, event);
    await applyPostDeleted(deps, id, {
      postId: uuid(message.postId, "post_id", id),
      authorId: uuid(message.authorId, "author_id", id),
      deletedAt: message.deletedAt ? time(message.deletedAt, "deleted_at", id) : new Date(),
    });
  } else if (isEventOf(FollowCreatedSchema, event)) {
    const { id, message } = decoded(FollowCreatedSchema, event);
    const edge = { followerId: uuid(message.followerId, "follower_id", id), followeeId: uuid(message.followeeId, "followee_id", id) };
    await applyFollowCreated(deps, id, edge, message.createdAt ? time(message.createdAt, "created_at", id) : new Date());
  } else if (isEventOf(FollowDeletedSchema, event)) {
    const { id, message } = decoded(FollowDeletedSchema, event);
    await applyFollowDeleted(deps, id, { followerId: uuid(message.followerId, "follower_id", id), followeeId: uuid(message.followeeId, "followee_id", id) });
  } else if (isEventOf(UserBlockedSchema, event)) {
    const { id, message } = decoded(UserBlockedSchema, event);
    await applyUserBlocked(deps, id, uuid(message.blockerId, "blocker_id", id), uuid(message.blockedId, "blocked_id", id));
  }
}
