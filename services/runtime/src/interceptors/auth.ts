// Bearer-token authentication for every procedure not on the service's public
// allow-list. The verified principal is put on the call's context values, where
// handlers read it with getPrincipal/requirePrincipal.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Interceptor } from "@connectrpc/connect";
import type { TokenVerifier } from "../auth/verifier.ts";
import { bearerTokenKey, principalKey } from "../context.ts";
import type { Principal } from "../context.ts";
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
}

// RFC 6750 b64token after the scheme; the scheme is case-insensitive.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

function unauthenticated(message: string, error = "invalid_token"): ConnectError {
  // The WWW-Authenticate challenge tells HTTP-level clients (and the edge) what to do.
  return new ConnectError(message, Code.Unauthenticated, { "www-authenticate": `Bearer error="${error}"` });
}

export function createAuthInterceptor(options: AuthOptions, logger?: Logger): Interceptor {
  const publicProcedures = new Set(options.publicProcedures ?? []);

  const authenticate = async (authorization: string): Promise<{ principal: Principal; token: string }> => {
    const match = BEARER.exec(authorization);
    if (match === null) throw unauthenticated("authorization must be a Bearer access token", "invalid_request");
    const token = match[1] ?? "";
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
    return { principal, token };
  };

  return (next) => async (req) => {
    const isPublic = publicProcedures.has(`${req.service.typeName}/${req.method.name}`);
    const authorization = req.header.get("authorization");
    if (authorization === null) {
      if (isPublic) return next(req);
      throw unauthenticated("authentication required", "invalid_request");
    }
    try {
      const { principal, token } = await authenticate(authorization);
      req.contextValues.set(principalKey, principal);
      req.contextValues.set(bearerTokenKey, token);
    } catch (e) {
      // On public procedures a token is optional: a stale or bad one must not
      // stop, say, Login or Refresh; the handler just sees no principal.
      if (!isPublic || ConnectError.from(e).code !== Code.Unauthenticated) throw e;
    }
    return next(req);
  };
}
