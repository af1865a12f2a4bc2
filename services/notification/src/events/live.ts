// Live updates: every change of a user's list goes to their realtime stream
// as a durable NotificationsChanged event (offset, history, resumable).
//
// Updates carry state, not deltas (the group as it is now, the unread count
// now), so publishing again after a redelivery, or late, is harmless; ids
// are derived from the cause, so the stream stores each update once.
// A failure to publish is logged, not retried: the notification itself is
// committed, and a client reconciles with ListNotifications when it
// reconnects (the stream says recovered: false after a lost history). After
// a failure, updates are skipped for a few seconds (outage-gate.ts), so a
// realtime Redis outage slows nothing down.
import type { Database } from "@aviary/runtime/db/database";
import type { Logger } from "@aviary/runtime/log";
import { publishEvent } from "@aviary/runtime/realtime/events";
import type { UserStreamPublisher } from "@aviary/runtime/realtime/user-streams";
import { listedKinds } from "../domain/kinds.ts";
import { effectiveChannels } from "../domain/preferences.ts";
import { groupsById, touchedBy, unreadCount, watermark, type GroupRow } from "../store/notifications.ts";
import { loadPreferences } from "../store/preferences.ts";
import { presentGroup } from "../read/present.ts";
import { outageGate } from "./outage-gate.ts";

/** How long live updates are skipped after one failed (the stream's Redis is likely down). */
export const LIVE_SKIP_MS = 5_000;

/** One group an event's transaction wrote, as the live update shows it. */
export interface LiveChange {
  recipientId: string;
  group: GroupRow;
  seenSeq: number;
  /** The recipient's unread count over every listed kind, in the same transaction. */
  unreadCount: number;
}

export interface LiveUpdates {
  /** Announces what an event's transaction just wrote (no reads: the transaction handed over its results). */
  announce(eventId: string, changes: readonly LiveChange[]): Promise<void>;
  /** Announces the groups an event recorded or removed notifications in, read from the store (removals, redeliveries). */
  afterEvent(eventId: string): Promise<void>;
  /** Announces a moved watermark (the new unread count) to the user's devices. */
  afterMarkSeen(userId: string, seenSeq: number): Promise<void>;
}

export function createLiveUpdates(deps: { streams: UserStreamPublisher; database: Database; logger: Logger }): LiveUpdates {
  const db = deps.database.db;
  const gate = outageGate(LIVE_SKIP_MS);
  const failed = (context: Record<string, string>) => (error: unknown) => deps.logger.warn({ err: error, ...context }, `notification live update failed; skipping live updates for ${LIVE_SKIP_MS} ms`);

  async function badge(userId: string): Promise<number> {
    const preferences = await loadPreferences(db, userId);
    return unreadCount(
      db,
      userId,
      listedKinds.filter((kind) => effectiveChannels(preferences, kind).inApp),
    );
  }

  async function announce(userId: string, id: string, group: GroupRow | undefined, seenSeq: number, unreadCount?: number): Promise<void> {
    const unread = BigInt(unreadCount ?? (await badge(userId)));
    const value =
      group === undefined
        ? { unreadCount: unread }
        : group.notificationCount > 0
          ? { group: presentGroup(group, seenSeq), unreadCount: unread }
          : { removedGroupId: group.id, unreadCount: unread };
    await publishEvent(deps.streams, userId, id, { case: "notificationsChanged", value });
  }

  return {
    async announce(eventId, changes) {
      if (changes.length === 0) return;
      await gate.run(
        async () => {
          for (const change of changes) await announce(change.recipientId, `notifications:${eventId}:${change.group.id}`, change.group, change.seenSeq, change.unreadCount);
        },
        undefined,
        failed({ eventId }),
      );
    },
    async afterEvent(eventId) {
      const touched = await touchedBy(db, eventId);
      if (touched.length === 0) return;
      const rows = new Map((await groupsById(db, [...new Set(touched.map((t) => t.groupId))])).map((g) => [g.id, g]));
      await gate.run(
        async () => {
          for (const { recipientId, groupId } of touched) {
            const seen = await watermark(db, recipientId);
            await announce(recipientId, `notifications:${eventId}:${groupId}`, rows.get(groupId), seen);
          }
        },
        undefined,
        failed({ eventId }),
      );
    },
    async afterMarkSeen(userId, seenSeq) {
      await gate.run(() => announce(userId, `notifications:seen:${userId}:${seenSeq}`, undefined, seenSeq), undefined, failed({ userId }));
    },
  };
}
