// The edge's routing table: which proto services clients reach through Envoy,
// and the per-method policy the protos cannot express. The REST paths and the
// method list come from the descriptor set (tools/edge/descriptors.ts); a
// method named here that the protos lack fails generation, so this table
// cannot drift from the contracts either.
import { publicAuthMethods } from "../../services/auth/src/public-methods.ts";

export interface EdgeServiceRoute {
  /** Fully qualified proto service name. */
  service: string;
  /** Envoy cluster (one per service; every instance of the service behind it). */
  cluster: string;
  /** Where the service listens in docker-compose / k8s (service DNS name). The dev/test render overrides it. */
  upstream: { host: string; port: number };
  /** Methods callable without an access token. Everything else requires a valid JWT at the edge. */
  publicMethods: string[];
  /** Reads with no side effects: the only methods the edge retries. */
  idempotentMethods: string[];
  /** Unary per-route timeout; streaming methods get none (they live as long as the client wants). */
  timeout: string;
  /** Exceptions to `timeout`, by method. */
  methodTimeouts?: Record<string, string>;
  /**
   * The rate-limit route_class of this service's public methods, limited per
   * client address (services/ratelimit needs a rule for it, or they go
   * unlimited). Protected methods are `read` (idempotentMethods) or `write`,
   * limited per user (JWT `sub`) across all services.
   */
  publicRateLimitClass: string;
  /**
   * The route_class of this service's streaming methods (opening a stream),
   * limited per user AND per client address: each stream route sends two
   * descriptors, (route_class, user_id) and (route_class, remote_address).
   * Absent: streams count as `read` or `write` like unary methods.
   */
  streamRateLimitClass?: string;
}

/**
 * The services' internal grpc-js listeners in compose and k8s
 * (<SERVICE>_INTERNAL_PORT, the main port + 1000), by cluster: the edge sends
 * gRPC, gRPC-web (as gRPC) and transcoded REST there, where a call costs
 * the service about half what it costs on the connect-node port
 * (docs/decisions.md, "The edge on the internal listeners"). Connect stays
 * on the main port. A cluster absent here has no internal listener.
 */
export const internalPorts: Readonly<Record<string, number>> = {
  auth: 9081,
  user: 9082,
  media: 9083,
  post: 9084,
  feed: 9085,
  notification: 9088,
  chat: 9089,
  moderation: 9091,
};

/** The same, as the settings the services read (`AUTH_INTERNAL_PORT: "9081"`, …): what `make dev` starts them with. */
export const internalPortSettings: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(internalPorts).map(([cluster, port]) => [`${cluster.toUpperCase()}_INTERNAL_PORT`, String(port)]),
);

/** The route_class values of protected routes, shared by every service: read and write per user; stream_open per user and per address. */
export const rateLimitClasses = { read: "read", write: "write", streamOpen: "stream_open" } as const;

export const authRoute: EdgeServiceRoute = {
  service: "aviary.auth.v1.AuthService",
  cluster: "auth",
  upstream: { host: "auth", port: 8081 },
  publicMethods: [...publicAuthMethods],
  idempotentMethods: ["GetMe", "ListSessions", "GetJwks", "GetOpenIdConfiguration", "GetAccountDeletion"],
  timeout: "5s",
  // argon2id hashing (and the decoy verification on unknown identities) is the slow part.
  methodTimeouts: { Register: "10s", Login: "10s", ResetPassword: "10s", ChangePassword: "10s", StartTotpEnrollment: "10s", DisableTwoFactor: "10s", DeleteAccount: "10s" },
  publicRateLimitClass: "auth_public",
};

export const userRoute: EdgeServiceRoute = {
  service: "aviary.user.v1.UserService",
  cluster: "user",
  upstream: { host: "user", port: 8082 },
  // All protected: what a profile shows depends on the viewer (blocks, the private region).
  publicMethods: [],
  // CheckFollows is a POST (a batch body) without side effects, so it may be retried.
  idempotentMethods: ["GetProfile", "GetProfileByUsername", "BatchGetProfiles", "SearchUsers", "ListFollowers", "ListFollowing", "CheckFollows", "ListDevices"],
  timeout: "5s",
  publicRateLimitClass: "auth_public",
};

export const mediaRoute: EdgeServiceRoute = {
  service: "aviary.media.v1.MediaService",
  cluster: "media",
  upstream: { host: "media", port: 8083 },
  publicMethods: [],
  idempotentMethods: ["GetMedia", "BatchGetMedia"],
  // ConfirmUpload reads the object's head from S3 to sniff its type.
  timeout: "10s",
  publicRateLimitClass: "auth_public",
};

export const postRoute: EdgeServiceRoute = {
  service: "aviary.post.v1.PostService",
  cluster: "post",
  upstream: { host: "post", port: 8084 },
  // All protected: visibility depends on the viewer (blocks), and liked_by_viewer is per caller.
  publicMethods: [],
  idempotentMethods: ["GetPost", "BatchGetPosts", "ListPostsByAuthor", "ListComments"],
  timeout: "5s",
  publicRateLimitClass: "auth_public",
};

export const feedRoute: EdgeServiceRoute = {
  service: "aviary.feed.v1.FeedService",
  cluster: "feed",
  upstream: { host: "feed", port: 8085 },
  publicMethods: [],
  idempotentMethods: ["GetHomeFeed"],
  // A missing timeline is rebuilt from PostgreSQL before the first page is answered.
  timeout: "10s",
  publicRateLimitClass: "auth_public",
};

export const bffRoute: EdgeServiceRoute = {
  service: "aviary.bff.v1.BffService",
  cluster: "bff",
  upstream: { host: "bff", port: 8086 },
  publicMethods: [],
  idempotentMethods: ["GetHome"],
  // Fans out to user and feed (which may rebuild a timeline) with its own per-section budget.
  timeout: "10s",
  publicRateLimitClass: "auth_public",
};

