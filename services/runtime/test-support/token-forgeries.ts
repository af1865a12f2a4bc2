// The token attack set, for any test that has a real auth service: from one
// genuine token, every way an attacker might get a call accepted without
// being given a token — alg none, HS256 keyed with the issuer's public key,
// the attacker's own key under the real, an unknown or an injected kid (path
// traversal, a URL, SQL; the key embedded in the header, jku/x5u pointing at
// the attacker), a tampered payload or signature — plus tokens signed with
// the issuer's real key but with claims a real issuer never writes
// (expired, not yet valid, wrong iss/aud, no session). Every one must be
// refused wherever the genuine token is accepted.
import { createHmac } from "node:crypto";
import { SignJWT, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, type JWK, type JWTPayload } from "jose";
import type { TestAuth } from "../../auth/test/harness.ts";
import { parseKeyEncryptionKeys, unwrapPrivateJwk } from "../../auth/src/domain/key-encryption.ts";

/** The issuer and audiences every service is configured with (service-config defaults). */
export const ISSUER = "aviary-auth";
export const AUDIENCE = "aviary";
export const INTERNAL_AUDIENCE = "aviary-internal";

interface IssuerKey {
  kid: string;
  privateJwk: JWK;
  publicJwk: JWK;
}

/**
 * The key the auth service signs with now, read from its schema as every
 * instance reads it: the private JWK sealed under the key-encryption key
 * (the development one unless the test set AUTH_KEY_ENCRYPTION_KEYS), or in
 * plain JSON in rows from before encryption at rest.
 */
async function issuerKey(service: Pick<TestAuth, "query">, keyEncryptionKeys = process.env["AUTH_KEY_ENCRYPTION_KEYS"]): Promise<IssuerKey> {
  const [key] = await service.query<{ kid: string; private_jwk: JWK | null; private_key_sealed: Buffer | null; kek_id: string | null; public_jwk: JWK }>(
    "SELECT * FROM auth.signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
  );
  if (!key) throw new Error("the auth service has no signing key");
  let privateJwk = key.private_jwk;
  if (privateJwk === null && key.private_key_sealed !== null && key.kek_id !== null) {
    const keys = parseKeyEncryptionKeys(keyEncryptionKeys);
    if (typeof keys === "string") throw new Error(`AUTH_KEY_ENCRYPTION_KEYS: ${keys}`);
    privateJwk = unwrapPrivateJwk(keys, key.kid, key.kek_id, key.private_key_sealed);
  }
  if (privateJwk === null) throw new Error(`signing key ${key.kid} has no private key the test can read`);
  return { kid: key.kid, privateJwk, publicJwk: key.public_jwk };
}

/** Signs `claims` (undefined ones dropped) with the issuer's key; the header is the issuer's (ES256, its kid, at+jwt) unless `header` overrides it. */
export async function signAsIssuer(service: Pick<TestAuth, "query">, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  const key = await issuerKey(service);
  const clean = Object.fromEntries(Object.entries(claims).filter(([, v]) => v !== undefined));
  return new SignJWT(clean).setProtectedHeader({ alg: "ES256", kid: key.kid, typ: "at+jwt", ...header }).sign(await importJWK(key.privateJwk, "ES256"));
}

/** A service token's claims for `clientId` with `scope`, valid now (sign it with header typ svc+jwt). */
export function serviceClaims(clientId: string, scope: string): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return { iss: ISSUER, aud: INTERNAL_AUDIENCE, sub: `service:${clientId}`, scope, jti: crypto.randomUUID(), iat: now, nbf: now, exp: now + 300 };
}

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** kids an attacker might hope a verifier resolves as a path, a URL or a query. */
export const injectedKids = ["../../../../dev/null", "/etc/passwd", "https://attacker.example/jwks.json", "' OR '1'='1", "kid\u0000with-nul", ""];

/**
 * The attacks, by name, made from `genuine` (a token `service` issued, or
 * signed with its key): each name maps to one or more tokens.
 */
