import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Tx } from "@aviary/runtime/db/database";
import { enqueueEvent } from "@aviary/runtime/outbox/enqueue";
import {
  AccountDeletedSchema,
  AccountDeletionCancelledSchema,
  AccountDeletionScheduledSchema,
  LoginFailedSchema,
  LoginLimit,
  LoginLockedOutSchema,
  PasswordChangedSchema,
  PasswordResetSchema,
  RecoveryCodeUsedSchema,
  SecondFactorFailedSchema,
  SecondFactorFailure,
  SecondFactorMethod,
  SecondFactorPurpose,
  SessionRevokedReason,
  SessionRevokedSchema,
  SigningKeyRotatedSchema,
  TwoFactorDisabledSchema,
  TwoFactorEnabledSchema,
  UserLoggedInSchema,
  UserRegisteredSchema,
} from "@aviary/gen/aviary/events/v1/auth_events_pb";
import { outboxEvents, processedEvents, type sessions } from "../store/schema.ts";
import type { Identity } from "../domain/identity.ts";

/** The topic of every auth event, keyed by user id (per-account ordering). */
export const authEventsTopic = "aviary.auth.events";

const tables = { outboxEvents, processedEvents };

/**
 * Event producers. Each writes to the outbox inside the caller's transaction,
 * so an event exists exactly when the state change it describes committed.
 */
export function userRegistered(tx: Tx, userId: string, identity: Identity, at: Date): Promise<void> {
  return enqueueEvent(tx, tables, {
    topic: authEventsTopic,
    key: userId,
    schema: UserRegisteredSchema,
    message: create(UserRegisteredSchema, {
      userId,
      email: identity.kind === "email" ? identity.value : "",
      phone: identity.kind === "phone" ? identity.value : "",
      registeredAt: timestampFromDate(at),
    }),
  });
}

export function userLoggedIn(tx: Tx, session: { userId: string; id: string; deviceName: string; ipAddress: string }, at: Date): Promise<void> {
  return enqueueEvent(tx, tables, {
    topic: authEventsTopic,
    key: session.userId,
    schema: UserLoggedInSchema,
    message: create(UserLoggedInSchema, {
      userId: session.userId,
      sessionId: session.id,
      deviceName: session.deviceName,
      ipAddress: session.ipAddress,
      loggedInAt: timestampFromDate(at),
    }),
  });
}

// Security events for the audit log (services/audit).

/** A refused sign-in (wrong password or no such account); keyed by the account, or by the address when there is none. */
export function loginFailed(tx: Tx, attempt: { userId: string | undefined; identityKind: Identity["kind"]; ipAddress: string }, at: Date): Promise<void> {
  return enqueueEvent(tx, tables, {
    topic: authEventsTopic,
    key: attempt.userId ?? attempt.ipAddress,
    schema: LoginFailedSchema,
    message: create(LoginFailedSchema, { userId: attempt.userId ?? "", identityKind: attempt.identityKind, ipAddress: attempt.ipAddress, failedAt: timestampFromDate(at) }),
  });
}

/** The attempt limits a lockout can come from (LoginLockedOut.limit). */
export const loginLimits = {
  identity_ip: LoginLimit.IDENTITY_IP,
  identity: LoginLimit.IDENTITY,
  ip: LoginLimit.IP,
  second_factor: LoginLimit.SECOND_FACTOR,
} as const;

export type LoginLimitName = keyof typeof loginLimits;

/**
 * A failure that reached an attempt limit (once per lockout: the caller
 * publishes it for the failure that crossed the limit, never for the refused
 * attempts after it). Keyed like loginFailed.
 */
export function loginLockedOut(
  tx: Tx,
  lockout: { userId: string | undefined; identityKind: Identity["kind"] | undefined; ipAddress: string; limit: LoginLimitName; retryAfterSeconds: number },
  at: Date,
): Promise<void> {
  return enqueueEvent(tx, tables, {
    topic: authEventsTopic,
    key: lockout.userId ?? lockout.ipAddress,
    schema: LoginLockedOutSchema,
    message: create(LoginLockedOutSchema, {
      userId: lockout.userId ?? "",
      identityKind: lockout.identityKind ?? "",
      ipAddress: lockout.ipAddress,
      limit: loginLimits[lockout.limit],
      lockedAt: timestampFromDate(at),
      lockedUntil: timestampFromDate(new Date(at.getTime() + lockout.retryAfterSeconds * 1000)),
    }),
  });
}

export function passwordChanged(tx: Tx, userId: string, reset: boolean, at: Date): Promise<void> {
  return reset
    ? enqueueEvent(tx, tables, { topic: authEventsTopic, key: userId, schema: PasswordResetSchema, message: create(PasswordResetSchema, { userId, resetAt: timestampFromDate(at) }) })
    : enqueueEvent(tx, tables, { topic: authEventsTopic, key: userId, schema: PasswordChangedSchema, message: create(PasswordChangedSchema, { userId, changedAt: timestampFromDate(at) }) });
}

/** A signing key was added; keyed by its kid. */
export function signingKeyRotated(tx: Tx, kid: string, activatesAt: Date, at: Date): Promise<void> {
  return enqueueEvent(tx, tables, {
    topic: authEventsTopic,
    key: kid,
    schema: SigningKeyRotatedSchema,
    message: create(SigningKeyRotatedSchema, { kid, activatesAt: timestampFromDate(activatesAt), rotatedAt: timestampFromDate(at) }),
  });
}

