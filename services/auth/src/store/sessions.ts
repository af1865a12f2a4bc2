import { and, eq, gt, isNull, lt, ne, or } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import { refreshTokens, sessions } from "./schema.ts";
import { newestFirst } from "@aviary/runtime/db/order";

export type SessionRow = typeof sessions.$inferSelect;
export type RefreshTokenRow = typeof refreshTokens.$inferSelect;

export async function insertSession(
  db: Queryable,
  session: { id: string; userId: string; deviceName: string; ipAddress: string; userAgent: string; createdAt: Date; expiresAt: Date },
): Promise<void> {
  // createdAt comes from the caller in millisecond precision, so page cursors
  // (which carry it as a JS Date) compare exactly with the stored value.
  await db.insert(sessions).values({ ...session, lastUsedAt: session.createdAt });
}

export async function findSession(db: Queryable, id: string): Promise<SessionRow | undefined> {
  const rows = await db.select().from(sessions).where(eq(sessions.id, id)).limit(1);
  return rows[0];
}

export async function insertRefreshToken(db: Queryable, token: { sessionId: string; hash: string; expiresAt: Date }): Promise<void> {
  await db.insert(refreshTokens).values({ id: crypto.randomUUID(), sessionId: token.sessionId, tokenHash: token.hash, expiresAt: token.expiresAt });
}

/** Finds a refresh token by hash and locks its row, so two refreshes with one token serialise. */
export async function lockRefreshToken(db: Queryable, hash: string): Promise<RefreshTokenRow | undefined> {
  const rows = await db.select().from(refreshTokens).where(eq(refreshTokens.tokenHash, hash)).limit(1).for("update");
  return rows[0];
}

/** Marks a token spent, remembering its successor (sealed) for the reuse window. */
export async function spendRefreshToken(db: Queryable, id: string, at: Date, successorSealed: Uint8Array): Promise<void> {
  await db.update(refreshTokens).set({ spentAt: at, successorSealed }).where(eq(refreshTokens.id, id));
}

export async function touchSession(db: Queryable, id: string, at: Date): Promise<void> {
  await db.update(sessions).set({ lastUsedAt: at }).where(eq(sessions.id, id));
}

/**
 * Revokes open sessions matching `where` and returns them (so the caller can
 * denylist them and emit one event each). Already revoked sessions are left as
 * they were, which makes every revocation idempotent.
 */
async function revokeWhere(db: Queryable, where: ReturnType<typeof and>, reason: string, at: Date): Promise<SessionRow[]> {
  return db
    .update(sessions)
    .set({ revokedAt: at, revokedReason: reason })
    .where(and(isNull(sessions.revokedAt), where))
    .returning();
}

export function revokeSession(db: Queryable, userId: string, sessionId: string, reason: string, at: Date): Promise<SessionRow[]> {
  return revokeWhere(db, and(eq(sessions.userId, userId), eq(sessions.id, sessionId)), reason, at);
}

/** Revokes every session of a user except `keep` (when given). */
export function revokeUserSessions(db: Queryable, userId: string, reason: string, at: Date, keep?: string): Promise<SessionRow[]> {
  return revokeWhere(db, keep === undefined ? eq(sessions.userId, userId) : and(eq(sessions.userId, userId), ne(sessions.id, keep)), reason, at);
}

/** Where a page of sessions starts: after this (createdAt, id), newest first. */
export interface SessionCursor {
  createdAt: string;
  id: string;
}

/** One page of a user's open sessions, newest first, keyset-paginated. */
export async function listOpenSessions(db: Queryable, userId: string, now: Date, limit: number, after?: SessionCursor): Promise<SessionRow[]> {
  const open = and(eq(sessions.userId, userId), isNull(sessions.revokedAt), gt(sessions.expiresAt, now));
  const afterCursor =
    after === undefined
      ? undefined
      : or(
          lt(sessions.createdAt, new Date(after.createdAt)),
          and(eq(sessions.createdAt, new Date(after.createdAt)), lt(sessions.id, after.id)),
        );
  return db
    .select()
    .from(sessions)
    .where(afterCursor === undefined ? open : and(open, afterCursor))
    .orderBy(newestFirst(sessions.createdAt), newestFirst(sessions.id))
    .limit(limit);
}

/** Ids of sessions revoked since `since`: the ones whose access tokens may still be in date. */
export async function recentlyRevokedSessionIds(db: Queryable, since: Date): Promise<string[]> {
  const rows = await db.select({ id: sessions.id }).from(sessions).where(gt(sessions.revokedAt, since));
  return rows.map((row) => row.id);
}

/** Whether a session is over (revoked, or unknown); the authority behind the cache denylist. */
export async function isSessionOver(db: Queryable, id: string): Promise<boolean> {
  const rows = await db.select({ revokedAt: sessions.revokedAt }).from(sessions).where(eq(sessions.id, id)).limit(1);
  const row = rows[0];
  return row === undefined || row.revokedAt !== null;
}
