// Recording, removing and reading notifications and their groups.
//
// Every change to a recipient's notifications first takes that recipient's
// row lock (recipients), in user-id order when one event touches several
// recipients (no deadlocks). Ingest numbers each notification under that
// lock and updates its group in the same statement sequence; removal marks
// rows removed and recomputes each touched group from what is left. So a
// group's counts always equal its live rows, and the list and the unread
// count read the same rows with the same filter (visibleGroups).
import { and, desc, eq, gt, inArray, lt, or, sql, type SQL } from "drizzle-orm";
import type { Queryable, Tx } from "@aviary/runtime/db/database";
import { rowsOf } from "@aviary/runtime/db/rows";
import { SAMPLE_ACTORS } from "../domain/grouping.ts";
import type { KindName } from "../domain/kinds.ts";
import { deletedPosts, groups, notifications, recipients } from "./schema.ts";

export type GroupRow = typeof groups.$inferSelect;

export interface NewNotification {
  id: string;
  /** The source event. */
  eventId: string;
  recipientId: string;
  kind: Exclude<KindName, "message">;
  groupKey: string;
  actorId: string;
  postId: string | undefined;
  sourceId: string | undefined;
}

/** Takes the recipients' locks (creating their rows), in id order. */
export async function lockRecipients(tx: Tx, userIds: readonly string[]): Promise<void> {
  for (const userId of [...new Set(userIds)].sort()) {
    await tx.execute(sql`insert into ${recipients} (user_id) values (${userId}) on conflict (user_id) do update set last_seq = ${recipients.lastSeq}`);
  }
}

/**
 * Records one notification and folds it into its group. The caller holds the
 * recipient's lock (lockRecipients). Returns the group as it is now.
 */
export async function recordNotification(tx: Tx, n: NewNotification): Promise<GroupRow> {
  const [row] = rowsOf(
    await tx.execute(sql`update ${recipients} set last_seq = last_seq + 1 where user_id = ${n.recipientId} returning last_seq as seq, clock_timestamp() as at`),
  );
  if (row === undefined) throw new Error("recordNotification: the recipient is not locked");
  const seq = Number(row["seq"]);
  const at = new Date(row["at"] as string | Date);
  const postId = n.postId ?? null;
  const sourceId = n.sourceId ?? null;
  // One upsert: a new group, or the existing one with this notification
  // folded in. "Is the actor new to the group" reads the group's live rows
  // before this notification's row exists.
  const [upserted] = rowsOf(await tx.execute(sql`
    insert into ${groups} as g (id, recipient_id, kind, group_key, post_id, latest_source_id, notification_count, actor_count, sample_actor_ids, latest_seq, latest_at)
    values (${crypto.randomUUID()}, ${n.recipientId}, ${n.kind}, ${n.groupKey}, ${postId}, ${sourceId}, 1, 1, array[${n.actorId}]::uuid[], ${seq}, ${at})
    on conflict (recipient_id, group_key) do update set
      notification_count = g.notification_count + 1,
      actor_count = g.actor_count + case when exists (
        select 1 from ${notifications} n where n.group_id = g.id and n.actor_id = ${n.actorId} and n.removed_at is null
      ) then 0 else 1 end,
      sample_actor_ids = (array[${n.actorId}]::uuid[] || array_remove(g.sample_actor_ids, ${n.actorId}::uuid))[1:${SAMPLE_ACTORS}],
      latest_source_id = excluded.latest_source_id,
      latest_seq = excluded.latest_seq,
      latest_at = excluded.latest_at
    returning id`));
  const groupId = String(upserted?.["id"]);
  await tx.insert(notifications).values({
    id: n.id,
    recipientId: n.recipientId,
    kind: n.kind,
    groupId,
    actorId: n.actorId,
    postId,
    sourceId,
    seq,
    createdAt: at,
    eventId: n.eventId,
  });
  const [group] = await tx.select().from(groups).where(eq(groups.id, groupId));
  if (group === undefined) throw new Error("recordNotification: group vanished");
  return group;
}

