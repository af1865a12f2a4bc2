// The two-factor RPCs: enrolling an authenticator app (start → confirm with a
// first code → ten recovery codes), finishing a login that asked for a second
// factor, and turning it off again with fresh proof. Codes are limited per
// challenge (LoginChallenges) and per account (AUTH_2FA_FAILURES_PER_ACCOUNT);
// a TOTP step is accepted once (claimTotpStep), so a code seen over a
// shoulder or replayed from a log is refused.
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { AuthService, DisableTwoFactorRequest, TokenPairSchema } from "@aviary/gen/aviary/auth/v1/auth_pb";
import type { Tx } from "@aviary/runtime/db/database";
import { getPeer, requirePrincipal } from "@aviary/runtime/context";
import { failedPrecondition, invalidArgument, resourceExhausted, unauthenticated } from "@aviary/runtime/errors";
import type { AttemptLimiter } from "./domain/attempt-limits.ts";
import type { LoginChallenges } from "./domain/challenges.ts";
import type { Sealer } from "./domain/sealing.ts";
import { hashRecoveryCode, newRecoveryCode, RECOVERY_CODE_COUNT } from "./domain/recovery-codes.ts";
import { base32Encode, matchTotp, newTotpSecret, otpauthUri, TOTP_DIGITS, TOTP_PERIOD_SECONDS } from "./domain/totp.ts";
import { findUserById, type UserRow } from "./store/accounts.ts";
import {
  claimTotpStep,
  findTotpFactor,
  putPendingTotp,
  removeSecondFactor,
  replaceRecoveryCodes,
  spendRecoveryCode,
  unusedRecoveryCodes,
  type TotpFactorRow,
} from "./store/second-factors.ts";
import {
  loginLockedOut,
  recoveryCodeUsed,
  secondFactorFailed,
  twoFactorDisabled,
  twoFactorEnabled,
  type SecondFactorFailureName,
  type SecondFactorProof,
  type SecondFactorPurposeName,
} from "./events/publish.ts";
import type { AuthDeps } from "./handlers.ts";
import { pendingDeletionOf } from "./account-deletion.ts";

type TwoFactorMethods = "startTotpEnrollment" | "confirmTotpEnrollment" | "disableTwoFactor" | "verifySecondFactor";

/** What the main handlers share with these: opening a session and minting its tokens, and checks. */
export interface SessionTools {
  openSession(tx: Tx, userId: string, deviceName: string, context: HandlerContext): Promise<{ session: { id: string }; refreshToken: string }>;
  tokenPair(userId: string, sessionId: string, refreshToken: string): Promise<MessageInitShape<typeof TokenPairSchema>>;
  enforce(limiter: AttemptLimiter, subject: string, message: string): Promise<void>;
  /** The account's current password, limited like ChangePassword; throws a field violation on `field` when wrong. */
  checkPassword(user: UserRow, password: string, field: string): Promise<void>;
}

export interface TwoFactorDeps {
  sealer: Sealer;
  challenges: LoginChallenges;
  /** Wrong second-factor codes per account. */
  failures: AttemptLimiter;
  /** Milliseconds since the epoch for TOTP steps (tests move it; everything else uses the real clock). */
  totpClock: () => number;
  /** The issuer shown in authenticator apps (AUTH_TOTP_ISSUER). */
  issuer: string;
}

/** A proof that did not hold: the field it was given in and why (for the audit log), counted against the account. */
class WrongProof extends Error {
  readonly field: string;
  readonly failure: SecondFactorFailureName;
  constructor(field: string, failure: SecondFactorFailureName, description: string) {
    super(description);
    this.field = field;
    this.failure = failure;
  }
}

/** Who gave a code, for what, from where: what a refused code is recorded with. */
export interface ProofAttempt {
  userId: string;
  purpose: SecondFactorPurposeName;
  context: HandlerContext;
}

/** The proof oneof of DisableTwoFactor and DeleteAccount (the same three choices). */
export type FreshProofOneof = DisableTwoFactorRequest["proof"];

/**
 * Checking fresh proof that the account holder asks: the password (limited
 * like ChangePassword's), a current TOTP code (claimed once) or a recovery
 * code (spent). Shared by DisableTwoFactor and DeleteAccount.
 */
