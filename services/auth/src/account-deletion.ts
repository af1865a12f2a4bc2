// Account deletion: DeleteAccount schedules it (fresh proof, as for
// DisableTwoFactor; every session ends at once), CancelAccountDeletion drops
// it during the grace period, GetAccountDeletion shows it. The purge itself
// is the deletion scheduler's (domain/deletion-scheduler.ts): it removes the
// credentials and announces AccountDeleted, which every other service purges on.
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { AccountDeletionSchema, AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { requirePrincipal } from "@aviary/runtime/context";
import { failedPrecondition, permissionDenied, unauthenticated } from "@aviary/runtime/errors";
import type { Queryable } from "@aviary/runtime/db/database";
import { findUserById } from "./store/accounts.ts";
import { cancelDeletion, findPendingDeletion, insertDeletion, type AccountDeletionRow } from "./store/deletions.ts";
import { revokeUserSessions } from "./store/sessions.ts";
import { accountDeletionCancelled, accountDeletionScheduled, sessionsRevoked } from "./events/publish.ts";
import { createFreshProof, type SessionTools, type TwoFactorDeps } from "./two-factor.ts";
import type { AuthDeps } from "./handlers.ts";

type DeletionMethods = "deleteAccount" | "cancelAccountDeletion" | "getAccountDeletion";

export interface AccountDeletionDeps {
  /** How long a scheduled deletion waits, cancellable, before the purge (AUTH_DELETION_GRACE). */
  graceMs: number;
  /** The deletion clock: schedules and due times (the scheduler reads the same one; tests move it). */
  clock: () => Date;
}

export function deletionMessage(row: AccountDeletionRow): MessageInitShape<typeof AccountDeletionSchema> {
  return { requestedAt: timestampFromDate(row.requestedAt), purgeAt: timestampFromDate(row.purgeAt) };
}

/** The pending deletion for a login's response: the session works, and the owner may cancel. */
export async function pendingDeletionOf(db: Queryable, userId: string): Promise<MessageInitShape<typeof AccountDeletionSchema> | undefined> {
  const row = await findPendingDeletion(db, userId);
  return row === undefined ? undefined : deletionMessage(row);
}

export function createAccountDeletionHandlers(
  deps: AuthDeps & { twoFactor: TwoFactorDeps; deletion: AccountDeletionDeps },
  tools: SessionTools,
): Pick<ServiceImpl<typeof AuthService>, DeletionMethods> {
  const { db } = deps.database;
  const { prove } = createFreshProof(deps, tools);

  /** The caller's own id; a user_id naming someone else is refused (no account can act on another's deletion). */
  function ownAccount(request: { userId: string }, context: HandlerContext): string {
    const principal = requirePrincipal(context);
    if (request.userId !== "" && request.userId !== principal.userId) throw permissionDenied("only the account holder can see or cancel its deletion");
    return principal.userId;
  }

  return {
    async deleteAccount(request, context) {
      const principal = requirePrincipal(context);
      const user = await findUserById(db, principal.userId);
      if (user === undefined) throw unauthenticated("account no longer exists");
      const alreadyScheduled = () => failedPrecondition("this account is already scheduled for deletion; see GetAccountDeletion");
      if ((await findPendingDeletion(db, user.id)) !== undefined) throw alreadyScheduled();
      const { row, revoked } = await prove(user, request.proof, { purpose: "account_deletion", context }, async (tx) => {
        const requestedAt = deps.deletion.clock();
        const inserted = await insertDeletion(tx, { userId: user.id, requestedAt, purgeAt: new Date(requestedAt.getTime() + deps.deletion.graceMs) });
        // A racing second request lost on the primary key; the proof it spent rolls back with it.
        if (inserted === undefined) throw alreadyScheduled();
        await accountDeletionScheduled(tx, user.id, inserted.requestedAt, inserted.purgeAt);
        const at = new Date();
        const ended = await revokeUserSessions(tx, user.id, "account_deletion", at);
        await sessionsRevoked(tx, ended, "account_deletion", at);
        return { row: inserted, revoked: ended };
      });
      // Every session at once, the caller's too: a stolen token cannot cancel.
      await deps.denylist.add(revoked.map((session) => session.id));
      return { deletion: deletionMessage(row) };
    },

    async cancelAccountDeletion(request, context) {
      const userId = ownAccount(request, context);
      const cancelled = await db.transaction(async (tx) => {
        if (!(await cancelDeletion(tx, userId))) return false;
        await accountDeletionCancelled(tx, userId, deps.deletion.clock());
        return true;
      });
      if (!cancelled) throw failedPrecondition("this account is not scheduled for deletion");
      return {};
    },

    async getAccountDeletion(request, context) {
      const userId = ownAccount(request, context);
      const row = await findPendingDeletion(db, userId);
      return row === undefined ? {} : { deletion: deletionMessage(row) };
    },
  };
}
