// The calling side of service identity: a service trades its client id and
// secret for a short-lived service token (aviary.auth.v1.ServiceAuthService),
// keeps it while it is fresh, and sends it on its own calls to other services.
//
// Freshness: a token is refreshed once 80% of its life has passed, so a slow
// or briefly unavailable auth service costs nothing while the old token is
// still valid (a failed early refresh falls back to it). Concurrent callers
// share one fetch. A token's life is read from its own `exp - iat` (both on
// the issuer's clock) and counted on this process's clock from the moment it
// was requested, so clock skew between the two machines does not shorten or
// stretch it.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Client, Interceptor } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { decodeJwt } from "jose";
import { ServiceAuthService } from "@aviary/gen/aviary/auth/v1/service_auth_pb";
import { createServiceClient } from "../interceptors/client.ts";

export interface ServiceTokenSource {
  /** A valid service token, fetched or refreshed when needed. */
  token(): Promise<string>;
  /** Drops `token` from the cache if it is the cached one (the callee refused it), so the next token() fetches anew. */
  invalidate(token: string): void;
}

export interface ServiceTokenSourceOptions {
  /** Base URL of the auth service (e.g. "http://auth:8081"). */
  authUrl: string;
  clientId: string;
  clientSecret: string;
  /** Share of a token's life after which it is refreshed (default 0.8). */
  refreshAfter?: number;
  /** Deadline of a token request (default 5 s). */
  timeoutMs?: number;
  /** Clock in ms since the epoch (tests pass a fake one). */
  now?: () => number;
  /** The ServiceAuthService client (default: one over gRPC to `authUrl`). */
  client?: Pick<Client<typeof ServiceAuthService>, "issueServiceToken">;
}

interface Cached {
  token: string;
  refreshAt: number;
  expiresAt: number;
}

// A token this close to its expiry is not handed out: the call it is for
// would likely arrive after it expired.
const EXPIRY_MARGIN_MS = 2_000;

/** `exp - iat` in ms, from the token's own (unverified: it came straight from the issuer) claims. */
function lifeOf(token: string): number | undefined {
  try {
    const { iat, exp } = decodeJwt(token);
    return typeof iat === "number" && typeof exp === "number" ? (exp - iat) * 1000 : undefined;
  } catch {
    return undefined;
  }
}

export function createServiceTokenSource(options: ServiceTokenSourceOptions): ServiceTokenSource {
  const now = options.now ?? Date.now;
  const refreshAfter = options.refreshAfter ?? 0.8;
  if (!(refreshAfter > 0 && refreshAfter <= 1)) throw new Error("service token source: refreshAfter must be in (0, 1]");
  const client = options.client ?? createServiceClient(ServiceAuthService, options.authUrl);
  const timeoutMs = options.timeoutMs ?? 5_000;
  let cached: Cached | undefined;
  let inflight: Promise<Cached> | undefined;

  const fetchToken = async (): Promise<Cached> => {
    const requestedAt = now();
    const res = await client.issueServiceToken({ clientId: options.clientId, clientSecret: options.clientSecret }, { timeoutMs });
    if (res.accessToken === "") throw new ConnectError("auth service returned no service token", Code.Internal);
    const life = lifeOf(res.accessToken) ?? (res.expiresAt === undefined ? 0 : timestampDate(res.expiresAt).getTime() - now());
    return { token: res.accessToken, refreshAt: requestedAt + life * refreshAfter, expiresAt: requestedAt + Math.max(0, life) };
  };

  const refresh = (): Promise<Cached> => {
    inflight ??= fetchToken()
      .then((fresh) => {
        cached = fresh;
        return fresh;
      })
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  };

  return {
    async token() {
      const at = now();
      const current = cached;
      if (current !== undefined && at < current.refreshAt) return current.token;
      if (current !== undefined && at < current.expiresAt - EXPIRY_MARGIN_MS) {
        try {
          return (await refresh()).token;
        } catch {
          // Early refresh failed; the current token is still good for a while.
          return current.token;
        }
      }
      return (await refresh()).token;
    },
    invalidate(token) {
      if (cached?.token === token) cached = undefined;
    },
  };
}

/**
 * Sends the source's service token on every call, for createServiceClient(…,
 * { interceptors: [serviceTokenInterceptor(source)] }). When the callee answers
 * Unauthenticated (its key set moved on, or the token expired in flight), the
 * token is dropped and a unary call is retried once with a fresh one; a
 * second refusal is the caller's to see.
 */
export function serviceTokenInterceptor(source: ServiceTokenSource): Interceptor {
  return (next) => async (req) => {
    const token = await source.token();
    req.header.set("authorization", `Bearer ${token}`);
    try {
      return await next(req);
    } catch (e) {
      // A streamed request body cannot be sent twice.
      if (req.stream || req.signal.aborted || ConnectError.from(e).code !== Code.Unauthenticated) throw e;
      source.invalidate(token);
      req.header.set("authorization", `Bearer ${await source.token()}`);
      return await next(req);
    }
  };
}
