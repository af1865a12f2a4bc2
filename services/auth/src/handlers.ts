import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { AuthService, type TokenPairSchema } from "@aviary/gen/aviary/auth/v1/auth_pb";
import type { Database, Tx } from "@aviary/runtime/db/database";
import type { Cache } from "@aviary/runtime/cache/cache";
import { requirePrincipal, getPeer } from "@aviary/runtime/context";
import {
  alreadyExists,
  invalidArgument,
  notFound,
  resourceExhausted,
  unauthenticated,
} from "@aviary/runtime/errors";
import { pageSize, type PageTokens } from "@aviary/runtime/pagination";
import { IdentityError, identityKey, normaliseIdentity, type Identity, type IdentityOneof } from "./domain/identity.ts";
import { decoyHash, passwordWeakness, type PasswordHashing } from "./domain/passwords.ts";
import type { CodeCheck, CodePurpose, OneTimeCodes } from "./domain/codes.ts";
import type { AttemptLimiter } from "./domain/attempt-limits.ts";
import type { KeyRing } from "./domain/signing-keys.ts";
import { newRefreshToken, hashRefreshToken, signAccessToken, type TokenSettings } from "./domain/tokens.ts";
import { findUserById, findUserByIdentity, insertUser, markIdentityVerified, setPasswordHash } from "./store/accounts.ts";
import {
  findSession,
  insertRefreshToken,
  insertSession,
  listOpenSessions,
  lockRefreshToken,
  revokeSession,
  revokeUserSessions,
  spendRefreshToken,
  touchSession,
  type SessionCursor,
  type RefreshTokenRow,
  type SessionRow,
} from "./store/sessions.ts";
import { loginFailed, loginLockedOut, passwordChanged, sessionsRevoked, userLoggedIn, userRegistered, type LoginLimitName, type RevocationReason } from "./events/publish.ts";
import type { SessionDenylist } from "./domain/denylist.ts";
import type { Sealer } from "./domain/sealing.ts";
import { requestCodeDelivery } from "./events/code-delivery.ts";
import { chooseLocale } from "./delivery/locale.ts";
import { hasConfirmedTotp } from "./store/second-factors.ts";
import { createTwoFactorHandlers, type TwoFactorDeps } from "./two-factor.ts";
import { accessRoles, refuseIfSuspended } from "./roles.ts";
import { createAccountDeletionHandlers, pendingDeletionOf, type AccountDeletionDeps } from "./account-deletion.ts";

export interface AuthSettings extends TokenSettings {
  /** The public base URL of the issuer, for the discovery document. */
  publicUrl: string;
}

/** Everything the handlers need; assembled by server.ts, replaced in tests. */
export interface AuthDeps {
  database: Database;
  cache: Cache;
  keys: KeyRing;
  codes: OneTimeCodes;
  /** Codes go out through the outbox to the sender role (delivery/worker.ts), sealed. */
  deliveries: { topic: string; sealer: Sealer };
  hashing: PasswordHashing;
  denylist: SessionDenylist;
  pageTokens: PageTokens;
  limits: {
    /** Failed logins per (identity, client IP): what stops one attacker, without locking the owner out elsewhere. */
    loginPerIdentityIp: AttemptLimiter;
    /** Failed logins per identity from every address: the higher ceiling for a distributed attack (and password re-checks per account). */
    loginPerIdentity: AttemptLimiter;
    /** Failed logins per client IP. */
    loginPerIp: AttemptLimiter;
    /** Codes sent per identity. */
    codesPerIdentity: AttemptLimiter;
  };
  settings: AuthSettings;
  /**
   * A spent refresh token presented again within `windowMs` of its spending,
   * while its successor is still unused, answers that same successor (two
   * requests of one client raced); otherwise reuse revokes the session.
   */
  refreshReuse: { windowMs: number; sealer: Sealer };
  twoFactor: TwoFactorDeps;
  deletion: AccountDeletionDeps;
  now?: () => Date;
}

