// Seeding for the fan-out scenario of bench/feed.ts: followers straight into
// the feed service's own projection (registering 100,000 accounts would take
// hours of argon2id), and their timelines through the feed's TimelineStore,
// because fan-out writes only timelines that exist.
import pg from "pg";
import type { Redis } from "ioredis";
import type { TimelineStore } from "../services/feed/src/store/timelines.ts";
import { inParallel } from "./support.ts";

export interface SeededAuthor {
  authorId: string;
  /** Every follower id (synthetic ones plus `alsoFollowing`). */
  followers: string[];
  /** The follower fan-out writes last: fan-out walks followers in keyset order of follower id. */
  lastFollower: string;
}

/**
 * Gives `authorId` `synthetic` new follower ids (plus the real accounts in
 * `alsoFollowing`) in feed.follows and sets its feed.follower_counts row, as
 * FollowCreated events would have.
 */
export async function seedFollowers(databaseUrl: string, authorId: string, synthetic: number, alsoFollowing: readonly string[] = []): Promise<SeededAuthor> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query("begin");
    const { rows } = await client.query<{ id: string }>(
      `insert into feed.follows (follower_id, followee_id, created_at)
       select gen_random_uuid(), $1::uuid, now() - (g || ' milliseconds')::interval from generate_series(1, $2::int) g
       returning follower_id as id`,
      [authorId, synthetic],
    );
    for (const id of alsoFollowing) {
      await client.query("insert into feed.follows (follower_id, followee_id, created_at) values ($1, $2, now()) on conflict do nothing", [id, authorId]);
    }
    const { rows: counted } = await client.query<{ n: string }>("select count(*) as n from feed.follows where followee_id = $1", [authorId]);
    const followers = Number(counted[0]?.n ?? 0);
    await client.query(
      `insert into feed.follower_counts (user_id, followers) values ($1, $2)
       on conflict (user_id) do update set followers = excluded.followers`,
      [authorId, followers],
    );
    await client.query("commit");
    await client.query("analyze feed.follows");
    const { rows: last } = await client.query<{ id: string }>("select follower_id as id from feed.follows where followee_id = $1 order by follower_id desc limit 1", [authorId]);
    return { authorId, followers: [...rows.map((r) => r.id), ...alsoFollowing], lastFollower: last[0]?.id ?? "" };
  } finally {
    await client.end();
  }
}

/** Creates each user's (empty) timeline, as a first read would; many in flight at once on one connection. */
export async function createTimelines(timelines: TimelineStore, userIds: readonly string[]): Promise<void> {
  await inParallel(userIds, 500, async (userId) => {
    const start = await timelines.beginRebuild(userId);
    if (start === "started" && !(await timelines.finishRebuild(userId))) throw new Error(`timeline rebuild of ${userId} expired`);
  });
}

/** How many of `userIds`' timelines hold `postId` (pipelined ZSCOREs, in chunks). */
export async function countTimelinesHolding(redis: Redis, keyOf: (userId: string) => string, userIds: readonly string[], postId: string): Promise<number> {
  let holding = 0;
  for (let i = 0; i < userIds.length; i += 5_000) {
    const pipeline = redis.pipeline();
    for (const userId of userIds.slice(i, i + 5_000)) pipeline.zscore(keyOf(userId), postId);
    for (const [error, score] of (await pipeline.exec()) ?? []) {
      if (error) throw error;
      if (score !== null) holding += 1;
    }
  }
  return holding;
}
