// Bearer-token authentication for every procedure not on the service's public
// allow-list. The verified principal is put on the call's context values, where
// handlers read it with getPrincipal/requirePrincipal.
//
// Two kinds of token: a user's access token (typ at+jwt, the public audience)
// and, for services that opt in, a service token (typ svc+jwt, the internal
// audience) on the procedures listed for it. The unverified `typ` header only
// picks the verifier; each verifier then enforces its own typ and audience.
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ContextValues, Interceptor } from "@connectrpc/connect";
import { decodeProtectedHeader } from "jose";
import { requiredRoleOf, roleClaimOf, satisfiesRole } from "../auth/roles.ts";
import { SERVICE_TOKEN_TYP } from "../auth/verifier.ts";
import type { ServiceTokenVerifier, TokenVerifier } from "../auth/verifier.ts";
import { bearerTokenKey, principalKey, servicePrincipalKey } from "../context.ts";
import type { Principal, ServicePrincipal } from "../context.ts";
import type { Logger } from "../log.ts";

export interface AuthOptions {
  verifier: TokenVerifier;
  /** Procedures callable without a token, as "package.Service/Method" (e.g. "aviary.auth.v1.AuthService/Login"). */
  publicProcedures?: Iterable<string>;
  /**
   * Whether the session behind a token was ended (logout, revocation, password
   * change). Access tokens outlive revocation otherwise. Errors here fail closed
   * (Unavailable), never open.
   */
  isSessionRevoked?: (sessionId: string) => Promise<boolean>;
  /**
   * Accept service tokens (client credentials) too. Without this a service
   * token is Unauthenticated everywhere. With it, a valid service token on a
   * procedure not in `procedures` is PermissionDenied: the caller is known,
   * the procedure is not for services. Service tokens have no session, so
   * isSessionRevoked does not apply to them.
   */
  serviceTokens?: {
    verifier: ServiceTokenVerifier;
    /** Procedures that take service tokens, as "package.Service/Method". */
    procedures: Iterable<string>;
  };
}

type Authenticated = { kind: "user"; principal: Principal; token: string } | { kind: "service"; principal: ServicePrincipal };

// RFC 6750 b64token after the scheme; the scheme is case-insensitive.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

function unauthenticated(message: string, error = "invalid_token"): ConnectError {
  // The WWW-Authenticate challenge tells HTTP-level clients (and the edge) what to do.
  return new ConnectError(message, Code.Unauthenticated, { "www-authenticate": `Bearer error="${error}"` });
}

/** The `typ` header as jose compares it (case-insensitive, "application/" optional), or "" when unreadable. */
function typOf(token: string): string {
  try {
    const typ = decodeProtectedHeader(token).typ;
    return typeof typ === "string" ? typ.toLowerCase().replace(/^application\//, "") : "";
  } catch {
    return "";
  }
}

/**
 * Authenticates one call: verifies its Authorization header (null when
 * absent) for `method` and puts the principal (and, for users, the bearer
 * token) on `values`. A method declaring a required role
 * (aviary.auth.v1.required_role) is PermissionDenied to users whose token
 * lacks it, and to service tokens. Shared by the interceptor and the
 * server's direct streaming path, so both apply the same rules.
 */
export type CallAuthenticator = (method: DescMethod, authorization: string | null, values: ContextValues) => Promise<void>;

export function createCallAuthenticator(options: AuthOptions, logger?: Logger): CallAuthenticator {
  const publicProcedures = new Set(options.publicProcedures ?? []);
  const serviceProcedures = new Set(options.serviceTokens?.procedures ?? []);

  const authenticateService = async (token: string): Promise<Authenticated> => {
    if (options.serviceTokens === undefined) throw unauthenticated("service tokens are not accepted by this service");
    try {
      return { kind: "service", principal: await options.serviceTokens.verifier.verify(token) };
    } catch (e) {
      const err = ConnectError.from(e);
      throw err.code === Code.Unauthenticated ? unauthenticated(err.rawMessage) : err;
    }
  };

  const authenticate = async (authorization: string): Promise<Authenticated> => {
    const match = BEARER.exec(authorization);
    if (match === null) throw unauthenticated("authorization must be a Bearer access token", "invalid_request");
    const token = match[1] ?? "";
    if (typOf(token) === SERVICE_TOKEN_TYP) return authenticateService(token);
    let principal: Principal;
    try {
      principal = await options.verifier.verify(token);
    } catch (e) {
      const err = ConnectError.from(e);
      throw err.code === Code.Unauthenticated ? unauthenticated(err.rawMessage) : err;
    }
    if (options.isSessionRevoked !== undefined) {
      let revoked: boolean;
      try {
        revoked = await options.isSessionRevoked(principal.sessionId);
      } catch (e) {
        logger?.error({ err: e }, "session revocation check failed");
        throw new ConnectError("cannot check the session right now", Code.Unavailable);
      }
      if (revoked) throw unauthenticated("session has ended; sign in again");
    }
    return { kind: "user", principal, token };
  };

  // What a method's rules are does not change between calls: worked out once per method.
  const rulesByMethod = new WeakMap<DescMethod, { procedure: string; requiredRole: ReturnType<typeof requiredRoleOf>; isPublic: boolean }>();
  const rulesOf = (method: DescMethod) => {
    let rules = rulesByMethod.get(method);
    if (rules === undefined) {
      const procedure = `${method.parent.typeName}/${method.name}`;
      const requiredRole = requiredRoleOf(method);
      rules = { procedure, requiredRole, isPublic: requiredRole === undefined && publicProcedures.has(procedure) };
      rulesByMethod.set(method, rules);
    }
    return rules;
  };

  return async (method, authorization, values) => {
    const { procedure, requiredRole, isPublic } = rulesOf(method);
    if (authorization === null) {
      if (isPublic) return;
      throw unauthenticated("authentication required", "invalid_request");
    }
    try {
      const caller = await authenticate(authorization);
      if (requiredRole !== undefined && (caller.kind !== "user" || !satisfiesRole(caller.principal.roles ?? [], requiredRole))) {
        throw new ConnectError(`this procedure needs the ${roleClaimOf(requiredRole) ?? "required"} role`, Code.PermissionDenied);
      }
      if (caller.kind === "user") {
        values.set(principalKey, caller.principal);
        values.set(bearerTokenKey, caller.token);
      } else if (serviceProcedures.has(procedure)) {
        // No bearerTokenKey: a service's token is not forwarded (asCaller) by the services it calls.
        values.set(servicePrincipalKey, caller.principal);
      } else if (!isPublic) {
        throw new ConnectError("service tokens are not accepted by this procedure", Code.PermissionDenied);
      }
      // A public procedure not meant for services just ignores a service token.
    } catch (e) {
      // On public procedures a token is optional: a stale or bad one must not
      // stop, say, Login or Refresh; the handler just sees no principal.
      if (!isPublic || ConnectError.from(e).code !== Code.Unauthenticated) throw e;
    }
  };
}

export function createAuthInterceptor(options: AuthOptions, logger?: Logger): Interceptor {
  const authenticateCall = createCallAuthenticator(options, logger);
  return (next) => async (req) => {
    await authenticateCall(req.method, req.header.get("authorization"), req.contextValues);
    return next(req);
  };
}
