import { sql } from "drizzle-orm";
import { bigint, boolean, index, jsonb, pgSchema, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import type { JWK } from "jose";
import { outboxTables } from "@aviary/runtime/outbox/tables";
import { bytea } from "@aviary/runtime/outbox/bytea";

/** Everything the auth service stores lives in its own schema. */
export const auth = pgSchema("auth");

/**
 * An account. An account has an email, a phone, or both; each is unique and
 * verified separately. Identities are stored normalised (lower-cased email,
 * E.164 phone), so uniqueness is case-insensitive by construction.
 */
export const users = auth.table(
  "users",
  {
    id: uuid("id").primaryKey(),
    email: text("email"),
    emailVerifiedAt: timestamp("email_verified_at", { withTimezone: true }),
    phone: text("phone"),
    phoneVerifiedAt: timestamp("phone_verified_at", { withTimezone: true }),
    passwordHash: text("password_hash").notNull(),
    passwordChangedAt: timestamp("password_changed_at", { withTimezone: true }).notNull().defaultNow(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("users_email_key").on(t.email).where(sql`${t.email} is not null`),
    uniqueIndex("users_phone_key").on(t.phone).where(sql`${t.phone} is not null`),
  ],
);

/**
 * A signed-in device. A session is also the family of its refresh tokens:
 * reuse of a spent token revokes the session, and with it every token.
 */
export const sessions = auth.table(
  "sessions",
  {
    id: uuid("id").primaryKey(),
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    deviceName: text("device_name").notNull().default(""),
    ipAddress: text("ip_address").notNull().default(""),
    userAgent: text("user_agent").notNull().default(""),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    lastUsedAt: timestamp("last_used_at", { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
    revokedReason: text("revoked_reason"),
  },
  (t) => [
    // Keyset pagination of a user's open sessions, newest first.
    index("sessions_user_created_idx").on(t.userId, t.createdAt.desc(), t.id.desc()),
    // Recent revocations, re-published to the cache denylist (see domain/denylist.ts).
    index("sessions_revoked_idx").on(t.revokedAt).where(sql`${t.revokedAt} is not null`),
  ],
);

/** Refresh tokens are stored as SHA-256 hashes; the token itself is shown once. */
export const refreshTokens = auth.table(
  "refresh_tokens",
  {
    id: uuid("id").primaryKey(),
    sessionId: uuid("session_id")
      .notNull()
      .references(() => sessions.id, { onDelete: "cascade" }),
    tokenHash: text("token_hash").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    spentAt: timestamp("spent_at", { withTimezone: true }),
    /**
     * Set when the token is spent: the token that replaced it, sealed
     * (domain/sealing.ts, use "refresh-successor"), so a racing refresh with
     * this token inside AUTH_REFRESH_REUSE_WINDOW gets the same successor
     * instead of revoking the session. Never a usable token in plaintext.
     */
    successorSealed: bytea("successor_sealed"),
  },
  (t) => [uniqueIndex("refresh_tokens_hash_key").on(t.tokenHash), index("refresh_tokens_session_idx").on(t.sessionId)],
);

/**
 * Token signing keys (ES256). The most recently activated key signs; keys are
 * published before they activate and stay published after they retire until
 * every token they signed has expired, so a rotation never invalidates a token
 * that is still in date nor produces one a verifier cannot check yet.
 */
export const signingKeys = auth.table("signing_keys", {
  kid: text("kid").primaryKey(),
  alg: text("alg").notNull(),
  publicJwk: jsonb("public_jwk").$type<JWK>().notNull(),
  /** Only in rows from before encryption at rest; sealed and cleared at the next start. */
  privateJwk: jsonb("private_jwk").$type<JWK>(),
  /** The private JWK sealed under the key-encryption key `kek_id` (domain/key-encryption.ts). */
  privateKeySealed: bytea("private_key_sealed"),
  kekId: text("kek_id"),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  /**
   * When the key starts signing. A scheduled rotation publishes the new key
   * ahead of this, so verifiers that cache the JWKS (Envoy refreshes every
   * minute and never refetches on an unknown kid) know it before it is used.
   */
  activatesAt: timestamp("activates_at", { withTimezone: true }).notNull().defaultNow(),
  /** When a newer key took (or takes) over signing. */
  retiredAt: timestamp("retired_at", { withTimezone: true }),
  /** After this the key is no longer published (retiredAt + access-token lifetime + leeway). */
  unpublishAt: timestamp("unpublish_at", { withTimezone: true }),
});

/**
 * An authenticator app (TOTP) bound to an account: one per account. The row
 * exists from StartTotpEnrollment; sign-in asks for a code only once it is
 * confirmed. The secret is sealed (domain/sealing.ts) and never answered
 * again after the enrolment started.
 */
export const totpFactors = auth.table("totp_factors", {
  userId: uuid("user_id")
    .primaryKey()
    .references(() => users.id, { onDelete: "cascade" }),
  secretSealed: bytea("secret_sealed").notNull(),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  confirmedAt: timestamp("confirmed_at", { withTimezone: true }),
  /** The time step of the last code accepted: a code of this step or an earlier one is a replay. */
  lastUsedStep: bigint("last_used_step", { mode: "number" }),
});

/** Single-use recovery codes, stored as SHA-256 (they carry 80 random bits; see domain/recovery-codes.ts). */
export const recoveryCodes = auth.table(
  "recovery_codes",
  {
    id: uuid("id").primaryKey(),
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    codeHash: text("code_hash").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    usedAt: timestamp("used_at", { withTimezone: true }),
  },
  (t) => [uniqueIndex("recovery_codes_user_hash_key").on(t.userId, t.codeHash)],
);

export const { outboxEvents, processedEvents } = outboxTables(auth);

/**
 * Scheduled and carried-out account deletions. No foreign key: the row
 * outlives the account. While `purged_at` is null it is a pending deletion
 * (the scheduler purges it at `purge_at`; cancelling deletes the row). Once
 * purged it is the tombstone: the user id and three times, nothing personal,
 * so a purge already done is never done (nor announced) twice.
 */
export const accountDeletions = auth.table(
  "account_deletions",
  {
    userId: uuid("user_id").primaryKey(),
    requestedAt: timestamp("requested_at", { withTimezone: true }).notNull(),
    purgeAt: timestamp("purge_at", { withTimezone: true }).notNull(),
    purgedAt: timestamp("purged_at", { withTimezone: true }),
  },
  // The scheduler's scan: pending deletions by due time.
  (t) => [index("account_deletions_due_idx").on(t.purgeAt).where(sql`${t.purgedAt} is null`)],
);

/**
 * Who holds which role ("moderator", "admin"); read into the access token's
 * `roles` claim when a session opens or refreshes. `granted_by` is null for
 * a grant from AUTH_BOOTSTRAP_ADMINS.
 */
export const userRoles = auth.table(
  "user_roles",
  {
    userId: uuid("user_id").notNull(),
    role: text("role").notNull(),
    grantedBy: uuid("granted_by"),
    grantedAt: timestamp("granted_at", { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.role] })],
);

/**
 * Suspensions as the moderation service announced them (UserSuspended /
 * UserUnsuspended): sign-in is refused while `suspended`. `changed_at` is the
 * event's time, so a replayed older event never undoes a newer one.
 */
export const accountSuspensions = auth.table("account_suspensions", {
  userId: uuid("user_id").primaryKey(),
  suspended: boolean("suspended").notNull(),
  reason: text("reason").notNull(),
  changedAt: timestamp("changed_at", { withTimezone: true }).notNull(),
});

/**
 * A copy of a user's data, asked for by its owner (DataExportService). A row
 * starts `pending` with an outbox event for the exporter role, which makes it
 * `building`, collects every service's share and stores one archive under
 * `object_key`, then `ready` until `expires_at`, when the sweeper deletes the
 * archive and makes it `expired`. `failed` when it could not be built. At
 * most one pending or building export per user (a partial unique index).
 */
export const dataExports = auth.table(
  "data_exports",
  {
    id: uuid("id").primaryKey(),
    userId: uuid("user_id").notNull(),
    /** "pending" | "building" | "ready" | "failed" | "expired". */
    state: text("state").notNull().default("pending"),
    requestedAt: timestamp("requested_at", { withTimezone: true }).notNull(),
    /** The latest start of a build (a restarted exporter starts again). */
    startedAt: timestamp("started_at", { withTimezone: true }),
    readyAt: timestamp("ready_at", { withTimezone: true }),
    expiresAt: timestamp("expires_at", { withTimezone: true }),
    objectKey: text("object_key"),
    sizeBytes: bigint("size_bytes", { mode: "number" }),
    failureReason: text("failure_reason"),
  },
  (t) => [
    uniqueIndex("data_exports_one_in_progress_key").on(t.userId).where(sql`${t.state} in ('pending', 'building')`),
    // The owner's list, newest first (keyset).
    index("data_exports_user_requested_idx").on(t.userId, t.requestedAt.desc(), t.id.desc()),
    // The sweeper's scan: ready archives by expiry.
    index("data_exports_ready_expiry_idx").on(t.expiresAt).where(sql`${t.state} = 'ready'`),
  ],
);