export function createFreshProof(deps: AuthDeps & { twoFactor: TwoFactorDeps }, tools: SessionTools) {
  const { db } = deps.database;
  const tf = deps.twoFactor;
  const now = deps.now ?? (() => new Date());
  const failureSubject = (userId: string) => `user:${userId}`;

  const secretOf = (factor: TotpFactorRow) => tf.sealer.open("totp-secret", factor.secretSealed);

  /** The step of a right code, or a WrongProof. */
  function totpStep(factor: TotpFactorRow, code: string, field = "code"): number {
    const step = matchTotp(secretOf(factor), code, tf.totpClock());
    if (step === undefined) throw new WrongProof(field, "wrong_code", "code is incorrect");
    return step;
  }

  /** Claims the step in `tx`; a step already used is a replay. */
  async function claimStep(tx: Tx, userId: string, step: number, options: { confirm?: Date } = {}): Promise<void> {
    if (!(await claimTotpStep(tx, userId, step, options))) throw new WrongProof("code", "replayed_code", "code was already used; wait for the next one");
  }

  async function spendRecovery(tx: Tx, userId: string, code: string): Promise<void> {
    if (!(await spendRecoveryCode(tx, userId, hashRecoveryCode(code), now()))) throw new WrongProof("recovery_code", "unknown_recovery_code", "not an unused recovery code of this account");
  }

  /**
   * Runs a proof check; a wrong proof is counted against the account,
   * recorded (SecondFactorFailed, and LoginLockedOut when it is the one that
   * reached the limit) and answered as a field violation.
   */
  async function proving<T>(attempt: ProofAttempt, check: () => Promise<T>): Promise<T> {
    const subject = failureSubject(attempt.userId);
    await tools.enforce(tf.failures, subject, "too many wrong codes for this account; try again later");
    try {
      const result = await check();
      await tf.failures.reset(subject);
      return result;
    } catch (error) {
      if (!(error instanceof WrongProof)) throw error;
      await tf.failures.count(subject);
      const state = await tf.failures.state(subject);
      const ipAddress = getPeer(attempt.context).ip;
      const at = now();
      await db.transaction(async (tx) => {
        await secondFactorFailed(tx, { userId: attempt.userId, purpose: attempt.purpose, failure: error.failure, ipAddress }, at);
        if (state.blocked) await loginLockedOut(tx, { userId: attempt.userId, identityKind: undefined, ipAddress, limit: "second_factor", retryAfterSeconds: state.retryAfterSeconds }, at);
      });
      throw invalidArgument([{ field: error.field, description: error.message }]);
    }
  }

  /**
   * Checks `proof` and runs `then` in the transaction that spends it (a code
   * step or a recovery code), so a failed `then` spends nothing. Codes need
   * two-factor sign-in on; without it only the password proves anything.
   */
  async function prove<T>(
    user: UserRow,
    proof: FreshProofOneof,
    asked: { purpose: SecondFactorPurposeName; context: HandlerContext },
    then: (tx: Tx, kind: SecondFactorProof) => Promise<T>,
  ): Promise<T> {
    if (proof.case === undefined) throw invalidArgument([{ field: "proof", description: "a password, code or recovery code is required" }]);
    if (proof.case === "password") {
      await tools.checkPassword(user, proof.value, "password");
      return db.transaction((tx) => then(tx, "password"));
    }
    const factor = await findTotpFactor(db, user.id);
    const field = proof.case === "code" ? "code" : "recovery_code";
    if (factor === undefined || factor.confirmedAt === null) throw invalidArgument([{ field, description: "two-factor sign-in is not on; give the password" }]);
    return proving({ userId: user.id, ...asked }, () =>
      db.transaction(async (tx) => {
        if (proof.case === "code") await claimStep(tx, user.id, totpStep(factor, proof.value));
        else await spendRecovery(tx, user.id, proof.value);
        return then(tx, proof.case === "code" ? "totp" : "recovery_code");
      }),
    );
  }

  return { totpStep, claimStep, spendRecovery, proving, prove };
}

