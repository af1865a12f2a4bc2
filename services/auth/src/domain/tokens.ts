import { createHash, randomBytes } from "node:crypto";
import { SignJWT } from "jose";
import { signingAlgorithm, type KeyRing } from "./signing-keys.ts";

export interface TokenSettings {
  issuer: string;
  audience: string;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
}

/** Claims of an Aviary access token beyond the registered ones. */
export interface AccessClaims {
  userId: string;
  sessionId: string;
  /** The `roles` claim ("moderator", "admin"); left out of the token when empty. */
  roles?: readonly string[];
}

/**
 * Signs a short-lived access token: ES256 with the ring's current `kid`, the
 * registered claims iss/aud/sub/iat/nbf/exp/jti, and `sid` naming the session,
 * which is what revocation checks against.
 */
export async function signAccessToken(keys: KeyRing, settings: TokenSettings, claims: AccessClaims, now = new Date()): Promise<string> {
  const { kid, privateKey } = keys.current();
  const issuedAt = Math.floor(now.getTime() / 1000);
  const roles = claims.roles ?? [];
  return new SignJWT(roles.length === 0 ? { sid: claims.sessionId } : { sid: claims.sessionId, roles: [...roles] })
    .setProtectedHeader({ alg: signingAlgorithm, kid, typ: "at+jwt" })
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setSubject(claims.userId)
    .setJti(crypto.randomUUID())
    .setIssuedAt(issuedAt)
    .setNotBefore(issuedAt)
    .setExpirationTime(issuedAt + settings.accessTokenTtlSeconds)
    .sign(privateKey);
}

/** A new opaque refresh token (256 random bits) and the hash we store for it. */
export function newRefreshToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString("base64url");
  return { token, hash: hashRefreshToken(token) };
}

export function hashRefreshToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
