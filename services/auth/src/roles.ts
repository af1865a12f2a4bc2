// Roles (RoleService) and what they and suspensions change in the auth
// service: the `roles` claim of access tokens, the first admins from
// configuration, and sign-in refused to suspended accounts. Kept apart from
// handlers.ts, which calls `accessRoles` and `refuseIfSuspended` when it
// opens or refreshes a session.
import type { ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { RoleService, type RoleGrant, RoleGrantSchema } from "@aviary/gen/aviary/auth/v1/roles_pb";
import { ErrorInfoSchema } from "@aviary/gen/google/rpc/error_details_pb";
import type { Database, Queryable, Tx } from "@aviary/runtime/db/database";
import { requirePrincipal } from "@aviary/runtime/context";
import { failedPrecondition, notFound } from "@aviary/runtime/errors";
import { Role, roleClaimOf, roleFromClaim } from "@aviary/runtime/auth/roles";
import type { Logger } from "@aviary/runtime/log";
import type { SessionDenylist } from "./domain/denylist.ts";
import { findUserById } from "./store/accounts.ts";
import { deleteRole, findRole, findSuspension, insertRole, lockAccount, rolesOf, userIdsByEmail, type RoleGrantRow } from "./store/roles.ts";
import { revokeUserSessions } from "./store/sessions.ts";
import { sessionsRevoked } from "./events/publish.ts";
import { roleGranted, roleRevoked } from "./events/roles.ts";

/** The `roles` claim for a user's next access token. */
export async function accessRoles(db: Queryable, userId: string): Promise<string[]> {
  return (await rolesOf(db, userId)).map((row) => row.role);
}

/** Why sign-in is refused to a suspended account (ErrorInfo.reason). */
export const accountSuspendedReason = "ACCOUNT_SUSPENDED";

/**
 * Refuses to open a session for a suspended account: FAILED_PRECONDITION
 * with ErrorInfo reason ACCOUNT_SUSPENDED and the moderator's reason, so the
 * app can say why. Takes the account row's share lock, which the
 * suspension's consumer takes exclusively (store/roles.ts lockAccount).
 */
export async function refuseIfSuspended(tx: Tx, userId: string): Promise<void> {
  await lockAccount(tx, userId, "share");
  const suspension = await findSuspension(tx, userId);
  if (suspension?.suspended !== true) return;
  throw new ConnectError(`this account is suspended: ${suspension.reason}`, Code.FailedPrecondition, undefined, [
    {
      desc: ErrorInfoSchema,
      value: { reason: accountSuspendedReason, domain: "aviary.auth", metadata: { reason: suspension.reason, since: suspension.changedAt.toISOString() } },
    },
  ]);
}

function grantMessage(row: RoleGrantRow): RoleGrant {
  return create(RoleGrantSchema, {
    userId: row.userId,
    role: roleFromClaim(row.role) ?? Role.UNSPECIFIED,
    grantedBy: row.grantedBy ?? "",
    grantedAt: timestampFromDate(row.grantedAt),
  });
}

export interface RoleDeps {
  database: Database;
  denylist: SessionDenylist;
  now?: () => Date;
}

/**
 * RoleService. Who may call it is declared on the RPCs (required_role =
 * ROLE_ADMIN) and enforced by the runtime's auth interceptor before these run.
 */
export function createRoleHandlers(deps: RoleDeps): ServiceImpl<typeof RoleService> {
  const db = deps.database.db;
  const now = deps.now ?? (() => new Date());

  async function existingUser(userId: string): Promise<void> {
    if ((await findUserById(db, userId)) === undefined) throw notFound("no such user", { type: "aviary.auth.v1.User", name: userId });
  }

  return {
    async grantRole(request, context) {
      const actor = requirePrincipal(context);
      await existingUser(request.userId);
      const role = roleClaimOf(request.role)!;
      const row = await db.transaction(async (tx) => {
        const at = now();
        const inserted = await insertRole(tx, { userId: request.userId, role, grantedBy: actor.userId, grantedAt: at });
        if (inserted === undefined) return (await findRole(tx, request.userId, role))!;
        await roleGranted(tx, { userId: request.userId, role: request.role, actorId: actor.userId, at });
        return inserted;
      });
      return { grant: grantMessage(row) };
    },

    async revokeRole(request, context) {
      const actor = requirePrincipal(context);
      const role = roleClaimOf(request.role)!;
      if (actor.userId === request.userId && request.role === Role.ADMIN) {
        throw failedPrecondition("an admin cannot revoke their own admin role", [
          { type: "SELF_REVOCATION", subject: `users/${request.userId}/roles/admin`, description: "another admin must do it" },
        ]);
      }
      const revoked = await db.transaction(async (tx) => {
        const at = now();
        if (!(await deleteRole(tx, request.userId, role))) return undefined;
        // Tokens carry roles until they expire: ending the sessions is what makes a revocation immediate.
        const sessions = await revokeUserSessions(tx, request.userId, "role_revoked", at);
        await sessionsRevoked(tx, sessions, "role_revoked", at);
        await roleRevoked(tx, { userId: request.userId, role: request.role, actorId: actor.userId, at });
        return sessions;
      });
      if (revoked === undefined) throw notFound("the user does not hold this role", { type: "aviary.auth.v1.RoleGrant", name: `${request.userId}/${role}` });
      await deps.denylist.add(revoked.map((session) => session.id));
      return {};
    },

    async listUserRoles(request) {
      await existingUser(request.userId);
      return { grants: (await rolesOf(db, request.userId)).map(grantMessage) };
    },
  };
}

/**
 * Makes the accounts with these emails admins (AUTH_BOOTSTRAP_ADMINS), at
 * startup: idempotent (a held role is kept as it is, and announced once).
 * An email without an account yet is skipped; it is made admin at the next
 * start after it registers. Resolves to the ids made admin now.
 */
export async function applyBootstrapAdmins(database: Database, emails: readonly string[], logger: Logger, now: () => Date = () => new Date()): Promise<string[]> {
  const wanted = [...new Set(emails.map((email) => email.trim().toLowerCase()).filter((email) => email !== ""))];
  if (wanted.length === 0) return [];
  const ids = await userIdsByEmail(database.db, wanted);
  const granted: string[] = [];
  for (const userId of ids) {
    await database.db.transaction(async (tx) => {
      const at = now();
      const inserted = await insertRole(tx, { userId, role: roleClaimOf(Role.ADMIN)!, grantedBy: null, grantedAt: at });
      if (inserted === undefined) return;
      await roleGranted(tx, { userId, role: Role.ADMIN, actorId: "", at });
      granted.push(userId);
    });
  }
  if (ids.length < wanted.length) logger.warn({ missing: wanted.length - ids.length }, "AUTH_BOOTSTRAP_ADMINS names emails without an account yet: they become admins at the next start after registering");
  if (granted.length > 0) logger.info({ userIds: granted }, "bootstrap admins granted");
  return granted;
}
