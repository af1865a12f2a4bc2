// The two statements a batch of PostCreated events costs the projection
// (events/apply.ts applyPostsCreated), prepared: built once, parsed and
// planned by PostgreSQL once per connection.
//
// Why two statements and not a transaction of seven (BEGIN, the
// processed-event claim, the follower counts, the merged-author check, the
// insert, COMMIT, then the re-read and the followers): each round trip costs
// the consumer a socket write and PostgreSQL a parse, and the consumer pays
// them per Kafka batch, which at a few hundred posts a second is about one
// per post (issue 17's CPU per post). One autocommitted statement is as
// atomic as the transaction was: its data-modifying CTEs commit together or
// not at all, and they all read the snapshot from before the statement,
// which is what the merged-author check needs (was there a live merged post
// before these?).
import { sql } from "drizzle-orm";
import type { Db } from "@aviary/runtime/db/database";
import { idArray, perDatabase, preparedSql, textArray } from "@aviary/runtime/db/prepared";
import { followerCounts, follows, posts, processedEvents } from "./schema.ts";
import { EVERY_READER, MERGE_CHANNEL, type PostRow } from "./projection.ts";

/** A post as its PostCreated event names it. */
export interface ArrivingPost {
  eventId: string;
  postId: string;
  authorId: string;
  createdAt: Date;
}

const value = (name: string) => sql.placeholder(name);

// fresh: the events claimed now, each post fanned out or merged, decided
// once, when it arrives, and remembered (a reader's merge and a later
// deletion must agree on where it went). crossing: an author's first live
// post that is not fanned out, so every reader's merged followees may have
// grown (read/merged-authors.ts); the notification goes out on commit.
const recordStatement = perDatabase((db: Db) =>
  preparedSql(
    db,
    "feed_record_posts",
    sql`with arriving as (
        select * from unnest(${value("eventIds")}::uuid[], ${value("postIds")}::uuid[], ${value("authorIds")}::uuid[], ${value("createdAts")}::timestamptz[])
          as a(event_id, post_id, author_id, created_at)),
      claimed as (
        insert into ${processedEvents} (consumer, event_id)
        select distinct ${value("consumer")}::text, event_id from arriving
        on conflict do nothing
        returning event_id),
      fresh as (
        select a.post_id, a.author_id, a.created_at,
          (${value("threshold")}::bigint is null or coalesce(c.followers, 0) <= ${value("threshold")}::bigint) as fanned_out
        from arriving as a
        join claimed using (event_id)
        left join ${followerCounts} as c on c.user_id = a.author_id),
      inserted as (
        insert into ${posts} (post_id, author_id, created_at, fanned_out)
        select post_id, author_id, created_at, fanned_out from fresh
        on conflict do nothing
        returning post_id),
      crossing as (
        select exists (
          select 1 from fresh as f
          where not f.fanned_out
            and not exists (select 1 from ${posts} as p where p.author_id = f.author_id and p.fanned_out = false and p.deleted_at is null)
        ) as crossed)
      select crossed, case when crossed then pg_notify(${MERGE_CHANNEL}, ${EVERY_READER}) end as notified
      from crossing`,
  ),
);

/**
 * Claims the events' ids for `consumer` and records the posts of the events
 * claimed now (keeping an existing row: a replay, or the tombstone of an
 * earlier PostDeleted), each fanned out or merged at read time by its
 * author's follower count against `threshold` (null: every post is fanned
 * out). True when an author got their first live merged post: readers'
 * processes were notified on commit, and this one's memo must forget too.
 */
export async function recordArrivals(db: Db, consumer: string, arriving: readonly ArrivingPost[], threshold: number | null): Promise<{ crossed: boolean }> {
  if (arriving.length === 0) return { crossed: false };
  const [row] = await recordStatement(db).execute({
    consumer,
    eventIds: idArray(arriving.map((post) => post.eventId)),
    postIds: idArray(arriving.map((post) => post.postId)),
    authorIds: idArray(arriving.map((post) => post.authorId)),
    createdAts: textArray(arriving.map((post) => post.createdAt.toISOString())),
    threshold,
  });
  return { crossed: row?.["crossed"] === true };
}

// Ordered so each author's followers come in keyset order: the last one is
// where the next page starts.
const liveStatement = perDatabase((db: Db) =>
  preparedSql(
    db,
    "feed_live_posts",
    sql`with live as (
        select post_id, author_id, created_at, fanned_out from ${posts}
        where post_id = any(${value("postIds")}::uuid[]) and deleted_at is null)
      select * from (
        select 'post' as kind, author_id, post_id as id, floor(extract(epoch from created_at) * 1000)::bigint::text as created_ms, fanned_out from live
        union all
        select 'follower', a.author_id, f.follower_id, null, null
        from (select distinct author_id from live where fanned_out) as a
        cross join lateral (
          select ${follows.followerId} as follower_id from ${follows}
          where ${follows.followeeId} = a.author_id order by ${follows.followerId} limit ${value("limit")}::int) as f
      ) as rows
      order by kind, author_id, id`,
  ),
);

/**
 * What a batch's fan-out starts from, read after the commit (a post deleted,
 * or an account purged, meanwhile is not written anywhere): the live posts
 * among `postIds`, and the first keyset page (`limit`, by follower id) of
 * the followers of each author with a fanned-out one, in one round trip (one
 * index walk per author on follows_followee_follower_idx). An author with a
 * full page has more.
 */
export async function livePostsAndFirstFollowers(db: Db, postIds: readonly string[], limit: number): Promise<{ live: PostRow[]; firstPages: Map<string, string[]> }> {
  const live: PostRow[] = [];
  const firstPages = new Map<string, string[]>();
  if (postIds.length === 0) return { live, firstPages };
  const rows = await liveStatement(db).execute({ postIds: idArray([...new Set(postIds)]), limit });
  for (const row of rows) {
    const authorId = String(row["author_id"]);
    if (row["kind"] === "post") {
      live.push({ postId: String(row["id"]), authorId, createdAt: new Date(Number(row["created_ms"])), deletedAt: null, fannedOut: row["fanned_out"] === true });
    } else {
      const page = firstPages.get(authorId) ?? [];
      page.push(String(row["id"]));
      firstPages.set(authorId, page);
    }
  }
  return { live, firstPages };
}
