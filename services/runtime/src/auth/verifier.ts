// Access-token verification with jose, shared by every service (defence in
// depth behind Envoy's jwt_authn) and by the auth service itself.
//
// What is rejected, and where:
// - `alg: none`, HS* (including HS256 "signed" with the public key) and any alg
//   outside the allow-list: jose's `algorithms` check, before any key lookup;
//   the allow-list itself may only name asymmetric algorithms.
// - unknown `kid`: the key set has no match (the remote set refetches once,
//   subject to its cooldown, so rotation works without restarts).
// - tampered header/payload/signature: signature verification.
// - expired, `nbf` in the future, `iat` in the future: claim checks with a
//   small clock tolerance (jose checks `iat` only when maxTokenAge is set).
// - wrong `iss`/`aud`, missing `sub`/`sid`/`jti`/`exp`/`iat`.
//
// Service tokens (createServiceTokenVerifier) go through the same checks with
// their own `typ` (svc+jwt) and audience (the internal one), and carry
// `sub` "service:<client id>" and `scope` instead of `sid`. Each verifier
// accepts only its own kind: a user token has the wrong typ/aud for the service
// verifier, and a service token has no `sid` (and the wrong typ/aud) for the
// user verifier.
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify } from "jose";
import type { JSONWebKeySet, JWTVerifyGetKey } from "jose";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Principal, ServicePrincipal } from "../context.ts";

/** Returns the current key set (e.g. the auth service's own keys, including ones being rotated out). */
export type KeySetGetter = () => JSONWebKeySet | Promise<JSONWebKeySet>;

export interface TokenVerifierOptions {
  issuer: string;
  audience: string | readonly string[];
  /** The JWKS URL (fetched and cached), or a getter for a local key set. */
  jwks: URL | KeySetGetter;
  /** Asymmetric algorithms only; default ["ES256"]. */
  algorithms?: readonly string[];
  /** Clock skew allowed for exp/nbf/iat, seconds (default 5). */
  clockToleranceSeconds?: number;
  /** Oldest acceptable `iat`, seconds (default 1 day); also makes `iat` required and not in the future. */
  maxTokenAgeSeconds?: number;
  /** Required `typ` header (e.g. "at+jwt"); not checked when unset. */
  typ?: string;
  /**
   * User tokens remembered once verified (default 10,000; 0: none). A token
   * crosses several services per request and is sent again on every call
   * until it expires, and a signature check is one of the dearest steps of a
   * call. A remembered token is the exact string that verified, and is
   * accepted only until its own `exp` (no clock tolerance), so the cache never
   * lengthens a token's life; session revocation is checked per call anyway.
   * What it does delay: a signing key withdrawn from the JWKS stops
   * verifying tokens already seen only when they expire — as a remote key
   * set's own cache (10 minutes) already does.
   */
  verifiedCacheSize?: number;
  /** The clock, for tests (ms since the epoch). */
  now?: () => number;
  /** Remote key set tuning. */
  remote?: {
    /** Minimum time between refetches triggered by unknown kids (default 30 s). */
    cooldownMs?: number;
    /** How long a fetched set counts as fresh (default 10 min). */
    cacheMaxAgeMs?: number;
    /** Fetch timeout (default 5 s). */
    timeoutMs?: number;
  };
}

export interface TokenVerifier {
  /** Resolves to the principal, or rejects with a ConnectError: Unauthenticated (bad token) or Unavailable (keys unreachable). */
  verify(token: string): Promise<Principal>;
}

const ASYMMETRIC = /^(?:ES(?:256|384|512)|RS(?:256|384|512)|PS(?:256|384|512)|EdDSA|Ed25519)$/;
const MAX_TOKEN_LENGTH = 8192;

function keySetFrom(jwks: URL | KeySetGetter, remote: TokenVerifierOptions["remote"] = {}): JWTVerifyGetKey {
  if (jwks instanceof URL) {
    return createRemoteJWKSet(jwks, {
      cooldownDuration: remote.cooldownMs ?? 30_000,
      cacheMaxAge: remote.cacheMaxAgeMs ?? 600_000,
      timeoutDuration: remote.timeoutMs ?? 5_000,
    });
  }
  // Re-import keys only when the getter hands out a different set object
  // (i.e. after a rotation), not on every call.
  let last: { set: JSONWebKeySet; getKey: JWTVerifyGetKey } | undefined;
  return async (header, token) => {
    const set = await jwks();
    if (last?.set !== set) last = { set, getKey: createLocalJWKSet(set) };
    return last.getKey(header, token);
  };
}

function nonEmptyString(v: unknown): v is string {
  return typeof v === "string" && v !== "";
}

const invalid = (message = "invalid access token") => new ConnectError(message, Code.Unauthenticated);