/** What a removal changed, per recipient: groups recomputed (count 0 = gone from the list). */
export type RemovalResult = Map<string, GroupRow[]>;

/**
 * Removes the live notifications matching `where` (a condition on the
 * notifications table) and recomputes their groups. Takes the locks of the
 * recipients involved first.
 */
export async function removeNotifications(tx: Tx, eventId: string, where: SQL): Promise<RemovalResult> {
  const affected = await tx
    .selectDistinct({ recipientId: notifications.recipientId })
    .from(notifications)
    .where(and(where, sql`${notifications.removedAt} is null`));
  const result: RemovalResult = new Map();
  if (affected.length === 0) return result;
  await lockRecipients(
    tx,
    affected.map((a) => a.recipientId),
  );
  const removed = await tx
    .update(notifications)
    .set({ removedAt: sql`clock_timestamp()`, removedByEventId: eventId })
    .where(and(where, sql`${notifications.removedAt} is null`))
    .returning({ recipientId: notifications.recipientId, groupId: notifications.groupId });
  const groupIds = [...new Set(removed.map((r) => r.groupId))];
  for (const groupId of groupIds) {
    const group = await recomputeGroup(tx, groupId);
    if (group === undefined) continue;
    const list = result.get(group.recipientId) ?? [];
    list.push(group);
    result.set(group.recipientId, list);
  }
  return result;
}

/** A group's counts, sample and newest activity from its live rows (a group with none keeps its last order, count 0). */
async function recomputeGroup(tx: Tx, groupId: string): Promise<GroupRow | undefined> {
  await tx.execute(sql`
    update ${groups} as g set
      notification_count = s.notifications,
      actor_count = s.actors,
      sample_actor_ids = coalesce(s.sample, '{}'),
      latest_seq = coalesce(s.latest_seq, g.latest_seq),
      latest_at = coalesce(s.latest_at, g.latest_at),
      latest_source_id = case when s.latest_seq is null then g.latest_source_id else s.latest_source_id end
    from (
      select
        count(*)::int as notifications,
        count(distinct n.actor_id)::int as actors,
        max(n.seq) as latest_seq,
        max(n.created_at) as latest_at,
        (select n2.source_id from ${notifications} n2 where n2.group_id = ${groupId} and n2.removed_at is null order by n2.seq desc limit 1) as latest_source_id,
        (select array_agg(a.actor_id order by a.newest desc) from (
          select n3.actor_id, max(n3.seq) as newest from ${notifications} n3
          where n3.group_id = ${groupId} and n3.removed_at is null
          group by n3.actor_id order by newest desc limit ${SAMPLE_ACTORS}
        ) a) as sample
      from ${notifications} n where n.group_id = ${groupId} and n.removed_at is null
    ) s
    where g.id = ${groupId}`);
  const [group] = await tx.select().from(groups).where(eq(groups.id, groupId));
  return group;
}

/** Conditions for the removal cases. */
export const notificationsWhere = {
  /** Everything about a post, and everything it caused (a deleted reply or mentioning post). */
  post: (postId: string) => sql`(${notifications.postId} = ${postId} or ${notifications.sourceId} = ${postId})`,
  /** What one comment caused. */
  source: (sourceId: string) => eq(notifications.sourceId, sourceId),
  /** A like taken back. */
  like: (postId: string, likerId: string) => and(eq(notifications.kind, "like"), eq(notifications.postId, postId), eq(notifications.actorId, likerId))!,
  /** A follow undone soon after: the follow notifications of that edge recorded since `since`. */
  followSince: (followeeId: string, followerId: string, since: Date) =>
    and(eq(notifications.kind, "follow"), eq(notifications.recipientId, followeeId), eq(notifications.actorId, followerId), sql`${notifications.createdAt} >= ${since}`)!,
  /** Everything between two users, both ways (a block). */
  between: (a: string, b: string) =>
    sql`((${notifications.recipientId} = ${a} and ${notifications.actorId} = ${b}) or (${notifications.recipientId} = ${b} and ${notifications.actorId} = ${a}))`,
};