export function createTwoFactorHandlers(deps: AuthDeps & { twoFactor: TwoFactorDeps }, tools: SessionTools): Pick<ServiceImpl<typeof AuthService>, TwoFactorMethods> {
  const { db } = deps.database;
  const tf = deps.twoFactor;
  const now = deps.now ?? (() => new Date());
  const { totpStep, claimStep, spendRecovery, proving, prove } = createFreshProof(deps, tools);

  async function callerAccount(context: HandlerContext): Promise<UserRow> {
    const principal = requirePrincipal(context);
    const user = await findUserById(db, principal.userId);
    if (user === undefined) throw unauthenticated("account no longer exists");
    return user;
  }

  return {
    async startTotpEnrollment(request, context) {
      const user = await callerAccount(context);
      await tools.checkPassword(user, request.password, "password");
      const existing = await findTotpFactor(db, user.id);
      const alreadyOn = failedPrecondition("two-factor sign-in is already on; disable it first to enrol another app");
      if (existing?.confirmedAt != null) throw alreadyOn;
      const secret = newTotpSecret();
      if (!(await putPendingTotp(db, user.id, tf.sealer.seal("totp-secret", secret)))) throw alreadyOn;
      return {
        secret: base32Encode(secret),
        otpauthUri: otpauthUri({ issuer: tf.issuer, account: user.email ?? user.phone ?? user.id, secret }),
        digits: TOTP_DIGITS,
        periodSeconds: TOTP_PERIOD_SECONDS,
      };
    },

    async confirmTotpEnrollment(request, context) {
      const user = await callerAccount(context);
      const factor = await findTotpFactor(db, user.id);
      if (factor === undefined || factor.confirmedAt !== null) throw failedPrecondition("no enrolment in progress; call StartTotpEnrollment first");
      const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
      await proving({ userId: user.id, purpose: "enrollment", context }, () =>
        db.transaction(async (tx) => {
          const at = now();
          await claimStep(tx, user.id, totpStep(factor, request.code), { confirm: at });
          await replaceRecoveryCodes(tx, user.id, codes.map(hashRecoveryCode));
          await twoFactorEnabled(tx, user.id, codes.length, at);
        }),
      );
      return { recoveryCodes: codes };
    },

    async disableTwoFactor(request, context) {
      const user = await callerAccount(context);
      const factor = await findTotpFactor(db, user.id);
      if (factor === undefined || factor.confirmedAt === null) throw failedPrecondition("two-factor sign-in is not on");
      // A password is checked (and limited) like ChangePassword's; codes like sign-in codes.
      await prove(user, request.proof, { purpose: "disable", context }, async (tx, kind) => {
        await removeSecondFactor(tx, user.id);
        await twoFactorDisabled(tx, user.id, kind, now());
      });
      return {};
    },

    async verifySecondFactor(request, context) {
      const attempt = await tf.challenges.attempt(request.challengeToken);
      if (attempt.kind === "missing") throw unauthenticated("this sign-in has expired or is unknown; sign in again");
      if (attempt.kind === "exhausted") throw resourceExhausted("too many wrong codes for this sign-in; sign in again", 1);
      const { userId, deviceName } = attempt.challenge;
      const factor = await findTotpFactor(db, userId);
      if (factor === undefined || factor.confirmedAt === null) throw unauthenticated("this sign-in has expired; sign in again");
      const factorGiven = request.factor;
      if (factorGiven.case === undefined) throw invalidArgument([{ field: "factor", description: "a code or a recovery code is required" }]);
      const opened = await proving({ userId, purpose: "sign_in", context }, () =>
        db.transaction(async (tx) => {
          if (factorGiven.case === "code") await claimStep(tx, userId, totpStep(factor, factorGiven.value));
          else await spendRecovery(tx, userId, factorGiven.value);
          // One challenge opens one session, however many right answers race for it.
          if (!(await tf.challenges.close(request.challengeToken))) throw unauthenticated("this sign-in was already finished; sign in again");
          const session = await tools.openSession(tx, userId, deviceName, context);
          let remaining = 0;
          if (factorGiven.case === "recoveryCode") {
            remaining = await unusedRecoveryCodes(tx, userId);
            await recoveryCodeUsed(tx, userId, session.session.id, remaining, now());
          }
          return { ...session, remaining };
        }),
      );
      return {
        userId,
        sessionId: opened.session.id,
        tokens: await tools.tokenPair(userId, opened.session.id, opened.refreshToken),
        recoveryCodesRemaining: opened.remaining,
        pendingDeletion: await pendingDeletionOf(db, userId),
      };
    },
  };
}
