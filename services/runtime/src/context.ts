// Typed per-call values that the server and interceptors put on a call's
// ContextValues, for handlers to read. Keys are module singletons so every
// service reads the same slot.
import { Code, ConnectError, createContextKey } from "@connectrpc/connect";
import type { ContextValues, HandlerContext } from "@connectrpc/connect";

/** Who is calling, as far as the transport can tell. */
export interface Peer {
  /** Client IP: the socket address, or a forwarded hop when a trusted proxy is configured. */
  readonly ip: string;
  /** The user-agent header (truncated), or "" when absent. */
  readonly userAgent: string;
}

/** The verified subject of a user's access token. */
export interface Principal {
  /**
   * Absent on principals built before service tokens existed; never "service".
   * Lets `Principal | ServicePrincipal` narrow on `kind`.
   */
  readonly kind?: "user";
  /** `sub`: the user id. */
  readonly userId: string;
  /** `sid`: the session the token belongs to. */
  readonly sessionId: string;
  /** `jti`: this token's id. */
  readonly tokenId: string;
  /** `exp` as a Date. */
  readonly expiresAt: Date;
  /** The `roles` claim ("moderator", "admin"); absent or empty for an ordinary user. */
  readonly roles?: readonly string[];
}

/**
 * The verified subject of a service token (client credentials, `typ`
 * svc+jwt, the internal audience): another service acting on its own behalf,
 * with no user behind the call.
 */
export interface ServicePrincipal {
  readonly kind: "service";
  /** `sub` without its "service:" prefix, e.g. "notification". */
  readonly clientId: string;
  /** The `scope` claim, split on spaces. */
  readonly scopes: readonly string[];
  /** `jti`: this token's id. */
  readonly tokenId: string;
  /** `exp` as a Date. */
  readonly expiresAt: Date;
}

/** Either kind of caller; narrow on `kind === "service"`. */
export type CallerPrincipal = Principal | ServicePrincipal;

export const peerKey = createContextKey<Peer>({ ip: "", userAgent: "" }, { description: "aviary.peer" });
/**
 * The AbortController that ends a call's `signal`, when the transport lends
 * it (the grpc-js listener): the deadline interceptor aborts it at the
 * deadline instead of making a second controller that follows the first.
 * Only valid while `signal` is that controller's signal.
 */
export const callControllerKey = createContextKey<AbortController | undefined>(undefined, { description: "aviary.call-controller" });
export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "aviary.principal" });
/**
 * A verified service principal. Kept apart from principalKey on purpose: code
 * that reads principalKey (getPrincipal, requirePrincipal) means "a user", and
 * a service token must never pass for one.
 */
export const servicePrincipalKey = createContextKey<ServicePrincipal | undefined>(undefined, { description: "aviary.service-principal" });
/** The verified bearer token itself, so a handler can call another service as its caller. */
export const bearerTokenKey = createContextKey<string | undefined>(undefined, { description: "aviary.bearer-token" });

/** The parts of a call's context that handlers and the helpers here read (a connect HandlerContext has them; so does a direct stream's). */
export type CallContext = Pick<HandlerContext, "values" | "signal" | "timeoutMs">;

/** Anything that carries context values: a HandlerContext or an interceptor request's ContextValues. */
export type HasContextValues = Pick<HandlerContext, "values"> | ContextValues;

function valuesOf(ctx: HasContextValues): ContextValues {
  return "values" in ctx ? ctx.values : ctx;
}

export function getPeer(ctx: HasContextValues): Peer {
  return valuesOf(ctx).get(peerKey);
}

/** The principal, or undefined on a public procedure called without a (valid) token. */
export function getPrincipal(ctx: HasContextValues): Principal | undefined {
  return valuesOf(ctx).get(principalKey);
}

/** The user principal; throws Unauthenticated when there is none (a service token does not count). */
export function requirePrincipal(ctx: HasContextValues): Principal {
  const principal = getPrincipal(ctx);
  if (principal === undefined) {
    throw new ConnectError("authentication required", Code.Unauthenticated);
  }
  return principal;
}

/** Whoever is calling, user or service, or undefined when nobody authenticated. */
export function getCaller(ctx: HasContextValues): CallerPrincipal | undefined {
  const values = valuesOf(ctx);
  return values.get(principalKey) ?? values.get(servicePrincipalKey);
}

/**
 * The service principal, if it holds `scope`. No token at all is
 * Unauthenticated; a user's token, or a service token without the scope, is
 * PermissionDenied (the caller is known, it just may not do this).
 */
export function requireServiceScope(ctx: HasContextValues, scope: string): ServicePrincipal {
  const caller = getCaller(ctx);
  if (caller === undefined) throw new ConnectError("authentication required", Code.Unauthenticated);
  if (caller.kind !== "service") throw new ConnectError("this procedure is for services only", Code.PermissionDenied);
  if (!caller.scopes.includes(scope)) throw new ConnectError(`the service token lacks the scope "${scope}"`, Code.PermissionDenied);
  return caller;
}

/**
 * Call options for calling another service on the caller's behalf: the
 * caller's own verified access token (the callee checks it again and applies
 * its own rules for that user), the caller's cancellation and what is left of
 * its deadline. This is how user-initiated reads and writes cross services;
 * work with no user behind it uses a service token instead. A call made with
 * a service token has nothing to forward (Unauthenticated): a service's token
 * is not passed on by the services it calls.
 */
export function asCaller(ctx: CallContext): { headers: Record<string, string>; signal: AbortSignal; timeoutMs?: number } {
  const token = ctx.values.get(bearerTokenKey);
  if (token === undefined) throw new ConnectError("authentication required", Code.Unauthenticated);
  const remaining = ctx.timeoutMs();
  return { headers: { authorization: `Bearer ${token}` }, signal: ctx.signal, ...(remaining === undefined ? {} : { timeoutMs: remaining }) };
}