/** The (recipient, group) pairs an event recorded or removed notifications in: what its live updates are about. */
export async function touchedBy(db: Queryable, eventId: string): Promise<Array<{ recipientId: string; groupId: string }>> {
  return db
    .selectDistinct({ recipientId: notifications.recipientId, groupId: notifications.groupId })
    .from(notifications)
    .where(or(eq(notifications.eventId, eventId), eq(notifications.removedByEventId, eventId)));
}

export async function groupsById(db: Queryable, groupIds: readonly string[]): Promise<GroupRow[]> {
  if (groupIds.length === 0) return [];
  return db.select().from(groups).where(inArray(groups.id, [...groupIds]));
}

export async function markPostDeleted(tx: Tx, postId: string, at: Date): Promise<void> {
  await tx.insert(deletedPosts).values({ postId, deletedAt: at }).onConflictDoNothing();
}

export async function anyPostDeleted(db: Queryable, postIds: readonly string[]): Promise<boolean> {
  if (postIds.length === 0) return false;
  const rows = await db.select({ postId: deletedPosts.postId }).from(deletedPosts).where(inArray(deletedPosts.postId, [...postIds])).limit(1);
  return rows.length > 0;
}

// --- reading ---------------------------------------------------------------

/** The one filter of the list and the unread count: live groups of the given kinds. */
function visibleGroups(userId: string, kinds: readonly KindName[]): SQL {
  return and(eq(groups.recipientId, userId), gt(groups.notificationCount, 0), inArray(groups.kind, [...kinds]))!;
}

export async function watermark(db: Queryable, userId: string): Promise<number> {
  const [row] = await db.select({ seenSeq: recipients.seenSeq }).from(recipients).where(eq(recipients.userId, userId));
  return row?.seenSeq ?? 0;
}

/** A page of groups, newest activity first, strictly older than `beforeSeq` when given. */
export async function listGroups(db: Queryable, userId: string, kinds: readonly KindName[], limit: number, beforeSeq?: number): Promise<GroupRow[]> {
  if (kinds.length === 0) return [];
  return db
    .select()
    .from(groups)
    .where(and(visibleGroups(userId, kinds), beforeSeq === undefined ? undefined : lt(groups.latestSeq, beforeSeq)))
    .orderBy(desc(groups.latestSeq))
    .limit(limit);
}

/** Groups with activity above the watermark, with exactly the list's filter. */
export async function unreadCount(db: Queryable, userId: string, kinds: readonly KindName[]): Promise<number> {
  if (kinds.length === 0) return 0;
  const [row] = await db
    .select({ count: sql<number>`count(*)::int` })
    .from(groups)
    .where(and(visibleGroups(userId, kinds), sql`${groups.latestSeq} > coalesce((select ${recipients.seenSeq} from ${recipients} where ${recipients.userId} = ${userId}), 0)`));
  return row?.count ?? 0;
}

export async function findGroup(db: Queryable, userId: string, groupId: string): Promise<GroupRow | undefined> {
  const [row] = await db.select().from(groups).where(and(eq(groups.id, groupId), eq(groups.recipientId, userId)));
  return row;
}

/**
 * Moves the watermark forward to `seq` (never back, never past the last
 * numbered notification). Returns whether it moved.
 */
export async function advanceWatermark(tx: Tx, userId: string, seq: number): Promise<boolean> {
  const moved = rowsOf(
    await tx.execute(sql`update ${recipients} set seen_seq = least(${seq}, last_seq) where user_id = ${userId} and seen_seq < least(${seq}, last_seq) returning seen_seq`),
  );
  return moved.length > 0;
}

/** The seq of the newest notification recorded at or before `at` (0: none). */
export async function seqAt(db: Queryable, userId: string, at: Date): Promise<number> {
  const [row] = await db
    .select({ seq: sql<string | null>`max(${notifications.seq})` })
    .from(notifications)
    .where(and(eq(notifications.recipientId, userId), sql`${notifications.createdAt} <= ${at}`));
  return row?.seq == null ? 0 : Number(row.seq);
}