export async function tokenForgeries(service: Pick<TestAuth, "query">, genuine: string): Promise<Record<string, string[]>> {
  const claims = decodeJwt(genuine);
  const header = decodeProtectedHeader(genuine);
  const typ = typeof header.typ === "string" ? header.typ : "at+jwt";
  const key = await issuerKey(service);
  const now = Math.floor(Date.now() / 1000);
  const [encodedHeader, encodedPayload, signature = ""] = genuine.split(".");
  const attacker = await generateKeyPair("ES256", { extractable: true });
  const attackerJwk = await exportJWK(attacker.publicKey);
  const signOwn = (kid: string, extra: Record<string, unknown> = {}) =>
    new SignJWT(claims).setProtectedHeader({ alg: "ES256", typ, kid, ...extra }).sign(attacker.privateKey);
  const withIssuerKey = (payload: JWTPayload) => signAsIssuer(service, { ...claims, jti: crypto.randomUUID(), ...payload }, { typ });
  const hmac = (secret: string) => {
    const head = `${b64({ alg: "HS256", kid: key.kid, typ })}.${encodedPayload}`;
    return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
  };
  const { kty, crv, x, y } = key.publicJwk;
  const flipped = Buffer.from(signature, "base64url");
  flipped[0] = (flipped[0] ?? 0) ^ 0xff;
  return {
    "alg none": [`${b64({ alg: "none", typ })}.${encodedPayload}.`, `${b64({ alg: "none", typ, kid: key.kid })}.${encodedPayload}.${signature}`, `${b64({ alg: "None", typ })}.${encodedPayload}.`],
    "HS256 signed with the public key": [JSON.stringify(key.publicJwk), JSON.stringify({ crv, kty, x, y }), x ?? ""].map(hmac),
    expired: [await withIssuerKey({ iat: now - 7200, nbf: now - 7200, exp: now - 3600 })],
    "not yet valid": [await withIssuerKey({ iat: now, nbf: now + 3600, exp: now + 7200 })],
    "issued in the future": [await withIssuerKey({ iat: now + 3600, nbf: now + 3600, exp: now + 7200 })],
    "wrong iss": [await withIssuerKey({ iss: "https://evil.example" })],
    "wrong aud": [await withIssuerKey({ aud: "someone-else" }), await withIssuerKey({ aud: claims.aud === AUDIENCE ? INTERNAL_AUDIENCE : AUDIENCE })],
    "unknown kid": [await signOwn("no-such-kid")],
    "the attacker's key under the real kid": [await signOwn(key.kid)],
    "injected kid": await Promise.all(injectedKids.map((kid) => signOwn(kid))),
    "the attacker's key in the header (jwk, jku, x5u)": [
      await signOwn(key.kid, { jwk: attackerJwk }),
      await signOwn("attacker", { jwk: { ...attackerJwk, kid: "attacker" }, jku: "https://attacker.example/jwks.json" }),
      await signOwn("attacker", { x5u: "https://attacker.example/cert.pem" }),
    ],
    "tampered payload": [
      `${encodedHeader}.${b64({ ...claims, sub: "00000000-0000-4000-8000-000000000000" })}.${signature}`,
      `${encodedHeader}.${b64({ ...claims, exp: now + 86_400 * 365 })}.${signature}`,
      // Privilege escalation: the roles claim is only worth what the signature vouches for.
      `${encodedHeader}.${b64({ ...claims, roles: ["admin", "moderator"] })}.${signature}`,
    ],
    "tampered signature": [`${encodedHeader}.${encodedPayload}.${flipped.toString("base64url")}`, `${encodedHeader}.${encodedPayload}.`],
    // A user token without its session (nothing to revoke); service tokens have none to drop.
    ...(claims["sid"] === undefined ? {} : { "no session id": [await withIssuerKey({ sid: undefined })] }),
    garbage: ["not.a.jwt", `${encodedHeader}.${encodedPayload}`, "a".repeat(9000)],
  };
}