export function createAuthHandlers(deps: AuthDeps): ServiceImpl<typeof AuthService> {
  const now = deps.now ?? (() => new Date());
  const { db } = deps.database;
  const decoy = decoyHash(deps.hashing);

  /** Normalises the request's identity, turning a bad one into a field violation. */
  function identityOf(request: { identity: IdentityOneof }): Identity {
    try {
      return normaliseIdentity(request.identity);
    } catch (error) {
      if (error instanceof IdentityError) throw invalidArgument([{ field: error.field, description: error.message }]);
      throw error;
    }
  }

  function rejectWeak(field: string, password: string, identity?: Identity): void {
    const weakness = passwordWeakness(password, identity);
    if (weakness !== undefined) throw invalidArgument([{ field, description: `password ${weakness}` }]);
  }

  async function enforce(limiter: AttemptLimiter, subject: string, message: string): Promise<void> {
    const state = await limiter.state(subject);
    if (state.blocked) throw resourceExhausted(message, state.retryAfterSeconds);
  }

  /**
   * Counts a code request against the identity's hourly quota, refusing it
   * when the quota is spent. Unknown identities count too, so the answer
   * cannot tell them apart.
   */
  async function countCodeRequest(purpose: CodePurpose, identity: Identity): Promise<void> {
    const subject = `${purpose}:${identityKey(identity)}`;
    await enforce(deps.limits.codesPerIdentity, subject, "too many codes requested for this identity");
    await deps.limits.codesPerIdentity.count(subject);
  }

  /** Like countCodeRequest, but answers whether to send instead of refusing (a registration must not fail on someone else's requests). */
  async function mayRequestCode(purpose: CodePurpose, identity: Identity): Promise<boolean> {
    const subject = `${purpose}:${identityKey(identity)}`;
    const state = await deps.limits.codesPerIdentity.state(subject);
    await deps.limits.codesPerIdentity.count(subject);
    return !state.blocked;
  }

  /**
   * Issues a code and enqueues its delivery in `tx`: it goes out exactly when
   * the transaction commits, through the sender role, so a slow mail server
   * or SMS gateway never holds up the RPC.
   */
  async function enqueueCode(tx: Tx, purpose: CodePurpose, identity: Identity, locale: string): Promise<void> {
    const code = await deps.codes.issue(purpose, identity);
    await requestCodeDelivery(tx, deps.deliveries, { to: identity, purpose, locale, code, at: now(), ttlSeconds: deps.codes.ttlSeconds });
  }

  function localeOf(request: { locale: string }, context: HandlerContext): string {
    return chooseLocale(request.locale, context.requestHeader.get("accept-language"));
  }

  /**
   * The account's password, limited per account; a wrong one is a field
   * violation on `field`. Only a signed-in caller gets here, so the
   * per-account limit cannot be spent by a stranger: the per-pair budget
   * (AUTH_LOGIN_FAILURES_PER_IDENTITY_IP) applies per account.
   */
  async function checkPassword(user: { id: string; passwordHash: string }, password: string, field: string): Promise<void> {
    const subject = `user:${user.id}`;
    await enforce(deps.limits.loginPerIdentityIp, subject, "too many wrong passwords for this account");
    if (!(await deps.hashing.verify(user.passwordHash, password))) {
      await deps.limits.loginPerIdentityIp.count(subject);
      throw invalidArgument([{ field, description: "password is incorrect" }]);
    }
  }

  /** Turns a failed code check into the error the client sees. */
  function codeError(check: Exclude<CodeCheck, "ok">): Error {
    switch (check) {
      // One answer for a wrong code and for none at all: "no code pending"
      // would tell a guesser which identities have an account (a reset or
      // verification code is only ever sent to those).
      case "mismatch":
      case "missing":
        return invalidArgument([{ field: "code", description: "code is incorrect or has expired; request a new one" }]);
      case "locked":
        return resourceExhausted("too many wrong codes; request a new one", deps.codes.ttlSeconds);
    }
  }

  /** Opens a session with its first refresh token, in the caller's transaction. */
  async function openSession(tx: Tx, userId: string, deviceName: string, context: HandlerContext) {
    await refuseIfSuspended(tx, userId);
    const at = now();
    const peer = getPeer(context);
    const session = {
      id: crypto.randomUUID(),
      userId,
      deviceName,
      ipAddress: peer.ip,
      userAgent: peer.userAgent,
      createdAt: at,
      expiresAt: new Date(at.getTime() + deps.settings.refreshTokenTtlSeconds * 1000),
    };
    await insertSession(tx, session);
    const refresh = newRefreshToken();
    await insertRefreshToken(tx, { sessionId: session.id, hash: refresh.hash, expiresAt: session.expiresAt });
    await userLoggedIn(tx, session, at);
    return { session, refreshToken: refresh.token };
  }

  async function tokenPair(userId: string, sessionId: string, refreshToken: string): Promise<MessageInitShape<typeof TokenPairSchema>> {
    return {
      accessToken: await signAccessToken(deps.keys, deps.settings, { userId, sessionId, roles: await accessRoles(db, userId) }, now()),
      tokenType: "Bearer",
      expiresInSeconds: deps.settings.accessTokenTtlSeconds,
      refreshToken,
      refreshExpiresInSeconds: deps.settings.refreshTokenTtlSeconds,
    };
  }

  /**
   * The successor of a spent token, when the token was spent less than the
   * reuse window ago and the successor is still unspent (in the same
   * session); undefined otherwise, which makes the presentation a reuse.
   * A successor sealed under another key (a restart without
   * AUTH_SECRETS_KEY) counts as unavailable: the session is revoked, as
   * without the window.
   */
  async function unusedSuccessor(tx: Tx, token: RefreshTokenRow, at: Date): Promise<string | undefined> {
    if (token.spentAt === null || token.successorSealed === null) return undefined;
    // `at` is read when the request arrives, so a request racing the one that
    // spent the token can see a spending time after its own: clamp to 0, or a
    // window of 0 would hand that racer the successor (found under a CPU hog).
    if (Math.max(0, at.getTime() - token.spentAt.getTime()) >= deps.refreshReuse.windowMs) return undefined;
    let successor: string;
    try {
      successor = new TextDecoder().decode(deps.refreshReuse.sealer.open("refresh-successor", token.successorSealed));
    } catch {
      return undefined;
    }
    const row = await lockRefreshToken(tx, hashRefreshToken(successor));
    return row !== undefined && row.sessionId === token.sessionId && row.spentAt === null && row.expiresAt > at ? successor : undefined;
  }

  /** Revokes sessions in a transaction, emits events, then denylists their access tokens. */
  async function revoke(select: (tx: Tx, at: Date) => Promise<SessionRow[]>, reason: RevocationReason): Promise<SessionRow[]> {
    const revoked = await db.transaction(async (tx) => {
      const at = now();
      const rows = await select(tx, at);
      await sessionsRevoked(tx, rows, reason, at);
      return rows;
    });
    await deps.denylist.add(revoked.map((row) => row.id));
    return revoked;
  }

  const tools = { openSession, tokenPair, enforce, checkPassword };
  const twoFactor = createTwoFactorHandlers(deps, tools);
  const accountDeletion = createAccountDeletionHandlers(deps, tools);

  return {
    ...twoFactor,
    ...accountDeletion,

    async register(request, context) {
      const identity = identityOf(request);
      rejectWeak("password", request.password, identity);
      const locale = localeOf(request, context);
      const passwordHash = await deps.hashing.hash(request.password);
      const user = await db.transaction(async (tx) => {
        const inserted = await insertUser(tx, identity, passwordHash);
        if (inserted === undefined) throw alreadyExists(`an account with this ${identity.kind} already exists`);
        await userRegistered(tx, inserted.id, identity, inserted.createdAt);
        // Someone may have asked for codes for this address before it was an account:
        // the account is still created, and a code can be asked for once the window ends.
        if (await mayRequestCode("verify", identity)) await enqueueCode(tx, "verify", identity, locale);
        return inserted;
      });
      return { userId: user.id, identity: identity.value, verificationRequired: true };
    },

    async sendVerificationCode(request, context) {
      const identity = identityOf(request);
      const user = await findUserByIdentity(db, identity);
      const verified = identity.kind === "email" ? user?.emailVerifiedAt : user?.phoneVerifiedAt;
      await countCodeRequest("verify", identity);
      // Unknown or already verified identities get the same answer, without a message.
      if (user !== undefined && (verified ?? null) === null) {
        const locale = localeOf(request, context);
        await db.transaction((tx) => enqueueCode(tx, "verify", identity, locale));
      }
      return { expiresInSeconds: deps.codes.ttlSeconds };
    },

    async verifyIdentity(request) {
      const identity = identityOf(request);
      const user = await findUserByIdentity(db, identity);
      // Checked (and counted) for unknown identities too, so they lock at the same guess as known ones.
      const check = await deps.codes.check("verify", identity, request.code);
      if (check !== "ok" || user === undefined) throw codeError(check === "ok" ? "missing" : check);
      await markIdentityVerified(db, user.id, identity, now());
      return { userId: user.id };
    },

    async login(request, context) {
      const identity = identityOf(request);
      const ip = getPeer(context).ip;
      // Failures from one address block that address for this account only;
      // the owner signing in from elsewhere is not held up by them. The
      // account-wide ceiling is higher: only many addresses together reach it.
      const pair = `${identityKey(identity)}@${ip}`;
      await enforce(deps.limits.loginPerIdentityIp, pair, "too many failed logins for this account from this address");
      await enforce(deps.limits.loginPerIdentity, identityKey(identity), "too many failed logins for this account");
      await enforce(deps.limits.loginPerIp, ip, "too many failed logins from this address");
      const user = await findUserByIdentity(db, identity);
      const matches = await deps.hashing.verify(user?.passwordHash ?? (await decoy), request.password);
      if (user === undefined || !matches) {
        // Every limit passed above, so one blocked now was reached by this failure: its lockout is recorded once, here.
        const lockouts: Array<{ limit: LoginLimitName; retryAfterSeconds: number }> = [];
        for (const [limit, limiter, subject] of [
          ["identity_ip", deps.limits.loginPerIdentityIp, pair],
          ["identity", deps.limits.loginPerIdentity, identityKey(identity)],
          ["ip", deps.limits.loginPerIp, ip],
        ] as const) {
          await limiter.count(subject);
          const state = await limiter.state(subject);
          if (state.blocked) lockouts.push({ limit, retryAfterSeconds: state.retryAfterSeconds });
        }
        const at = now();
        await db.transaction(async (tx) => {
          await loginFailed(tx, { userId: user?.id, identityKind: identity.kind, ipAddress: ip }, at);
          for (const lockout of lockouts) {
            // The address limit spans accounts: it names none.
            await loginLockedOut(tx, { userId: lockout.limit === "ip" ? undefined : user?.id, identityKind: identity.kind, ipAddress: ip, ...lockout }, at);
          }
        });
        throw unauthenticated("wrong email, phone or password");
      }
      await deps.limits.loginPerIdentityIp.reset(pair);
      await deps.limits.loginPerIdentity.reset(identityKey(identity));
      if (await hasConfirmedTotp(db, user.id)) {
        // The password was right; the session waits for the second factor (VerifySecondFactor).
        const challengeToken = await deps.twoFactor.challenges.open({ userId: user.id, deviceName: request.deviceName });
        return { secondFactorRequired: true, challengeToken, challengeExpiresInSeconds: deps.twoFactor.challenges.ttlSeconds };
      }
      const opened = await db.transaction((tx) => openSession(tx, user.id, request.deviceName, context));
      return {
        userId: user.id,
        sessionId: opened.session.id,
        tokens: await tokenPair(user.id, opened.session.id, opened.refreshToken),
        // Signing in during the grace period works (that is how the owner cancels); the client is told.
        pendingDeletion: await pendingDeletionOf(db, user.id),
      };
    },

    async refresh(request) {
      const at = now();
      const outcome = await db.transaction(async (tx) => {
        const token = await lockRefreshToken(tx, hashRefreshToken(request.refreshToken));
        if (token === undefined) return { kind: "unknown" } as const;
        const session = await findSession(tx, token.sessionId);
        if (session === undefined || session.revokedAt !== null || session.expiresAt <= at || token.expiresAt <= at) {
          return { kind: "ended" } as const;
        }
        if (token.spentAt !== null) {
          // The same client racing itself (two tabs, a retry after a lost answer): the successor it already has, once more.
          const successor = await unusedSuccessor(tx, token, at);
          if (successor !== undefined) {
            await touchSession(tx, session.id, at);
            return { kind: "rotated", userId: session.userId, sessionId: session.id, refreshToken: successor } as const;
          }
          // A spent token came back: it was stolen or leaked. End the whole family.
          const revoked = await revokeSession(tx, session.userId, session.id, "refresh_token_reuse", at);
          await sessionsRevoked(tx, revoked, "refresh_token_reuse", at);
          return { kind: "reused", sessionId: session.id } as const;
        }
        const next = newRefreshToken();
        await spendRefreshToken(tx, token.id, at, deps.refreshReuse.sealer.seal("refresh-successor", new TextEncoder().encode(next.token)));
        await insertRefreshToken(tx, { sessionId: session.id, hash: next.hash, expiresAt: session.expiresAt });
        await touchSession(tx, session.id, at);
        return { kind: "rotated", userId: session.userId, sessionId: session.id, refreshToken: next.token } as const;
      });
      switch (outcome.kind) {
        case "unknown":
          throw unauthenticated("refresh token is not valid");
        case "ended":
          throw unauthenticated("session has ended; sign in again");
        case "reused":
          await deps.denylist.add([outcome.sessionId]);
          throw unauthenticated("refresh token was already used; the session has been revoked");
        case "rotated":
          return { tokens: await tokenPair(outcome.userId, outcome.sessionId, outcome.refreshToken) };
      }
    },

    async logout(_request, context) {
      const principal = requirePrincipal(context);
      await revoke((tx, at) => revokeSession(tx, principal.userId, principal.sessionId, "logout", at), "logout");
      return {};
    },

    async getMe(_request, context) {
      const principal = requirePrincipal(context);
      const user = await findUserById(db, principal.userId);
      if (user === undefined) throw unauthenticated("account no longer exists");
      return {
        userId: user.id,
        sessionId: principal.sessionId,
        email: user.email ?? "",
        emailVerified: user.emailVerifiedAt !== null,
        phone: user.phone ?? "",
        phoneVerified: user.phoneVerifiedAt !== null,
        createdAt: timestampFromDate(user.createdAt),
        twoFactorEnabled: await hasConfirmedTotp(db, user.id),
      };
    },

    async listSessions(request, context) {
      const principal = requirePrincipal(context);
      const limit = pageSize(request.pageSize, { default: 20, max: 100 });
      const after = request.pageToken === "" ? undefined : deps.pageTokens.decode(request.pageToken, parseSessionCursor);
      const rows = await listOpenSessions(db, principal.userId, now(), limit + 1, after);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        sessions: page.map((row) => ({
          sessionId: row.id,
          deviceName: row.deviceName,
          ipAddress: row.ipAddress,
          userAgent: row.userAgent,
          createdAt: timestampFromDate(row.createdAt),
          lastUsedAt: timestampFromDate(row.lastUsedAt),
          current: row.id === principal.sessionId,
        })),
        nextPageToken:
          rows.length > limit && last !== undefined
            ? deps.pageTokens.encode({ createdAt: last.createdAt.toISOString(), id: last.id } satisfies SessionCursor)
            : "",
      };
    },

    async revokeSession(request, context) {
      const principal = requirePrincipal(context);
      const revoked = await revoke((tx, at) => revokeSession(tx, principal.userId, request.sessionId, "revoked_by_user", at), "revoked_by_user");
      if (revoked.length === 0) {
        // Already revoked is fine (idempotent); someone else's or no session is not found, alike.
        const session = await findSession(db, request.sessionId);
        if (session === undefined || session.userId !== principal.userId) throw notFound("no such session");
      }
      return {};
    },

    async requestPasswordReset(request, context) {
      const identity = identityOf(request);
      const user = await findUserByIdentity(db, identity);
      await countCodeRequest("password_reset", identity);
      if (user !== undefined) {
        const locale = localeOf(request, context);
        await db.transaction((tx) => enqueueCode(tx, "password_reset", identity, locale));
      }
      return { expiresInSeconds: deps.codes.ttlSeconds };
    },

    async resetPassword(request) {
      const identity = identityOf(request);
      // Judge the new password before spending the code on it.
      rejectWeak("new_password", request.newPassword, identity);
      const user = await findUserByIdentity(db, identity);
      const check = await deps.codes.check("password_reset", identity, request.code);
      if (check !== "ok" || user === undefined) throw codeError(check === "ok" ? "missing" : check);
      const passwordHash = await deps.hashing.hash(request.newPassword);
      await revoke(async (tx, at) => {
        await setPasswordHash(tx, user.id, passwordHash, at);
        await passwordChanged(tx, user.id, true, at);
        return revokeUserSessions(tx, user.id, "password_reset", at);
      }, "password_reset");
      await deps.limits.loginPerIdentity.reset(identityKey(identity));
      return {};
    },

    async changePassword(request, context) {
      const principal = requirePrincipal(context);
      const user = await findUserById(db, principal.userId);
      if (user === undefined) throw unauthenticated("account no longer exists");
      await checkPassword(user, request.currentPassword, "current_password");
      const identity: Identity | undefined =
        user.email !== null ? { kind: "email", value: user.email } : user.phone !== null ? { kind: "phone", value: user.phone } : undefined;
      rejectWeak("new_password", request.newPassword, identity);
      if (request.newPassword === request.currentPassword) {
        throw invalidArgument([{ field: "new_password", description: "new password must differ from the current one" }]);
      }
      const passwordHash = await deps.hashing.hash(request.newPassword);
      await revoke(async (tx, at) => {
        await setPasswordHash(tx, user.id, passwordHash, at);
        await passwordChanged(tx, user.id, false, at);
        return revokeUserSessions(tx, user.id, "password_changed", at, principal.sessionId);
      }, "password_changed");
      return {};
    },

    getJwks() {
      return { keys: deps.keys.jwks().keys };
    },

    getOpenIdConfiguration() {
      return {
        issuer: deps.settings.issuer,
        jwksUri: `${deps.settings.publicUrl}/.well-known/jwks.json`,
        tokenEndpoint: `${deps.settings.publicUrl}/v1/auth/login`,
        idTokenSigningAlgValuesSupported: ["ES256"],
        responseTypesSupported: ["token"],
        subjectTypesSupported: ["public"],
      };
    },
  };
}

function parseSessionCursor(value: unknown): SessionCursor {
  if (typeof value === "object" && value !== null) {
    const { createdAt, id } = value as Record<string, unknown>;
    if (typeof createdAt === "string" && !Number.isNaN(Date.parse(createdAt)) && typeof id === "string") return { createdAt, id };
  }
  throw new Error("malformed session cursor");
}