/** The stored reason names, mapped to the event's enum. */
export const revocationReasons = {
  logout: SessionRevokedReason.LOGOUT,
  revoked_by_user: SessionRevokedReason.REVOKED_BY_USER,
  refresh_token_reuse: SessionRevokedReason.REFRESH_TOKEN_REUSE,
  password_changed: SessionRevokedReason.PASSWORD_CHANGED,
  password_reset: SessionRevokedReason.PASSWORD_RESET,
  account_deletion: SessionRevokedReason.ACCOUNT_DELETION,
  role_revoked: SessionRevokedReason.ROLE_REVOKED,
  account_suspended: SessionRevokedReason.ACCOUNT_SUSPENDED,
} as const;

export type RevocationReason = keyof typeof revocationReasons;

export async function sessionsRevoked(tx: Tx, revoked: Array<typeof sessions.$inferSelect>, reason: RevocationReason, at: Date): Promise<void> {
  for (const session of revoked) {
    await enqueueEvent(tx, tables, {
      topic: authEventsTopic,
      key: session.userId,
      schema: SessionRevokedSchema,
      message: create(SessionRevokedSchema, {
        userId: session.userId,
        sessionId: session.id,
        reason: revocationReasons[reason],
        revokedAt: timestampFromDate(at),
      }),
    });
  }
}

// Two-factor changes, for the audit log.

export function twoFactorEnabled(tx: Tx, userId: string, recoveryCodes: number, at: Date): Promise<void> {
  return enqueueEvent(tx, tables, {
    topic: authEventsTopic,
    key: userId,
    schema: TwoFactorEnabledSchema,
    message: create(TwoFactorEnabledSchema, { userId, method: SecondFactorMethod.TOTP, recoveryCodes, enabledAt: timestampFromDate(at) }),
  });
}

/** What the holder proved to turn two-factor off. */
export type SecondFactorProof = "password" | "totp" | "recovery_code";

const proofs = { password: SecondFactorMethod.PASSWORD, totp: SecondFactorMethod.TOTP, recovery_code: SecondFactorMethod.RECOVERY_CODE } as const;

export function twoFactorDisabled(tx: Tx, userId: string, proof: SecondFactorProof, at: Date): Promise<void> {
  return enqueueEvent(tx, tables, {
    topic: authEventsTopic,
    key: userId,
    schema: TwoFactorDisabledSchema,
    message: create(TwoFactorDisabledSchema, { userId, method: SecondFactorMethod.TOTP, proof: proofs[proof], disabledAt: timestampFromDate(at) }),
  });
}

/** What a second-factor code was for (SecondFactorFailed.purpose). */
export const secondFactorPurposes = {
  sign_in: SecondFactorPurpose.SIGN_IN,
  enrollment: SecondFactorPurpose.ENROLLMENT,
  disable: SecondFactorPurpose.DISABLE,
  account_deletion: SecondFactorPurpose.ACCOUNT_DELETION,
} as const;

export type SecondFactorPurposeName = keyof typeof secondFactorPurposes;

/** Why a code was refused, and what kind of code it was. */
const secondFactorFailures = {
  wrong_code: { failure: SecondFactorFailure.WRONG_CODE, method: SecondFactorMethod.TOTP },
  replayed_code: { failure: SecondFactorFailure.REPLAYED_CODE, method: SecondFactorMethod.TOTP },
  unknown_recovery_code: { failure: SecondFactorFailure.UNKNOWN_RECOVERY_CODE, method: SecondFactorMethod.RECOVERY_CODE },
} as const;

export type SecondFactorFailureName = keyof typeof secondFactorFailures;

export function secondFactorFailed(
  tx: Tx,
  attempt: { userId: string; purpose: SecondFactorPurposeName; failure: SecondFactorFailureName; ipAddress: string },
  at: Date,
): Promise<void> {
  return enqueueEvent(tx, tables, {
    topic: authEventsTopic,
    key: attempt.userId,
    schema: SecondFactorFailedSchema,
    message: create(SecondFactorFailedSchema, {
      userId: attempt.userId,
      ...secondFactorFailures[attempt.failure],
      purpose: secondFactorPurposes[attempt.purpose],
      ipAddress: attempt.ipAddress,
      failedAt: timestampFromDate(at),
    }),
  });
}

export function recoveryCodeUsed(tx: Tx, userId: string, sessionId: string, remaining: number, at: Date): Promise<void> {
  return enqueueEvent(tx, tables, {
    topic: authEventsTopic,
    key: userId,
    schema: RecoveryCodeUsedSchema,
    message: create(RecoveryCodeUsedSchema, { userId, sessionId, remaining, usedAt: timestampFromDate(at) }),
  });
}

// Account deletion (see account-deletion.ts): scheduled, cancelled, and the
// final AccountDeleted every service that holds user data purges on.

export function accountDeletionScheduled(tx: Tx, userId: string, requestedAt: Date, purgeAt: Date): Promise<void> {
  return enqueueEvent(tx, tables, {
    topic: authEventsTopic,
    key: userId,
    schema: AccountDeletionScheduledSchema,
    message: create(AccountDeletionScheduledSchema, { userId, requestedAt: timestampFromDate(requestedAt), purgeAt: timestampFromDate(purgeAt) }),
  });
}

export function accountDeletionCancelled(tx: Tx, userId: string, at: Date): Promise<void> {
  return enqueueEvent(tx, tables, {
    topic: authEventsTopic,
    key: userId,
    schema: AccountDeletionCancelledSchema,
    message: create(AccountDeletionCancelledSchema, { userId, cancelledAt: timestampFromDate(at) }),
  });
}

export function accountDeleted(tx: Tx, userId: string, requestedAt: Date, at: Date): Promise<void> {
  return enqueueEvent(tx, tables, {
    topic: authEventsTopic,
    key: userId,
    schema: AccountDeletedSchema,
    message: create(AccountDeletedSchema, { userId, requestedAt: timestampFromDate(requestedAt), deletedAt: timestampFromDate(at) }),
  });
}
