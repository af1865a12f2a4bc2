// Where unread counts come from: the notification service answers for
// notifications and the chat service for chats (services/bff/src/peers.ts),
// each as the viewer.
export interface UnreadCounts {
  notifications: bigint;
  /** Conversations with something unread (the chat badge counts chats, not messages). */
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

/** Knows nothing: zero everywhere (tests of other sections). */
export const noUnreadYet: UnreadSource = {
  counts: async () => ({ notifications: 0n, chats: 0n }),
};
