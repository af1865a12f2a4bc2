// The one transport: gRPC-web to the edge's origin (the page is served by the
// edge, so no CORS), with the bearer token on every call and one refresh on
// UNAUTHENTICATED. Clients for every service the app calls.
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import type { DescService } from "@bufbuild/protobuf";
import { AuthService, type TokenPair } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import { MediaService } from "@aviary/gen/aviary/media/v1/media_pb";
import { PostService } from "@aviary/gen/aviary/post/v1/post_pb";
import { FeedService } from "@aviary/gen/aviary/feed/v1/feed_pb";
import { NotificationService } from "@aviary/gen/aviary/notification/v1/notification_pb";
import { ChatService } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { RealtimeService } from "@aviary/gen/aviary/realtime/v1/realtime_pb";

export interface StoredSession {
  userId: string;
  accessToken: string;
  refreshToken: string;
  /** When the access token expires (epoch ms): it is refreshed a little before. */
  expiresAt: number;
}

const STORAGE_KEY = "aviary.session";

/**
 * The signed-in session, kept in sessionStorage: it survives a reload but not
 * the tab, and is never shared between tabs, so two tabs never spend the same
 * refresh token (a spent one revokes the whole family).
 */
export const session = {
  current(): StoredSession | undefined {
    const text = sessionStorage.getItem(STORAGE_KEY);
    return text ? (JSON.parse(text) as StoredSession) : undefined;
  },
  save(userId: string, tokens: TokenPair): void {
    const expiresAt = Date.now() + tokens.expiresInSeconds * 1000;
    const value: StoredSession = { userId, accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, expiresAt };
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(value));
    scheduleRefresh(value);
  },
  clear(): void {
    clearTimeout(refreshTimer);
    sessionStorage.removeItem(STORAGE_KEY);
    for (const listener of signedOutListeners) listener();
  },
};

const signedOutListeners = new Set<() => void>();
/** Called when the session ends for good (refresh refused): the app shows the sign-in screen. */
export function onSignedOut(listener: () => void): void {
  signedOutListeners.add(listener);
}

let refreshing: Promise<void> | undefined;
let refreshTimer: ReturnType<typeof setTimeout> | undefined;

/**
 * Refreshes ahead of expiry (at 80% of the token's life, at most a minute
 * early), so calls rarely meet an expired token; the interceptor's refresh on
 * UNAUTHENTICATED stays for the rest (a sleeping laptop, a revoked token).
 */
function scheduleRefresh(current: StoredSession): void {
  clearTimeout(refreshTimer);
  const left = current.expiresAt - Date.now();
  const early = Math.min(60_000, left * 0.2);
  refreshTimer = setTimeout(() => void refreshSession().catch(() => undefined), Math.max(0, left - early));
}

/**
 * Trades the refresh token for a new pair. Concurrent callers (several calls
 * failing at once, the realtime stream) share one in-flight refresh: a
 * rotated refresh token is spent, and presenting it twice would look like
 * reuse. A refusal (spent, expired, revoked) ends the session.
 */
export function refreshSession(): Promise<void> {
  refreshing ??= (async () => {
    const current = session.current();
    if (!current) throw new ConnectError("signed out", Code.Unauthenticated);
    try {
      const { tokens } = await refreshClient.refresh({ refreshToken: current.refreshToken });
      if (!tokens) throw new ConnectError("no tokens in the refresh answer", Code.Internal);
      session.save(current.userId, tokens);
    } catch (failure) {
      const code = ConnectError.from(failure).code;
      if (code === Code.Unauthenticated || code === Code.InvalidArgument || code === Code.NotFound) session.clear();
      throw failure;
    }
  })().finally(() => {
    refreshing = undefined;
  });
  return refreshing;
}

const bearer: Interceptor = (next) => async (request) => {
  const current = session.current();
  // Public calls (register, login, refresh) go without a token.
  if (!current) return next(request);
  request.header.set("authorization", `Bearer ${current.accessToken}`);
  try {
    return await next(request);
  } catch (failure) {
    // Streams are retried by their owner (realtime.ts), which resumes where it left off.
    if (request.stream || ConnectError.from(failure).code !== Code.Unauthenticated) throw failure;
    // Another call may have refreshed while this one was in flight.
    if (session.current()?.accessToken === current.accessToken) await refreshSession();
    request.header.set("authorization", `Bearer ${session.current()?.accessToken ?? ""}`);
    return next(request);
  }
};

const transport = createGrpcWebTransport({ baseUrl: location.origin, interceptors: [bearer] });

// A reloaded page picks up its session's schedule.
const restored = session.current();
if (restored) scheduleRefresh(restored);

const client = <T extends DescService>(service: T): Client<T> => createClient(service, transport);

// Refresh goes out without the interceptor's retry: its own UNAUTHENTICATED means the session is over.
const refreshClient = createClient(AuthService, createGrpcWebTransport({ baseUrl: location.origin }));

export const api = {
  auth: client(AuthService),
  user: client(UserService),
  media: client(MediaService),
  post: client(PostService),
  feed: client(FeedService),
  notification: client(NotificationService),
  chat: client(ChatService),
  realtime: client(RealtimeService),
};
