import { sql } from "drizzle-orm";
import { bigint, index, jsonb, pgSchema, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
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
  privateJwk: jsonb("private_jwk").$type<JWK>().notNull(),
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
