import { and, eq, isNull } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import type { Identity } from "../domain/identity.ts";
import { users } from "./schema.ts";

export type UserRow = typeof users.$inferSelect;

function identityColumn(identity: Identity) {
  return identity.kind === "email" ? users.email : users.phone;
}

export async function findUserByIdentity(db: Queryable, identity: Identity): Promise<UserRow | undefined> {
  const rows = await db.select().from(users).where(eq(identityColumn(identity), identity.value)).limit(1);
  return rows[0];
}

export async function findUserById(db: Queryable, id: string): Promise<UserRow | undefined> {
  const rows = await db.select().from(users).where(eq(users.id, id)).limit(1);
  return rows[0];
}

/**
 * Inserts an account; returns undefined when the identity is taken. The unique
 * index decides, not a prior SELECT, so two racing registrations cannot both win.
 */
export async function insertUser(db: Queryable, identity: Identity, passwordHash: string): Promise<UserRow | undefined> {
  const rows = await db
    .insert(users)
    .values({
      id: crypto.randomUUID(),
      email: identity.kind === "email" ? identity.value : null,
      phone: identity.kind === "phone" ? identity.value : null,
      passwordHash,
    })
    .onConflictDoNothing()
    .returning();
  return rows[0];
}

/** Marks the identity verified; true when this call verified it. */
export async function markIdentityVerified(db: Queryable, userId: string, identity: Identity, at: Date): Promise<boolean> {
  const rows =
    identity.kind === "email"
      ? await db.update(users).set({ emailVerifiedAt: at }).where(and(eq(users.id, userId), isNull(users.emailVerifiedAt))).returning({ id: users.id })
      : await db.update(users).set({ phoneVerifiedAt: at }).where(and(eq(users.id, userId), isNull(users.phoneVerifiedAt))).returning({ id: users.id });
  return rows.length > 0;
}

export async function setPasswordHash(db: Queryable, userId: string, passwordHash: string, at: Date): Promise<void> {
  await db.update(users).set({ passwordHash, passwordChangedAt: at }).where(eq(users.id, userId));
}
