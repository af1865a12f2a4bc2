// Recording, removing and reading notifications and their groups.
//
// Every change to a recipient's notifications first takes that recipient's
// row lock (recipients), in user-id order when one event touches several
// recipients (no deadlocks). Ingest numbers each notification under that
// lock and updates its group in the same statement sequence; removal marks
// rows removed and recomputes each touched group from what is left. So a
// group's counts always equal its live rows, and the list and the unread
// count read the same rows with the same filter: live groups of the given
// kinds (visibleGroups; groupPage spells the same three conditions in SQL,
// for its one-statement page — change them together).
import { and, eq, gt, inArray, or, sql, type SQL } from "drizzle-orm";
import type { PgUpdateSetSource } from "drizzle-orm/pg-core";
import type { Queryable, Tx } from "@aviary/runtime/db/database";
import { rowsOf } from "@aviary/runtime/db/rows";
import { SAMPLE_ACTORS } from "../domain/grouping.ts";
import type { KindName } from "../domain/kinds.ts";
import { blocks, deletedPosts, follows, groups, notifications, preferences, recipients, suspendedUsers } from "./schema.ts";

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

/** What recording a notification left behind: its group as it is now, and the recipient's watermark. */
export interface Recorded {
  group: GroupRow;
  seenSeq: number;
}

/**
 * Records one notification and folds it into its group. The numbering takes
 * the recipient's row lock (creating the row); an event with several
 * recipients records them in user-id order (applyCandidates), so two
 * transactions always lock in the same order.
 */
