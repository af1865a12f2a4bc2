// Where unread counts come from. The notification service answers for
// notifications (services/bff/src/peers.ts); chat is not built yet, so its
// count stays zero until the chat service exists and plugs in here too, and
// GetHome will not change shape.
export interface UnreadCounts {
  notifications: bigint;
  chats: bigint;
}

/** How a source calls its services as the viewer: the viewer's own token, and the section's deadline. */
export interface CallAsViewer {
  headers: Record<string, string>;
  signal: AbortSignal;
  timeoutMs?: number;
}

export interface UnreadSource {
  counts(userId: string, call: CallAsViewer): Promise<UnreadCounts>;
}

/** Knows nothing: zero everywhere (tests of other sections, and a BFF without the notification service). */
export const noUnreadYet: UnreadSource = {
  counts: async () => ({ notifications: 0n, chats: 0n }),
};
