// Erasing a deleted account from the log: every entry naming it keeps its
// place, kind, time, digests and hash, and loses the cleartext and salts of
// the fields that were the account's (domain/erasure.ts). The trigger lets
// exactly this kind of UPDATE through, and only when the transaction says it
// is an erasure (migration 0002). Erasing again finds nothing left to erase.
import { eq, or, sql } from "drizzle-orm";
import type { Database } from "@aviary/runtime/db/database";
import { erasureOf } from "../domain/erasure.ts";
import { chainedOf, lockChain } from "./entries.ts";
import { entries } from "./schema.ts";

/** Erases `userId` from every entry naming it; resolves to how many entries changed. */
export async function eraseAccount(database: Database, userId: string, at: Date): Promise<number> {
  const id = userId.toLowerCase();
  return database.db.transaction(async (tx) => {
    // Serialised with appends, so an entry appended in the same instant is either erased here or appended after.
    await lockChain(tx);
    await tx.execute(sql`select set_config('audit.erasure', 'on', true)`);
    // The id as a value (actor, subject) or inside one (a detail naming it, a subject like "user:<id>").
    const rows = await tx
      .select()
      .from(entries)
      .where(or(eq(entries.actorId, id), sql`lower(${entries.subject}) like ${`%${id}%`}`, sql`lower(${entries.details}::text) like ${`%${id}%`}`));
    let erased = 0;
    for (const row of rows) {
      const fields = erasureOf(chainedOf(row), id);
      if (fields === undefined) continue;
      await tx
        .update(entries)
        .set({
          actorId: fields.actorId ?? null,
          actorSalt: fields.actorSalt ?? null,
          subject: fields.subject ?? null,
          subjectSalt: fields.subjectSalt ?? null,
          details: fields.details,
          detailsSalts: fields.detailsSalts ?? null,
          erasedAt: row.erasedAt ?? at,
        })
        .where(eq(entries.seq, row.seq));
      erased += 1;
    }
    return erased;
  });
}