export const realtimeRoute: EdgeServiceRoute = {
  service: "aviary.realtime.v1.RealtimeService",
  cluster: "realtime",
  upstream: { host: "realtime", port: 8087 },
  publicMethods: [],
  idempotentMethods: ["GetPresence"],
  // SetPresence and GetPresence; Subscribe is a stream (no timeout, EDGE_MAX_STREAM_SECONDS).
  timeout: "5s",
  publicRateLimitClass: "auth_public",
  // Opening the device stream is limited per user and per client address.
  streamRateLimitClass: rateLimitClasses.streamOpen,
};

export const notificationRoute: EdgeServiceRoute = {
  service: "aviary.notification.v1.NotificationService",
  cluster: "notification",
  upstream: { host: "notification", port: 8088 },
  // All protected: every RPC is about the caller's own notifications.
  publicMethods: [],
  // MarkSeen only moves a watermark forward (repeating it changes nothing), but it is a write: not retried, counted as `write`.
  idempotentMethods: ["ListNotifications", "GetUnreadCount", "GetPreferences"],
  // ListNotifications hydrates sample actors with one BatchGetProfiles call to the user service.
  timeout: "5s",
  publicRateLimitClass: "auth_public",
};

export const chatRoute: EdgeServiceRoute = {
  service: "aviary.chat.v1.ChatService",
  cluster: "chat",
  upstream: { host: "chat", port: 8089 },
  // All protected: a conversation exists only for its members.
  publicMethods: [],
  // SendMessage is idempotent by (sender, client_message_id), but it is a write: not retried at the edge (the
  // client retries it with the same client_message_id), counted as `write` like MarkRead and SetTyping.
  idempotentMethods: ["GetConversation", "ListConversations", "ListMessages", "GetUnreadCount"],
  // SendMessage checks the direct peer (blocks) with the user service, and attachments (CreateGroup and
  // UpdateConversation an avatar) with the media service, inside its budget.
  timeout: "5s",
  publicRateLimitClass: "auth_public",
};

export const roleRoute: EdgeServiceRoute = {
  service: "aviary.auth.v1.RoleService",
  cluster: "auth",
  upstream: { host: "auth", port: 8081 },
  // Admins only (required_role in the proto; refused at the edge and in the service).
  publicMethods: [],
  idempotentMethods: ["ListUserRoles"],
  timeout: "5s",
  publicRateLimitClass: "auth_public",
};

export const dataExportRoute: EdgeServiceRoute = {
  service: "aviary.auth.v1.DataExportService",
  cluster: "auth",
  upstream: { host: "auth", port: 8081 },
  // The owner's own exports only.
  publicMethods: [],
  idempotentMethods: ["GetDataExport", "ListDataExports"],
  // A request writes a row and an outbox event; the build itself runs in the exporter role.
  timeout: "5s",
  publicRateLimitClass: "auth_public",
};

export const moderationRoute: EdgeServiceRoute = {
  service: "aviary.moderation.v1.ModerationService",
  cluster: "moderation",
  upstream: { host: "moderation", port: 8091 },
  // CreateReport: any signed-in user; the rest need the moderator role (required_role in the proto).
  publicMethods: [],
  idempotentMethods: ["ListReports", "GetSuspension"],
  timeout: "5s",
  publicRateLimitClass: "auth_public",
};

export const auditRoute: EdgeServiceRoute = {
  service: "aviary.audit.v1.AuditService",
  cluster: "audit",
  upstream: { host: "audit", port: 8092 },
  // Admins only (required_role in the proto). VerifyChain is a POST but reads only: safe to retry.
  publicMethods: [],
  idempotentMethods: ["ListAuditEntries", "VerifyChain"],
  // VerifyChain checks up to 10,000 entries per call.
  timeout: "15s",
  publicRateLimitClass: "auth_public",
};

export const edgeRoutes: EdgeServiceRoute[] = [
  authRoute,
  roleRoute,
  dataExportRoute,
  userRoute,
  mediaRoute,
  postRoute,
  feedRoute,
  bffRoute,
  realtimeRoute,
  notificationRoute,
  chatRoute,
  moderationRoute,
  auditRoute,
];

/**
 * The longest a stream lives at the edge (every streaming route's
 * max_stream_duration, and the cap on a client's grpc-timeout there): Envoy
 * ends a stream at this age. The realtime service rotates its streams on
 * purpose before it (its REALTIME_MAX_STREAM_AGE default stays below this),
 * so a client sees a `rotate` frame and resumes, never a cut.
 */
export const EDGE_MAX_STREAM_SECONDS = 3600;

/**
 * The edge closes a stream that sent nothing for this long (the HCM's
 * stream_idle_timeout). Every long-lived stream must send something more
 * often: the realtime service's heartbeat (default 25 s) stays below it.
 */
export const EDGE_STREAM_IDLE_SECONDS = 300;

/**
 * grpc.health.v1.Health has no REST rules, so the transcoder ignores it, but
 * clients (and the gRPC-web test) may Watch a service's health through the edge
 * with a valid token. Served by the auth service's runtime for now.
 */
export const healthRoute = { service: "grpc.health.v1.Health", cluster: "auth" } as const;

/** The token issuer: its JWKS is fetched from this cluster's upstream. */
export const jwtProvider = {
  issuer: "aviary-auth",
  audiences: ["aviary"],
  jwksCluster: "auth",
  jwksPath: "/.well-known/jwks.json",
} as const;

/** Origins browsers may call the edge from (dev servers); deployments pass their own list. */
export const defaultCorsOrigins = ["http://localhost:5173", "http://127.0.0.1:5173", "http://localhost:3000"];
