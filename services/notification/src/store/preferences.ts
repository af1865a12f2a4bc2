import { eq, sql } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import { resolvePreferences, type Channels, type Preferences } from "../domain/preferences.ts";
import type { KindName } from "../domain/kinds.ts";
import { preferences } from "./schema.ts";

export async function loadPreferences(db: Queryable, userId: string): Promise<Preferences> {
  const [row] = await db.select().from(preferences).where(eq(preferences.userId, userId));
  return resolvePreferences(row);
}

/** Applies a partial change in one statement (concurrent updates of different kinds both stick). */
export async function updatePreferences(
  db: Queryable,
  userId: string,
  change: { channels: Partial<Record<KindName, Channels>>; onlyFromFollowing: boolean | undefined },
  at: Date,
): Promise<Preferences> {
  const [row] = await db
    .insert(preferences)
    .values({ userId, channels: change.channels, onlyFromFollowing: change.onlyFromFollowing ?? false, updatedAt: at })
    .onConflictDoUpdate({
      target: preferences.userId,
      set: {
        channels: sqlMerge(change.channels),
        ...(change.onlyFromFollowing === undefined ? {} : { onlyFromFollowing: change.onlyFromFollowing }),
        updatedAt: at,
      },
    })
    .returning();
  return resolvePreferences(row);
}

/** The stored changes with these on top (jsonb ||: later keys win). */
function sqlMerge(channels: Partial<Record<KindName, Channels>>) {
  return sql`${preferences.channels} || ${JSON.stringify(channels)}::jsonb`;
}
