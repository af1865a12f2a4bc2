import { and, count, eq, isNotNull, isNull, lt, or } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import { recoveryCodes, totpFactors } from "./schema.ts";

export type TotpFactorRow = typeof totpFactors.$inferSelect;

export async function findTotpFactor(db: Queryable, userId: string): Promise<TotpFactorRow | undefined> {
  const rows = await db.select().from(totpFactors).where(eq(totpFactors.userId, userId)).limit(1);
  return rows[0];
}

/** Whether sign-in needs a second factor. */
export async function hasConfirmedTotp(db: Queryable, userId: string): Promise<boolean> {
  const rows = await db
    .select({ userId: totpFactors.userId })
    .from(totpFactors)
    .where(and(eq(totpFactors.userId, userId), isNotNull(totpFactors.confirmedAt)))
    .limit(1);
  return rows.length > 0;
}

/** Starts (or restarts) an enrolment; a confirmed factor is never replaced (the caller checks first, this makes it race-safe). */
export async function putPendingTotp(db: Queryable, userId: string, secretSealed: Uint8Array): Promise<boolean> {
  const rows = await db
    .insert(totpFactors)
    .values({ userId, secretSealed })
    .onConflictDoUpdate({ target: totpFactors.userId, set: { secretSealed, createdAt: new Date(), lastUsedStep: null }, where: isNull(totpFactors.confirmedAt) })
    .returning({ userId: totpFactors.userId });
  return rows.length > 0;
}

/**
 * Records `step` as used, only when it is later than the last one: two
 * requests with the same code serialise on the row and only the first wins.
 * With `confirm`, also confirms a pending enrolment.
 */
export async function claimTotpStep(db: Queryable, userId: string, step: number, options: { confirm?: Date } = {}): Promise<boolean> {
  const rows = await db
    .update(totpFactors)
    .set({ lastUsedStep: step, ...(options.confirm ? { confirmedAt: options.confirm } : {}) })
    .where(
      and(
        eq(totpFactors.userId, userId),
        options.confirm ? isNull(totpFactors.confirmedAt) : isNotNull(totpFactors.confirmedAt),
        or(isNull(totpFactors.lastUsedStep), lt(totpFactors.lastUsedStep, step)),
      ),
    )
    .returning({ userId: totpFactors.userId });
  return rows.length > 0;
}

/** Replaces the account's recovery codes. */
export async function replaceRecoveryCodes(db: Queryable, userId: string, hashes: readonly string[]): Promise<void> {
  await db.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId));
  await db.insert(recoveryCodes).values(hashes.map((codeHash) => ({ id: crypto.randomUUID(), userId, codeHash })));
}

/** Spends a recovery code; false when it is not one of the account's unused codes. */
export async function spendRecoveryCode(db: Queryable, userId: string, codeHash: string, at: Date): Promise<boolean> {
  const rows = await db
    .update(recoveryCodes)
    .set({ usedAt: at })
    .where(and(eq(recoveryCodes.userId, userId), eq(recoveryCodes.codeHash, codeHash), isNull(recoveryCodes.usedAt)))
    .returning({ id: recoveryCodes.id });
  return rows.length > 0;
}

export async function unusedRecoveryCodes(db: Queryable, userId: string): Promise<number> {
  const rows = await db
    .select({ n: count() })
    .from(recoveryCodes)
    .where(and(eq(recoveryCodes.userId, userId), isNull(recoveryCodes.usedAt)));
  return rows[0]?.n ?? 0;
}

/** Removes the factor and its recovery codes; true when a confirmed factor was removed. */
export async function removeSecondFactor(db: Queryable, userId: string): Promise<boolean> {
  const removed = await db.delete(totpFactors).where(and(eq(totpFactors.userId, userId), isNotNull(totpFactors.confirmedAt))).returning({ userId: totpFactors.userId });
  await db.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId));
  return removed.length > 0;
}
