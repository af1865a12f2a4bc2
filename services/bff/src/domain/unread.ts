// Where unread counts come from. Notifications and chat are not built yet, so
// the only source is the one that knows nothing (zero); their services will
// plug in here with their clients, and GetHome will not change shape.
export interface UnreadCounts {
  notifications: bigint;
  chats: bigint;
}

export interface UnreadSource {
  counts(userId: string, signal: AbortSignal): Promise<UnreadCounts>;
}

export const noUnreadYet: UnreadSource = {
  counts: async () => ({ notifications: 0n, chats: 0n }),
};
