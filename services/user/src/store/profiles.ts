import { and, asc, eq, inArray, or, sql, type SQL } from "drizzle-orm";
import type { Queryable, Tx } from "@aviary/runtime/db/database";
import { blocks, profileNameTails, profiles } from "./schema.ts";
import { escapeLike } from "../domain/search.ts";

export type ProfileRow = typeof profiles.$inferSelect;

/**
 * The profile of a newly registered account. Keeps an existing profile (a
 * replayed event, or one made lazily by the owner's first call) and only
 * fills in a region it does not have yet.
 */
export async function createProfileFromRegistration(tx: Tx, input: { userId: string; region: string | null; createdAt: Date }): Promise<void> {
  await tx
    .insert(profiles)
    .values({ userId: input.userId, region: input.region, createdAt: input.createdAt, updatedAt: input.createdAt })
    .onConflictDoUpdate({ target: profiles.userId, set: { region: sql`coalesce(${profiles.region}, excluded.region)` } });
}

/**
 * Makes sure the caller's own profile exists: a verified token proves the
 * account exists, and its UserRegistered event may not have arrived yet.
 */
export async function ensureProfile(db: Queryable, userId: string, at: Date): Promise<void> {
  await db.insert(profiles).values({ userId, createdAt: at, updatedAt: at }).onConflictDoNothing();
}

export async function findProfile(db: Queryable, userId: string): Promise<ProfileRow | undefined> {
  const [row] = await db.select().from(profiles).where(eq(profiles.userId, userId));
  return row;
}

export async function findProfileByUsernameKey(db: Queryable, key: string): Promise<ProfileRow | undefined> {
  const [row] = await db.select().from(profiles).where(eq(profiles.usernameKey, key));
  return row;
}

/** The public names of a user, for other services (mentions, push text). */
export interface ProfileSummaryRow {
  userId: string;
  username: string | null;
  displayName: string;
}

/**
 * The profiles with any of `userIds` or any of the username keys, in one
 * query (the primary key and profiles_username_key); a user matched both ways
 * is one row.
 */
export function findSummaries(db: Queryable, userIds: readonly string[], usernameKeys: readonly string[]): Promise<ProfileSummaryRow[]> {
  const matches = [
    userIds.length > 0 ? inArray(profiles.userId, [...userIds]) : undefined,
    usernameKeys.length > 0 ? inArray(profiles.usernameKey, [...usernameKeys]) : undefined,
  ].filter((m) => m !== undefined);
  if (matches.length === 0) return Promise.resolve([]);
  return db
    .select({ userId: profiles.userId, username: profiles.username, displayName: profiles.displayName })
    .from(profiles)
    .where(or(...matches))
    .orderBy(asc(profiles.userId));
}

/** Locks the profiles of `userIds` in id order (so two transactions never deadlock) and returns them. */
export function lockProfiles(tx: Tx, userIds: string[]): Promise<ProfileRow[]> {
  return tx.select().from(profiles).where(inArray(profiles.userId, userIds)).orderBy(asc(profiles.userId)).for("update");
}

export async function updateProfile(
  tx: Tx,
  userId: string,
  changes: Partial<Pick<ProfileRow, "username" | "usernameKey" | "displayName" | "bio" | "avatarMediaId">>,
  at: Date,
): Promise<ProfileRow | undefined> {
  const [row] = await tx
    .update(profiles)
    .set({ ...changes, updatedAt: at })
    .where(eq(profiles.userId, userId))
    .returning();
  return row;
}

/**
 * SQL: the ids of the users separated from `viewerId` by a block, either way,
 * as one array (usually small): a plain `<> all(...)` filter on an index
 * walk, where an anti-join would make the planner probe blocks per row.
 */
export function blockedEitherWayIds(viewerId: string): SQL {
  return sql`array(select ${blocks.blockedId} from ${blocks} where ${blocks.blockerId} = ${viewerId} union all select ${blocks.blockerId} from ${blocks} where ${blocks.blockedId} = ${viewerId})`;
}

/**
 * Rewrites the name tails of `userId` (see schema.ts profileNameTails) for
 * its new display name; in the transaction that changes the name.
 */
export async function replaceNameTails(tx: Tx, userId: string, displayName: string): Promise<void> {
  await tx.delete(profileNameTails).where(eq(profileNameTails.userId, userId));
  // The same rule as the backfill in migrations/0001: after each space that a non-space follows.
  await tx.execute(sql`insert into ${profileNameTails} (user_id, tail)
    select distinct ${userId}::uuid, substr(n.name, i + 1)
    from (select lower(${displayName}::text) as name) n, generate_series(1, length(n.name) - 1) i
    where substr(n.name, i, 1) = ' ' and substr(n.name, i + 1, 1) <> ' '`);
}

/** Which of `otherIds` blocked `viewerId`: to the viewer, those users do not exist. */
export async function blockersAmong(db: Queryable, viewerId: string, otherIds: string[]): Promise<Set<string>> {
  if (otherIds.length === 0) return new Set();
  const rows = await db
    .select({ blockerId: blocks.blockerId })
    .from(blocks)
    .where(and(eq(blocks.blockedId, viewerId), inArray(blocks.blockerId, otherIds)));
  return new Set(rows.map((r) => r.blockerId));
}

export interface SearchCursor {
  rank: number;
  id: string;
}

/**
 * Ranked prefix search that PGlite and PostgreSQL both run (no pg_trgm):
 * 0 exact username, 1 username prefix, 2 display-name prefix, 3 prefix of a
 * later word of the display name; ties by user id. Keyset-paged on (rank, id).
 * Users separated from the viewer by a block are left out.
 */
export async function searchProfiles(db: Queryable, viewerId: string, query: string, limit: number, after?: SearchCursor): Promise<Array<ProfileRow & { rank: number }>> {
  const prefix = `${escapeLike(query)}%`;
  // Each way to match is a prefix scan of its own text_pattern_ops index and
  // knows its own rank; a user's rank is the best of the ways it matches. (One
  // OR over the profile columns would read every profile for the word case.)
  const candidates = sql`select ${profiles.userId} as user_id, case when ${profiles.usernameKey} = ${query} then 0 else 1 end as rank from ${profiles} where ${profiles.usernameKey} like ${prefix}
    union all select ${profiles.userId}, 2 from ${profiles} where lower(${profiles.displayName}) like ${prefix}
    union all select ${profileNameTails.userId}, 3 from ${profileNameTails} where ${profileNameTails.tail} like ${prefix}`;
  // The page of (rank, id) first, then the profiles of just those rows (as the follower pages do).
  const page = sql`(select c.user_id, min(c.rank) as rank from (${candidates}) c
    where c.user_id <> all (${blockedEitherWayIds(viewerId)})
    group by c.user_id
    ${after ? sql`having (min(c.rank), c.user_id) > (${after.rank}::int, ${after.id}::uuid)` : sql``}
    order by 2, 1
    limit ${limit}) as page`;
  const rows = await db
    .select({ profile: profiles, rank: sql<number>`page.rank` })
    .from(profiles)
    .innerJoin(page, sql`${profiles.userId} = page.user_id`)
    .orderBy(sql`page.rank`, sql`page.user_id`);
  return rows.map((r) => ({ ...r.profile, rank: Number(r.rank) }));
}
