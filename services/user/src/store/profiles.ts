import { and, asc, eq, inArray, or, sql, type SQL } from "drizzle-orm";
import type { Queryable, Tx } from "@aviary/runtime/db/database";
import { blocks, profiles } from "./schema.ts";
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

export function findProfiles(db: Queryable, userIds: string[]): Promise<ProfileRow[]> {
  if (userIds.length === 0) return Promise.resolve([]);
  return db.select().from(profiles).where(inArray(profiles.userId, userIds));
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

/** SQL: a block exists between `viewer` and the profile's user, in either direction. */
export function blockedEitherWay(viewerId: string, userIdColumn: SQL | typeof profiles.userId = profiles.userId): SQL {
  return sql`exists (select 1 from ${blocks} where (${blocks.blockerId} = ${viewerId} and ${blocks.blockedId} = ${userIdColumn}) or (${blocks.blockerId} = ${userIdColumn} and ${blocks.blockedId} = ${viewerId}))`;
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
  const wordPrefix = `% ${escapeLike(query)}%`;
  const rank = sql<number>`(case
    when ${profiles.usernameKey} = ${query} then 0
    when ${profiles.usernameKey} like ${prefix} then 1
    when lower(${profiles.displayName}) like ${prefix} then 2
    else 3 end)`;
  const matches = or(
    sql`${profiles.usernameKey} like ${prefix}`,
    sql`lower(${profiles.displayName}) like ${prefix}`,
    sql`lower(${profiles.displayName}) like ${wordPrefix}`,
  );
  const rows = await db
    .select({ profile: profiles, rank: sql<number>`${rank}::int` })
    .from(profiles)
    .where(and(matches, sql`not ${blockedEitherWay(viewerId)}`, after ? sql`(${rank}, ${profiles.userId}) > (${after.rank}, ${after.id}::uuid)` : undefined))
    .orderBy(rank, asc(profiles.userId))
    .limit(limit);
  return rows.map((r) => ({ ...r.profile, rank: Number(r.rank) }));
}
