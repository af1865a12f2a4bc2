// A deleted account in moderation (AccountDeleted). What it filed is its own
// data and goes. What others filed about it, and what moderators decided,
// is the moderators' history and stays, without naming it: reports about the
// account are closed and point at the deleted-account marker; a suspension
// of it goes with the account (auth has purged the account it applied to);
// what it did as a moderator keeps a pseudonym, one per purge, so its
// actions still read as one person's.
import { and, eq } from "drizzle-orm";
import { DELETED_ACCOUNT_ID } from "@aviary/runtime/bus/account-deletions";
import type { Tx } from "@aviary/runtime/db/database";
import { ResolutionAction } from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import { removals, reports, suspensions } from "../store/schema.ts";

/** The resolution note of a report closed because the account it was about is gone. */
export const ACCOUNT_DELETED_NOTE = "account deleted";

/**
 * Purges the account, in one transaction. Each step looks for rows still
 * naming it, so applying it again finds none and changes nothing (and
 * mints no pseudonym that is used). No events: the audit log erases the
 * account itself on the same AccountDeleted, and a ReportResolved naming no
 * moderator is not an event anyone should act on.
 */
export async function purgeUserModeration(tx: Tx, userId: string, at: Date): Promise<void> {
  const id = userId.toLowerCase();
  await tx.delete(reports).where(eq(reports.reporterId, id));
  // Open reports about the account first (the one-open-report index is on the target), then every report about it loses the id.
  await tx
    .update(reports)
    .set({ status: "dismissed", resolution: ResolutionAction.DISMISS, resolvedBy: null, resolutionNote: ACCOUNT_DELETED_NOTE, resolvedAt: at })
    .where(and(eq(reports.targetKind, "user"), eq(reports.targetId, id), eq(reports.status, "open")));
  await tx
    .update(reports)
    .set({ targetId: DELETED_ACCOUNT_ID })
    .where(and(eq(reports.targetKind, "user"), eq(reports.targetId, id)));
  await tx.delete(suspensions).where(eq(suspensions.userId, id));

  const pseudonym = crypto.randomUUID();
  await tx.update(reports).set({ resolvedBy: pseudonym }).where(eq(reports.resolvedBy, id));
  await tx.update(suspensions).set({ moderatorId: pseudonym }).where(eq(suspensions.moderatorId, id));
  await tx.update(removals).set({ moderatorId: pseudonym }).where(eq(removals.moderatorId, id));
}
