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

/** The verified subject of an access token. */
export interface Principal {
  /** `sub`: the user id. */
  readonly userId: string;
  /** `sid`: the session the token belongs to. */
  readonly sessionId: string;
  /** `jti`: this token's id. */
  readonly tokenId: string;
  /** `exp` as a Date. */
  readonly expiresAt: Date;
}

export const peerKey = createContextKey<Peer>({ ip: "", userAgent: "" }, { description: "aviary.peer" });
export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "aviary.principal" });
/** The verified bearer token itself, so a handler can call another service as its caller. */
export const bearerTokenKey = createContextKey<string | undefined>(undefined, { description: "aviary.bearer-token" });

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

/** The principal; throws Unauthenticated when there is none. */
export function requirePrincipal(ctx: HasContextValues): Principal {
  const principal = getPrincipal(ctx);
  if (principal === undefined) {
    throw new ConnectError("authentication required", Code.Unauthenticated);
  }
  return principal;
}

/**
 * Call options for calling another service on the caller's behalf: the
 * caller's own verified access token (the callee checks it again and applies
 * its own rules for that user), the caller's cancellation and what is left of
 * its deadline. This is how user-initiated reads and writes cross services;
 * work with no user behind it uses a service token instead.
 */
export function asCaller(ctx: Pick<HandlerContext, "values" | "signal" | "timeoutMs">): { headers: Record<string, string>; signal: AbortSignal; timeoutMs?: number } {
  const token = ctx.values.get(bearerTokenKey);
  if (token === undefined) throw new ConnectError("authentication required", Code.Unauthenticated);
  const remaining = ctx.timeoutMs();
  return { headers: { authorization: `Bearer ${token}` }, signal: ctx.signal, ...(remaining === undefined ? {} : { timeoutMs: remaining }) };
}
