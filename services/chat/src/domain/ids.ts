// Keys derived from ids.

/** The unique key of a pair's direct conversation: both ids, sorted, joined by ":". */
export function directKey(a: string, b: string): string {
  return a < b ? `${a}:${b}` : `${b}:${a}`;
}

/**
 * The stream item id of a chat event delivered to one member: the same
 * Kafka event redelivered maps to the same id, and the user's stream drops
 * an id it already holds, so nothing reaches a member twice.
 */
export function deliveryId(eventId: string, memberId: string): string {
  return `chat:${eventId}:${memberId}`;
}
