// "New posts in your home feed" hints (aviary.realtime.v1.FeedUpdated) for
// readers holding a live stream, sent by the consumer right after a post
// reached their timelines.
//
// Hints are ephemeral and only a nudge to re-read GetHomeFeed, so sending one
// never decides an event's fate: a failure is logged and swallowed, never
// retried (a redelivery of the event may send the hint again; the realtime
// service coalesces). Signals go only to users with a live connection
// (onlyLive) and are never stored, so a big fan-out writes no histories.
//
// While the realtime Redis is down every signal would wait out the
// connection's retry and command timeout (up to ~2 s) on the consumer's path,
// once per follower batch. So after a failure hints are skipped for a pause:
// an outage costs the consumer one slow call per pause, not one per batch,
// and logs one warning per pause instead of one per batch.
import type { LogSink } from "@aviary/runtime/bus/log-sink";
import { signalEvent } from "@aviary/runtime/realtime/events";
import type { UserStreamPublisher } from "@aviary/runtime/realtime/user-streams";

export interface FeedHints {
  /** Tells those of `userIds` who hold a live stream that `postId` is in their home feed. Never throws. */
  postAdded(userIds: readonly string[], postId: string): Promise<void>;
}

export interface FeedHintsOptions {
  streams: UserStreamPublisher;
  logger: LogSink;
  /** How long hints are skipped after a failed signal (default 5 s). */
  pauseAfterFailureMs?: number;
  now?: () => number;
}

/**
 * The stream item id of a post's hint: the same for every batch and every
 * redelivery (each user is in one batch of a fan-out, so per user it names
 * the hint exactly). A UUID keeps it far below the port's 128 characters and
 * free of newlines.
 */
export const feedHintId = (postId: string): string => `feed:${postId}`;

export function createFeedHints(options: FeedHintsOptions): FeedHints {
  const pauseMs = options.pauseAfterFailureMs ?? 5_000;
  const now = options.now ?? Date.now;
  let pausedUntil = 0;
  return {
    async postAdded(userIds, postId) {
      if (userIds.length === 0 || now() < pausedUntil) return;
      try {
        await signalEvent(options.streams, userIds, feedHintId(postId), { case: "feedUpdated", value: { newestPostId: postId } }, { onlyLive: true });
      } catch (error) {
        pausedUntil = now() + pauseMs;
        options.logger.warn({ err: error, postId, users: userIds.length, pauseMs }, "feed live hint not sent; hints paused");
      }
    },
  };
}