export async function recordNotification(tx: Tx, n: NewNotification): Promise<Recorded> {
  const [row] = rowsOf(
    await tx.execute(sql`
      insert into ${recipients} as r (user_id, last_seq) values (${n.recipientId}, 1)
      on conflict (user_id) do update set last_seq = r.last_seq + 1
      returning r.last_seq as seq, r.seen_seq as seen, clock_timestamp() as at`),
  );
  if (row === undefined) throw new Error("recordNotification: numbering returned no row");
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
    returning g.*`));
  if (upserted === undefined) throw new Error("recordNotification: the group upsert returned no row");
  const group = groupFromRow(upserted);
  await tx.insert(notifications).values({
    id: n.id,
    recipientId: n.recipientId,
    kind: n.kind,
    groupId: group.id,
    actorId: n.actorId,
    postId,
    sourceId,
    seq,
    createdAt: at,
    eventId: n.eventId,
  });
  return { group, seenSeq: Number(row["seen"]) };
}

/** A raw `groups` row (snake_case, as `returning g.*` gives it) as drizzle would type it. */
function groupFromRow(row: Record<string, unknown>): GroupRow {
  const uuidOrNull = (value: unknown) => (value === null || value === undefined ? null : String(value));
  const sample = row["sample_actor_ids"];
  return {
    id: String(row["id"]),
    recipientId: String(row["recipient_id"]),
    kind: String(row["kind"]),
    groupKey: String(row["group_key"]),
    postId: uuidOrNull(row["post_id"]),
    latestSourceId: uuidOrNull(row["latest_source_id"]),
    notificationCount: Number(row["notification_count"]),
    actorCount: Number(row["actor_count"]),
    // node-postgres parses uuid[]; PGlite may hand back the literal "{a,b}".
    sampleActorIds: Array.isArray(sample) ? sample.map(String) : String(sample ?? "{}").replace(/^\{|\}$/g, "").split(",").filter((id) => id !== ""),
    latestSeq: Number(row["latest_seq"]),
    latestAt: new Date(row["latest_at"] as string | Date),
  };
}

/** What the rules need to know about one candidate, in one round trip. */
export interface IngestFacts {
  /** Either blocks the other. */
  blocked: boolean;
  /** The post (or the reply) it is about was deleted. */
  postDeleted: boolean;
  /** The recipient follows the actor. */
  following: boolean;
  /** A moderator suspended the actor. */
  actorSuspended: boolean;
  /** The recipient's stored preferences, if any. */
  preferences: { channels: Record<string, { inApp: boolean; push: boolean }>; onlyFromFollowing: boolean } | undefined;
}

export async function ingestFacts(db: Queryable, c: { recipientId: string; actorId: string; postIds: readonly string[] }): Promise<IngestFacts> {
  const postIds = c.postIds.length === 0 ? sql`array[]::uuid[]` : sql`array[${sql.join(c.postIds.map((id) => sql`${id}`), sql`, `)}]::uuid[]`;
  const [row] = rowsOf(
    await db.execute(sql`select
      exists (select 1 from ${blocks} b where (b.blocker_id = ${c.recipientId} and b.blocked_id = ${c.actorId}) or (b.blocker_id = ${c.actorId} and b.blocked_id = ${c.recipientId})) as blocked,
      exists (select 1 from ${deletedPosts} d where d.post_id = any(${postIds})) as post_deleted,
      exists (select 1 from ${follows} f where f.follower_id = ${c.recipientId} and f.followee_id = ${c.actorId}) as following,
      exists (select 1 from ${suspendedUsers} s where s.user_id = ${c.actorId} and s.suspended) as actor_suspended,
      (select json_build_object('channels', p.channels, 'onlyFromFollowing', p.only_from_following) from ${preferences} p where p.user_id = ${c.recipientId}) as preferences`),
  );
  const stored = row?.["preferences"];
  const parsed = typeof stored === "string" ? (JSON.parse(stored) as IngestFacts["preferences"]) : (stored as IngestFacts["preferences"] | null);
  return {
    blocked: row?.["blocked"] === true,
    postDeleted: row?.["post_deleted"] === true,
    following: row?.["following"] === true,
    actorSuspended: row?.["actor_suspended"] === true,
    preferences: parsed ?? undefined,
  };
}

/** What a removal changed, per recipient: groups recomputed (count 0 = gone from the list). */
export type RemovalResult = Map<string, GroupRow[]>;

/**
 * Removes the notifications matching `where` (a condition on the
 * notifications table) and recomputes their groups: the live ones, and those
 * hidden by a suspension, which then stay removed when it is lifted.
 */
export function removeNotifications(tx: Tx, eventId: string, where: SQL): Promise<RemovalResult> {
  return changeVisibility(tx, and(where, sql`(${notifications.removedAt} is null or ${notifications.hiddenBySuspension})`)!, {
    removedAt: sql`coalesce(${notifications.removedAt}, clock_timestamp())`,
    removedByEventId: eventId,
    hiddenBySuspension: false,
  });
}

/** Hides everything `actorId` caused that is live, until restoreSuspendedActor (a suspension). */
export function hideSuspendedActor(tx: Tx, eventId: string, actorId: string): Promise<RemovalResult> {
  return changeVisibility(tx, and(eq(notifications.actorId, actorId), sql`${notifications.removedAt} is null`)!, {
    removedAt: sql`clock_timestamp()`,
    removedByEventId: eventId,
    hiddenBySuspension: true,
  });
}

/** Brings back what hideSuspendedActor hid and nothing removed since (an unsuspension); `eventId` marks the rows for the live updates. */
export function restoreSuspendedActor(tx: Tx, eventId: string, actorId: string): Promise<RemovalResult> {
  return changeVisibility(tx, and(eq(notifications.actorId, actorId), sql`${notifications.hiddenBySuspension}`)!, {
    removedAt: null,
    removedByEventId: eventId,
    hiddenBySuspension: false,
  });
}

/**
 * Updates the notifications matching `where` with `set` and recomputes their
 * groups. Takes the locks of the recipients involved first.
 */
async function changeVisibility(tx: Tx, where: SQL, set: PgUpdateSetSource<typeof notifications>): Promise<RemovalResult> {
  const affected = await tx.selectDistinct({ recipientId: notifications.recipientId }).from(notifications).where(where);
  const result: RemovalResult = new Map();
  if (affected.length === 0) return result;
  await lockRecipients(
    tx,
    affected.map((a) => a.recipientId),
  );
  const changed = await tx
    .update(notifications)
    .set(set)
    .where(where)
    .returning({ recipientId: notifications.recipientId, groupId: notifications.groupId });
  const groupIds = [...new Set(changed.map((r) => r.groupId))];
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

// --- reading ---------------------------------------------------------------

/** The one filter of the list and the unread count: live groups of the given kinds. */
function visibleGroups(userId: string, kinds: readonly KindName[]): SQL {
  return and(eq(groups.recipientId, userId), gt(groups.notificationCount, 0), inArray(groups.kind, [...kinds]))!;
}

export async function watermark(db: Queryable, userId: string): Promise<number> {
  const [row] = await db.select({ seenSeq: recipients.seenSeq }).from(recipients).where(eq(recipients.userId, userId));
  return row?.seenSeq ?? 0;
}

export interface GroupPage {
  /** Newest activity first. */
  rows: GroupRow[];
  /** Unread groups of the same kinds (all of them, not just this page's). */
  unread: number;
  /** The watermark the page's unread flags are relative to. */
  seenSeq: number;
}

/**
 * A page, the unread count and the watermark in one statement: one snapshot,
 * so the flags on the page, the count next to it and the watermark always
 * belong together, and one round trip instead of a transaction of four.
 */
export async function groupPage(db: Queryable, userId: string, kinds: readonly KindName[], limit: number, beforeSeq?: number): Promise<GroupPage> {
  if (kinds.length === 0) return { rows: [], unread: 0, seenSeq: await watermark(db, userId) };
  const kindList = sql`array[${sql.join(kinds.map((kind) => sql`${kind}`), sql`, `)}]::text[]`;
  const result = rowsOf(
    await db.execute(sql`
      with seen as (select coalesce((select r.seen_seq from ${recipients} r where r.user_id = ${userId}), 0) as seq)
      select seen.seq as seen_seq,
        (select count(*) from ${groups} u
          where u.recipient_id = ${userId} and u.notification_count > 0 and u.kind = any(${kindList}) and u.latest_seq > seen.seq) as unread,
        page.*
      from seen left join lateral (
        select g.* from ${groups} g
        where g.recipient_id = ${userId} and g.notification_count > 0 and g.kind = any(${kindList})
          ${beforeSeq === undefined ? sql`` : sql`and g.latest_seq < ${beforeSeq}`}
        order by g.latest_seq desc
        limit ${limit}
      ) page on true`),
  );
  const first = result[0];
  return {
    rows: result.filter((row) => row["id"] !== null && row["id"] !== undefined).map(groupFromRow),
    unread: Number(first?.["unread"] ?? 0),
    seenSeq: Number(first?.["seen_seq"] ?? 0),
  };
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
