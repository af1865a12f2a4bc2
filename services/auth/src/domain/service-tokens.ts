import { SignJWT } from "jose";
import { SERVICE_SUBJECT_PREFIX, SERVICE_TOKEN_TYP } from "@aviary/runtime/auth/verifier";
import { signingAlgorithm, type KeyRing } from "./signing-keys.ts";

export interface ServiceTokenSettings {
  issuer: string;
  /**
   * The internal audience (AUTH_INTERNAL_AUDIENCE). Deliberately not the
   * public one: the edge's jwt_authn accepts only the public audience, so a
   * service token is refused there and works only service to service.
   */
  audience: string;
  ttlSeconds: number;
}

/**
 * Signs a service token with the same ring key as user access tokens, but a
 * different `typ` (svc+jwt), audience and subject ("service:<client id>"), so
 * neither kind of token can pass for the other. `scope` lists what it allows.
 * No `sid`: service tokens belong to no session and are not revocable; they
 * are short-lived instead.
 */
export async function signServiceToken(
  keys: KeyRing,
  settings: ServiceTokenSettings,
  claims: { clientId: string; scopes: readonly string[] },
  now = new Date(),
): Promise<{ token: string; expiresAt: Date }> {
  const { kid, privateKey } = keys.current();
  const issuedAt = Math.floor(now.getTime() / 1000);
  const expiresAt = issuedAt + settings.ttlSeconds;
  const token = await new SignJWT({ scope: claims.scopes.join(" ") })
    .setProtectedHeader({ alg: signingAlgorithm, kid, typ: SERVICE_TOKEN_TYP })
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setSubject(`${SERVICE_SUBJECT_PREFIX}${claims.clientId}`)
    .setJti(crypto.randomUUID())
    .setIssuedAt(issuedAt)
    .setNotBefore(issuedAt)
    .setExpirationTime(expiresAt)
    .sign(privateKey);
  return { token, expiresAt: new Date(expiresAt * 1000) };
}