/** Verifies signature and registered claims; resolves to the payload or rejects with a ConnectError. */
function jwtChecker(options: TokenVerifierOptions): (token: string) => Promise<Record<string, unknown>> {
  const algorithms = [...(options.algorithms ?? ["ES256"])];
  if (algorithms.length === 0 || !algorithms.every((a) => ASYMMETRIC.test(a))) {
    throw new Error(`token verifier: algorithms must be asymmetric signature algorithms, got ${algorithms.join(", ")}`);
  }
  const getKey = keySetFrom(options.jwks, options.remote);
  const verifyOptions = {
    issuer: options.issuer,
    audience: typeof options.audience === "string" ? options.audience : [...options.audience],
    algorithms,
    clockTolerance: options.clockToleranceSeconds ?? 5,
    maxTokenAge: options.maxTokenAgeSeconds ?? 86_400,
    requiredClaims: ["exp", "iat", "sub", "jti"],
    ...(options.typ === undefined ? {} : { typ: options.typ }),
  };
  const now = options.now;
  return async (token) => {
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw invalid();
    try {
      return (await jwtVerify(token, getKey, now === undefined ? verifyOptions : { ...verifyOptions, currentDate: new Date(now()) })).payload;
    } catch (e) {
      throw classify(e);
    }
  };
}

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const check = jwtChecker(options);
  const now = options.now ?? Date.now;
  const capacity = options.verifiedCacheSize ?? 10_000;
  // Insertion order is recency order (a hit moves its entry to the end), so the first key is the one to evict.
  const verified = new Map<string, Principal>();
  return {
    async verify(token) {
      const remembered = verified.get(token);
      if (remembered !== undefined) {
        verified.delete(token);
        if (remembered.expiresAt.getTime() > now()) {
          verified.set(token, remembered);
          return remembered;
        }
      }
      const { sub, sid, jti, exp, roles } = (await check(token)) as { sub?: unknown; sid?: unknown; jti?: unknown; exp?: unknown; roles?: unknown };
      if (!nonEmptyString(sub) || !nonEmptyString(sid) || !nonEmptyString(jti) || typeof exp !== "number") throw invalid();
      // A malformed `roles` claim (not an array of strings) is a bad token, not "no roles": the issuer never writes one.
      if (roles !== undefined && !(Array.isArray(roles) && roles.every((r) => typeof r === "string"))) throw invalid();
      const principal: Principal = { userId: sub, sessionId: sid, tokenId: jti, expiresAt: new Date(exp * 1000), roles: roles ?? [] };
      if (capacity > 0 && principal.expiresAt.getTime() > now()) {
        verified.set(token, principal);
        const oldest = verified.keys().next();
        if (verified.size > capacity && !oldest.done) verified.delete(oldest.value);
      }
      return principal;
    },
  };
}

/** The `typ` header of service tokens (client credentials). */
export const SERVICE_TOKEN_TYP = "svc+jwt";
/** Prefix of a service token's `sub`, so it can never be mistaken for a user id. */
export const SERVICE_SUBJECT_PREFIX = "service:";

export interface ServiceTokenVerifier {
  /** Resolves to the service principal, or rejects like TokenVerifier.verify. */
  verify(token: string): Promise<ServicePrincipal>;
}

/** Options as for user tokens, but `audience` is the internal one and `typ` is always svc+jwt. */
export type ServiceTokenVerifierOptions = Omit<TokenVerifierOptions, "typ">;

export function createServiceTokenVerifier(options: ServiceTokenVerifierOptions): ServiceTokenVerifier {
  const check = jwtChecker({ ...options, typ: SERVICE_TOKEN_TYP });
  return {
    async verify(token) {
      const { sub, scope, jti, exp } = (await check(token)) as { sub?: unknown; scope?: unknown; jti?: unknown; exp?: unknown };
      if (!nonEmptyString(sub) || !sub.startsWith(SERVICE_SUBJECT_PREFIX) || !nonEmptyString(jti) || typeof exp !== "number") throw invalid();
      const clientId = sub.slice(SERVICE_SUBJECT_PREFIX.length);
      if (clientId === "" || (scope !== undefined && typeof scope !== "string")) throw invalid();
      const scopes = (scope ?? "").split(" ").filter((s) => s !== "");
      return { kind: "service", clientId, scopes, tokenId: jti, expiresAt: new Date(exp * 1000) };
    },
  };
}

/** Maps a jose failure to a Connect error; problems reaching the key set are the server's, not the caller's. */
function classify(e: unknown): ConnectError {
  if (e instanceof errors.JWTExpired) return invalid("access token expired");
  if (e instanceof errors.JWKSTimeout || e instanceof errors.JWKSInvalid) {
    return new ConnectError("cannot load token signing keys", Code.Unavailable, undefined, undefined, e);
  }
  if (e instanceof errors.JOSEError && e.code !== "ERR_JOSE_GENERIC") return invalid();
  // Anything else comes from fetching the key set (network errors, non-200
  // answers surface as a generic JOSEError) or is a bug; never blame the token.
  return new ConnectError("cannot load token signing keys", Code.Unavailable, undefined, undefined, e);
}
