// The post-commit fast path: a message sent into an existing conversation is
// published to its members' streams as soon as its statement commits, ahead
// of the outbox relay's linger, Kafka and the delivery consumer. That path
// stays the durable one: the fast path is best effort (a crash between the
// commit and its publish, or a Redis error, loses nothing; the consumer
// delivers), and both publish the same item ids (member-items.ts),
// so a device gets each message once.
//
// Order: each item goes out `onlyNext` on the conversation's seq
// (user-streams.ts ItemSequence), so the stream publishes it only right after
// the member's previous seq. A message from another instance committed just
// before, a membership change (those take the durable path only), or a send
// that overtook another on its way to Redis is not skipped past: the item is
// deferred and the consumer, which delivers in seq order, publishes it.
// Edits, deletes, reactions and receipts carry no seq and take the durable
// path only, so they may arrive after a later message that took this one.
import type { Message } from "@aviary/gen/aviary/chat/v1/chat_pb";
import type { LogSink } from "@aviary/runtime/bus/log-sink";
import type { UserStreamPublisher } from "@aviary/runtime/realtime/user-streams";
import { memberItems } from "./member-items.ts";

/** A committed message's event, as the send knows it. */
export interface CommittedMessage {
  /** The outbox event's id (what the consumer derives item ids from). */
  eventId: string;
  message: Message;
  memberIds: readonly string[];
}

export interface FastDelivery {
  /** Publishes the message to its members' streams; never throws, never delays the caller. */
  messageSent(sent: CommittedMessage): void;
  /**
   * The members this instance's fast path published the event to (and
   * forgets them): the consumer need not publish those again. Empty when
   * this instance did not (or has forgotten).
   */
  takePublished(eventId: string): ReadonlySet<string>;
}

export interface FastDeliveryOptions {
  streams: UserStreamPublisher;
  /**
   * Whether this process also runs the delivery consumer: only then is
   * what was published remembered for takePublished (an API-only process
   * has nobody to take it).
   */
  remember: boolean;
  /** Events remembered at most (the oldest are forgotten first: the consumer then publishes them again, as duplicates). */
  capacity?: number;
  logger: LogSink;
}

const none: ReadonlySet<string> = new Set();

export function fastDelivery(options: FastDeliveryOptions): FastDelivery {
  const capacity = options.capacity ?? 20_000;
  /** Event id → members published to, in insertion order (a Map iterates oldest first). */
  const published = new Map<string, ReadonlySet<string>>();
  let failuresLogged = 0;

  function remember(eventId: string, userIds: ReadonlySet<string>): void {
    if (!options.remember || userIds.size === 0) return;
    published.set(eventId, userIds);
    if (published.size > capacity) published.delete(published.keys().next().value!);
  }

  return {
    messageSent({ eventId, message, memberIds }) {
      const userIds = [...new Set(memberIds)];
      const sequence = { key: message.conversationId, seq: Number(message.seq), onlyNext: true };
      options.streams.publishMany(memberItems(eventId, userIds, { case: "chatMessage", value: message }, sequence)).then(
        (results) => remember(eventId, new Set(userIds.filter((_, i) => !results[i]!.deferred))),
        (error: unknown) => {
          // The consumer delivers these; one line now and then, not one per message of an outage.
          if (failuresLogged++ % 1000 === 0) options.logger.warn({ err: error, failures: failuresLogged }, "chat fast delivery failed; the delivery consumer will deliver");
        },
      );
    },
    takePublished(eventId) {
      const userIds = published.get(eventId);
      if (userIds === undefined) return none;
      published.delete(eventId);
      return userIds;
    },
  };
}
