// The authorization matrix's case table: one or more cases per RPC in
// gen/aviary.binpb (tools/test/authz-matrix.test.ts fails when an RPC has no
// case, or a case names an RPC the descriptors no longer have). Each case is a
// valid request aimed at ANOTHER user's resource — Ana's, from the fixtures the
// test sets up — and what each caller must get back:
//
// - anonymous (no token): UNAUTHENTICATED, unless the RPC is public;
// - intruder (Ben, no relation to Ana);
// - blocked (Cy, whom Ana blocked);
// - for internal RPCs, a user's token instead of a service's: PERMISSION_DENIED;
//   and a service token without the RPC's scope: PERMISSION_DENIED.
//
// Expectations: a Connect code; "hidden" — exactly the answer the same caller
// gets for a resource that does not exist (`missing`), so the refusal reveals
// nothing; or "allowed" — the caller may do this (e.g. read a public profile),
// and the call succeeds.
//
// Adding a case for a new RPC is a few lines: pick the kind, write the request
// from the fixtures, say what the intruder and the blocked user get.
import { Code } from "@connectrpc/connect";
import type { DescMessage, DescMethod, DescMethodStreaming, DescMethodUnary, MessageInitShape } from "@bufbuild/protobuf";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { ServiceAuthService } from "@aviary/gen/aviary/auth/v1/service_auth_pb";
import { DataExportService } from "@aviary/gen/aviary/auth/v1/data_export_pb";
import { RoleService } from "@aviary/gen/aviary/auth/v1/roles_pb";
import { Role } from "@aviary/gen/aviary/auth/v1/options_pb";
import { ModerationService, ReportReason, ResolutionAction } from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import { MediaInternalService } from "@aviary/gen/aviary/media/v1/media_internal_pb";
import { PostInternalService } from "@aviary/gen/aviary/post/v1/post_internal_pb";
import { AuditService } from "@aviary/gen/aviary/audit/v1/audit_pb";
import { MediaService, MediaPurpose } from "@aviary/gen/aviary/media/v1/media_pb";
import { PostService } from "@aviary/gen/aviary/post/v1/post_pb";
import { UserService, Platform } from "@aviary/gen/aviary/user/v1/user_pb";
import { UserInternalService } from "@aviary/gen/aviary/user/v1/user_internal_pb";
import { FeedService } from "@aviary/gen/aviary/feed/v1/feed_pb";
import { BffService } from "@aviary/gen/aviary/bff/v1/bff_pb";
import { ChatService, MemberRole } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { ChatInternalService } from "@aviary/gen/aviary/chat/v1/chat_internal_pb";
import { NotificationInternalService } from "@aviary/gen/aviary/notification/v1/notification_internal_pb";
import { ModerationInternalService } from "@aviary/gen/aviary/moderation/v1/moderation_internal_pb";
import { NotificationService } from "@aviary/gen/aviary/notification/v1/notification_pb";
import { RealtimeService, SetPresenceRequest_Hint } from "@aviary/gen/aviary/realtime/v1/realtime_pb";

/** One signed-in account of the fixtures. */
export interface FixtureAccount {
  userId: string;
  /** The sign-in email (an identity the auth service knows). */
  email: string;
  token: string;
  sessionId: string;
}

/** What the test sets up before the matrix runs. Ana owns everything; Dan is the other member of her conversations. */
export interface Fixtures {
  ana: FixtureAccount & {
    username: string;
    postId: string;
    /** A word only Ana's post has (what SearchPosts is asked for). */
    postWord: string;
    commentId: string;
    /** An upload Ana started and never confirmed (only she may see or confirm it). */
    pendingMediaId: string;
    deviceId: string;
    /** A group of Ana (owner) and Dan. */
    groupId: string;
    /** Ana's direct conversation with Dan. */
    directId: string;
    /** The seq of Ana's message in the group. */
    messageSeq: bigint;
    /** A data export Ana requested. */
    exportId: string;
  };
  ben: FixtureAccount;
  cy: FixtureAccount;
  dan: FixtureAccount;
  /** An id nothing has (the "missing" resource), and an email no account has. */
  missingId: string;
  missingEmail: string;
  /** Ana's content: none of it may appear in a refusal. */
  secrets: string[];
}

export type Expectation = "allowed" | "hidden" | Code;

/**
 * - public: callable without a token (the anonymous caller gets `anonymous`);
 * - self: acts only on the caller's own data, and no field can name another
 *   user's: only the anonymous caller is checked;
 * - owned: the request names Ana's resource, only she may touch it;
 * - member: the request names Ana's conversation, only members may touch it;
 * - viewer: the request names Ana's public content; anyone may see it but
 *   users she blocked;
 * - staff: needs a role (the aviary.auth.v1.required_role option; a plain
 *   user — Ben — gets PERMISSION_DENIED, whatever the request names);
 * - internal: service tokens only (`intruder` is the user caller: PERMISSION_DENIED;
 *   `unscoped` a service token with none of the RPC's scopes); never routed at the edge.
 */
export type CaseKind = "public" | "self" | "owned" | "member" | "viewer" | "staff" | "internal";

export interface AuthzCase {
  /** "package.Service/Method", as in the descriptors. */
  rpc: string;
  /** Tells two cases of one RPC apart. */
  variant?: string;
  kind: CaseKind;
  method: DescMethod;
  request(fx: Fixtures): MessageInitShape<DescMessage>;
  /** The same request naming a resource that does not exist; needed when an expectation is "hidden". */
  missing?(fx: Fixtures): MessageInitShape<DescMessage>;
  /** The anonymous caller (default UNAUTHENTICATED; public RPCs say what they answer). */
  anonymous: Expectation;
  /** Ben; absent for self. For internal RPCs: Ben's user token where a service token belongs. */
  intruder?: Expectation;
  /** Cy; absent for self and internal. */
  blocked?: Expectation;
  /** Internal RPCs: a valid service token whose scopes do not include the RPC's. */
  unscoped?: Expectation;
  /** Why the case is what it is, when the kind alone does not say. */
  why?: string;
}

type Spec<I extends DescMessage> = {
  variant?: string;
  request(fx: Fixtures): MessageInitShape<I>;
  missing?(fx: Fixtures): MessageInitShape<I>;
  anonymous?: Expectation;
  intruder?: Expectation;
  blocked?: Expectation;
  unscoped?: Expectation;
  why?: string;
};

function define<I extends DescMessage>(kind: CaseKind, method: DescMethodUnary<I, DescMessage> | DescMethodStreaming<I, DescMessage>, spec: Spec<I>): AuthzCase {
  const { request, missing, ...rest } = spec;
  return {
    rpc: `${method.parent.typeName}/${method.name}`,
    kind,
    method,
    request: request as AuthzCase["request"],
    ...(missing === undefined ? {} : { missing: missing as NonNullable<AuthzCase["missing"]> }),
    ...rest,
    anonymous: spec.anonymous ?? Code.Unauthenticated,
  };
}

const pub = <I extends DescMessage>(m: DescMethodUnary<I, DescMessage>, s: Spec<I> & { anonymous: Expectation }) => define("public", m, s);
const self = <I extends DescMessage>(m: DescMethodUnary<I, DescMessage> | DescMethodStreaming<I, DescMessage>, request: Spec<I>["request"], why?: string) =>
  define("self", m, { request, ...(why === undefined ? {} : { why }) });
const owned = <I extends DescMessage>(m: DescMethodUnary<I, DescMessage>, s: Spec<I>) => define("owned", m, { intruder: "hidden", blocked: "hidden", ...s });
const member = <I extends DescMessage>(m: DescMethodUnary<I, DescMessage>, s: Spec<I>) => define("member", m, { intruder: "hidden", blocked: "hidden", ...s });
const viewer = <I extends DescMessage>(m: DescMethodUnary<I, DescMessage>, s: Spec<I>) => define("viewer", m, { intruder: "allowed", blocked: "hidden", ...s });
const staff = <I extends DescMessage>(m: DescMethodUnary<I, DescMessage>, request: Spec<I>["request"]) => define("staff", m, { request, intruder: Code.PermissionDenied });
const internal = <I extends DescMessage>(m: DescMethodUnary<I, DescMessage> | DescMethodStreaming<I, DescMessage>, request: Spec<I>["request"]) => define("internal", m, { request, intruder: Code.PermissionDenied, unscoped: Code.PermissionDenied });

const A = AuthService.method;
const M = MediaService.method;
const P = PostService.method;
const U = UserService.method;
const UI = UserInternalService.method;
const C = ChatService.method;
const N = NotificationService.method;
const R = RealtimeService.method;

const email = (value: string) => ({ case: "email" as const, value });
const wrongPassword = "not-the-password-of-anyone-9";
const wrongCode = "000000";
/** A chat send with a fresh idempotency key. */
const text = (value: string) => ({ clientMessageId: crypto.randomUUID(), text: value });

export const authzCases: AuthzCase[] = [
  // --- auth: the public entry points answer an identity that exists exactly like one that does not.
  pub(A.register, { request: () => ({ identity: email("not-an-email"), password: wrongPassword }), anonymous: Code.InvalidArgument, why: "bad input reaches the handler without a token" }),
  pub(A.sendVerificationCode, { request: (fx) => ({ identity: email(fx.ana.email) }), missing: (fx) => ({ identity: email(fx.missingEmail) }), anonymous: "hidden" }),
  pub(A.verifyIdentity, { request: (fx) => ({ identity: email(fx.ana.email), code: wrongCode }), missing: (fx) => ({ identity: email(fx.missingEmail), code: wrongCode }), anonymous: "hidden" }),
  pub(A.login, { request: (fx) => ({ identity: email(fx.ana.email), password: wrongPassword }), missing: (fx) => ({ identity: email(fx.missingEmail), password: wrongPassword }), anonymous: "hidden" }),
  pub(A.verifySecondFactor, { request: () => ({ challengeToken: "not-a-challenge", factor: { case: "code" as const, value: wrongCode } }), anonymous: Code.Unauthenticated, why: "a challenge token is the only way in" }),
  pub(A.refresh, { request: () => ({ refreshToken: "not-a-refresh-token" }), anonymous: Code.Unauthenticated, why: "the refresh token is the credential" }),
  pub(A.requestPasswordReset, { request: (fx) => ({ identity: email(fx.ana.email) }), missing: (fx) => ({ identity: email(fx.missingEmail) }), anonymous: "hidden" }),
  pub(A.resetPassword, {
    request: (fx) => ({ identity: email(fx.ana.email), code: wrongCode, newPassword: "a-brand-new-password-77" }),
    missing: (fx) => ({ identity: email(fx.missingEmail), code: wrongCode, newPassword: "a-brand-new-password-77" }),
    anonymous: "hidden",
  }),
  pub(A.getJwks, { request: () => ({}), anonymous: "allowed" }),
  pub(A.getOpenIdConfiguration, { request: () => ({}), anonymous: "allowed" }),
  self(A.startTotpEnrollment, () => ({ password: wrongPassword })),
  self(A.confirmTotpEnrollment, () => ({ code: wrongCode })),
  self(A.disableTwoFactor, () => ({ proof: { case: "password" as const, value: wrongPassword } })),
  self(A.logout, () => ({})),
  self(A.getMe, () => ({})),
  self(A.listSessions, () => ({})),
  owned(A.revokeSession, { request: (fx) => ({ sessionId: fx.ana.sessionId }), missing: (fx) => ({ sessionId: fx.missingId }) }),
  self(A.changePassword, () => ({ currentPassword: wrongPassword, newPassword: "a-brand-new-password-77" })),
  self(A.deleteAccount, () => ({ proof: { case: "password" as const, value: wrongPassword } })),
  owned(A.cancelAccountDeletion, { request: (fx) => ({ userId: fx.ana.userId }), intruder: Code.PermissionDenied, blocked: Code.PermissionDenied, why: "another account's is PERMISSION_DENIED (auth.proto)" }),
  owned(A.getAccountDeletion, { request: (fx) => ({ userId: fx.ana.userId }), intruder: Code.PermissionDenied, blocked: Code.PermissionDenied, why: "another account's is PERMISSION_DENIED (auth.proto)" }),

  // --- auth: data export, the caller's own.
  self(DataExportService.method.requestDataExport, () => ({})),
  owned(DataExportService.method.getDataExport, { request: (fx) => ({ exportId: fx.ana.exportId }), missing: (fx) => ({ exportId: fx.missingId }) }),
  self(DataExportService.method.listDataExports, () => ({})),

  // --- auth: roles, admins only; a user granting themselves admin is the case that matters.
  staff(RoleService.method.grantRole, (fx) => ({ userId: fx.ben.userId, role: Role.ADMIN })),
  staff(RoleService.method.revokeRole, (fx) => ({ userId: fx.ana.userId, role: Role.MODERATOR })),
  staff(RoleService.method.listUserRoles, (fx) => ({ userId: fx.ana.userId })),

  // --- auth: service identity. Client credentials are the credential (public on the service), never routed at the edge.
  define("internal", ServiceAuthService.method.issueServiceToken, {
    // A client nobody configured: wrong secrets for a real one count towards its lockout (and would lock the mesh's notification service out).
    request: () => ({ clientId: "matrix-nobody", clientSecret: "not-the-secret-0123456789abcdef" }),
    anonymous: Code.Unauthenticated,
    intruder: Code.Unauthenticated,
    why: "public on the auth service (the secret is the credential); not routable at the edge",
  }),

  // --- media
  self(M.createUpload, () => ({ contentType: "image/png", sizeBytes: 256n, purpose: MediaPurpose.POST })),
  owned(M.confirmUpload, { request: (fx) => ({ mediaId: fx.ana.pendingMediaId }), missing: (fx) => ({ mediaId: fx.missingId }) }),
  owned(M.getMedia, { request: (fx) => ({ mediaId: fx.ana.pendingMediaId }), missing: (fx) => ({ mediaId: fx.missingId }), why: "an unconfirmed upload is its owner's only" }),
  owned(M.batchGetMedia, { request: (fx) => ({ mediaIds: [fx.ana.pendingMediaId] }), missing: (fx) => ({ mediaIds: [fx.missingId] }) }),

  // --- posts: public content, hidden from users the author blocked.
  viewer(P.createPost, { request: (fx) => ({ text: "a reply", replyToPostId: fx.ana.postId }), missing: (fx) => ({ text: "a reply", replyToPostId: fx.missingId }) }),
  viewer(P.getPost, { request: (fx) => ({ postId: fx.ana.postId }), missing: (fx) => ({ postId: fx.missingId }) }),
  viewer(P.batchGetPosts, { request: (fx) => ({ postIds: [fx.ana.postId] }), missing: (fx) => ({ postIds: [fx.missingId] }) }),
  // Ben can see the post, so PERMISSION_DENIED reveals nothing to him; to Cy (blocked) it does not exist.
  viewer(P.searchPosts, { request: (fx) => ({ query: fx.ana.postWord }), missing: () => ({ query: "nobodywrotethisword" }) }),
  owned(P.deletePost, { request: (fx) => ({ postId: fx.ana.postId }), missing: (fx) => ({ postId: fx.missingId }), intruder: Code.PermissionDenied }),
  viewer(P.listPostsByAuthor, { request: (fx) => ({ authorId: fx.ana.userId }), missing: (fx) => ({ authorId: fx.missingId }) }),
  viewer(P.createComment, { request: (fx) => ({ postId: fx.ana.postId, text: "a comment" }), missing: (fx) => ({ postId: fx.missingId, text: "a comment" }) }),
  viewer(P.listComments, { request: (fx) => ({ postId: fx.ana.postId }), missing: (fx) => ({ postId: fx.missingId }) }),
  owned(P.deleteComment, {
    request: (fx) => ({ postId: fx.ana.postId, commentId: fx.ana.commentId }),
    missing: (fx) => ({ postId: fx.ana.postId, commentId: fx.missingId }),
    intruder: Code.PermissionDenied,
  }),
  viewer(P.likePost, { request: (fx) => ({ postId: fx.ana.postId }), missing: (fx) => ({ postId: fx.missingId }) }),
  viewer(P.unlikePost, { request: (fx) => ({ postId: fx.ana.postId }), missing: (fx) => ({ postId: fx.missingId }) }),

  // --- users: profiles and the graph are public, and hidden from users the subject blocked.
  viewer(U.getProfile, { request: (fx) => ({ userId: fx.ana.userId }), missing: (fx) => ({ userId: fx.missingId }) }),
  viewer(U.getProfileByUsername, { request: (fx) => ({ username: fx.ana.username }), missing: () => ({ username: "nobody_has_this_name" }) }),
  viewer(U.batchGetProfiles, { request: (fx) => ({ userIds: [fx.ana.userId] }), missing: (fx) => ({ userIds: [fx.missingId] }) }),
  self(U.updateProfile, () => ({ displayName: "Intruder" })),
  viewer(U.searchUsers, { request: (fx) => ({ query: fx.ana.username }), missing: () => ({ query: "nobody_has_this_name" }) }),
  viewer(U.follow, { request: (fx) => ({ userId: fx.ana.userId }), missing: (fx) => ({ userId: fx.missingId }) }),
  viewer(U.unfollow, { request: (fx) => ({ userId: fx.ana.userId }), missing: (fx) => ({ userId: fx.missingId }) }),
  viewer(U.listFollowers, { request: (fx) => ({ userId: fx.ana.userId }), missing: (fx) => ({ userId: fx.missingId }) }),
  viewer(U.listFollowing, { request: (fx) => ({ userId: fx.ana.userId }), missing: (fx) => ({ userId: fx.missingId }) }),
  viewer(U.checkFollows, {
    request: (fx) => ({ pairs: [{ followerId: fx.ana.userId, followeeId: fx.dan.userId }] }),
    missing: (fx) => ({ pairs: [{ followerId: fx.missingId, followeeId: fx.dan.userId }] }),
  }),
  self(U.block, (fx) => ({ userId: fx.missingId }), "the caller's own block list: anyone may block anyone"),
  self(U.unblock, (fx) => ({ userId: fx.missingId }), "the caller's own block list"),
  self(U.registerDevice, () => ({ platform: Platform.IOS, token: "a".repeat(64) })),
  self(U.listDevices, () => ({})),
  owned(U.removeDevice, { request: (fx) => ({ deviceId: fx.ana.deviceId }), missing: (fx) => ({ deviceId: fx.missingId }) }),
  internal(UI.batchGetDevices, (fx) => ({ userIds: [fx.ana.userId] })),
  internal(UI.retireDevice, (fx) => ({ deviceId: fx.ana.deviceId })),
  internal(UI.quarantineDevice, (fx) => ({ deviceId: fx.ana.deviceId, reason: "matrix" })),
  internal(UI.batchLookupUsers, (fx) => ({ userIds: [fx.ana.userId] })),
  internal(UI.exportUserData, (fx) => ({ userId: fx.ana.userId })),
  internal(MediaInternalService.method.exportUserMedia, (fx) => ({ userId: fx.ana.userId })),
  internal(PostInternalService.method.exportUserPosts, (fx) => ({ userId: fx.ana.userId })),
  internal(ChatInternalService.method.exportUserMessages, (fx) => ({ userId: fx.ana.userId })),
  internal(NotificationInternalService.method.exportUserNotifications, (fx) => ({ userId: fx.ana.userId })),
  internal(ModerationInternalService.method.exportUserReports, (fx) => ({ userId: fx.ana.userId })),

  // --- moderation: anyone may report what they can see; the rest is for moderators.
  viewer(ModerationService.method.createReport, {
    request: (fx) => ({ target: { kind: { case: "postId" as const, value: fx.ana.postId } }, reason: ReportReason.SPAM }),
    blocked: "allowed",
    why: "a report is accepted for any id, seen or not (even one that never existed), so it reveals nothing; a blocked user may report what they saw before the block",
  }),
  staff(ModerationService.method.listReports, () => ({})),
  staff(ModerationService.method.resolveReport, (fx) => ({ reportId: fx.missingId, action: ResolutionAction.DISMISS, reason: "matrix" })),
  staff(ModerationService.method.suspendUser, (fx) => ({ userId: fx.ana.userId, reason: "matrix" })),
  staff(ModerationService.method.unsuspendUser, (fx) => ({ userId: fx.ana.userId, reason: "matrix" })),
  staff(ModerationService.method.getSuspension, (fx) => ({ userId: fx.ana.userId })),
  staff(ModerationService.method.removeContent, (fx) => ({ target: { kind: { case: "postId" as const, value: fx.ana.postId } }, reason: "matrix" })),
  staff(ModerationService.method.restoreContent, (fx) => ({ target: { kind: { case: "postId" as const, value: fx.ana.postId } }, reason: "matrix" })),

  // --- the audit trail: admins only.
  staff(AuditService.method.listAuditEntries, (fx) => ({ subject: fx.ana.userId })),
  staff(AuditService.method.verifyChain, () => ({})),

  // --- timelines and the home screen: the caller's own.
  self(FeedService.method.getHomeFeed, () => ({})),
  self(BffService.method.getHome, () => ({})),

  // --- chat: a conversation exists only for its members.
  member(C.sendMessage, { request: (fx) => ({ target: { case: "conversationId" as const, value: fx.ana.groupId }, ...text("let me in") }), missing: (fx) => ({ target: { case: "conversationId" as const, value: fx.missingId }, ...text("let me in") }) }),
  member(C.sendMessage, {
    variant: "direct to Ana",
    request: (fx) => ({ target: { case: "directUserId" as const, value: fx.ana.userId }, ...text("hello") }),
    missing: (fx) => ({ target: { case: "directUserId" as const, value: fx.missingId }, ...text("hello") }),
    intruder: "allowed",
    why: "anyone may write to anyone, but a user who blocked you does not exist for you",
  }),
  define("viewer", C.createGroup, {
    request: (fx) => ({ title: "a group", memberIds: [fx.ana.userId] }),
    missing: (fx) => ({ title: "a group", memberIds: [fx.missingId] }),
    intruder: "allowed",
    blocked: "hidden",
  }),
  member(C.getConversation, { request: (fx) => ({ conversationId: fx.ana.groupId }), missing: (fx) => ({ conversationId: fx.missingId }) }),
  self(C.listConversations, () => ({})),
  member(C.listMessages, { request: (fx) => ({ conversationId: fx.ana.directId }), missing: (fx) => ({ conversationId: fx.missingId }) }),
  member(C.markRead, { request: (fx) => ({ conversationId: fx.ana.groupId, readSeq: fx.ana.messageSeq }), missing: (fx) => ({ conversationId: fx.missingId, readSeq: fx.ana.messageSeq }) }),
  member(C.setTyping, { request: (fx) => ({ conversationId: fx.ana.groupId }), missing: (fx) => ({ conversationId: fx.missingId }) }),
  member(C.addMembers, { request: (fx) => ({ conversationId: fx.ana.groupId, userIds: [fx.ben.userId] }), missing: (fx) => ({ conversationId: fx.missingId, userIds: [fx.ben.userId] }) }),
  member(C.removeMember, { request: (fx) => ({ conversationId: fx.ana.groupId, userId: fx.dan.userId }), missing: (fx) => ({ conversationId: fx.missingId, userId: fx.dan.userId }) }),
  member(C.leaveConversation, { request: (fx) => ({ conversationId: fx.ana.groupId }), missing: (fx) => ({ conversationId: fx.missingId }) }),
  member(C.updateConversation, { request: (fx) => ({ conversationId: fx.ana.groupId, title: "taken over" }), missing: (fx) => ({ conversationId: fx.missingId, title: "taken over" }) }),
  member(C.setMemberRole, {
    request: (fx) => ({ conversationId: fx.ana.groupId, userId: fx.dan.userId, role: MemberRole.ADMIN }),
    missing: (fx) => ({ conversationId: fx.missingId, userId: fx.dan.userId, role: MemberRole.ADMIN }),
  }),
  self(C.getUnreadCount, () => ({})),
  member(C.editMessage, { request: (fx) => ({ conversationId: fx.ana.groupId, seq: fx.ana.messageSeq, text: "edited" }), missing: (fx) => ({ conversationId: fx.missingId, seq: fx.ana.messageSeq, text: "edited" }) }),
  member(C.deleteMessage, { request: (fx) => ({ conversationId: fx.ana.groupId, seq: fx.ana.messageSeq }), missing: (fx) => ({ conversationId: fx.missingId, seq: fx.ana.messageSeq }) }),
  member(C.addReaction, { request: (fx) => ({ conversationId: fx.ana.groupId, seq: fx.ana.messageSeq, reaction: "👍" }), missing: (fx) => ({ conversationId: fx.missingId, seq: fx.ana.messageSeq, reaction: "👍" }) }),
  member(C.removeReaction, { request: (fx) => ({ conversationId: fx.ana.groupId, seq: fx.ana.messageSeq, reaction: "👍" }), missing: (fx) => ({ conversationId: fx.missingId, seq: fx.ana.messageSeq, reaction: "👍" }) }),

  // --- notifications: every RPC is about the caller's own.
  self(N.listNotifications, () => ({})),
  self(N.getUnreadCount, () => ({})),
  self(N.markSeen, (fx) => ({ upTo: { case: "groupId" as const, value: fx.missingId } }), "moves the caller's own watermark"),
  self(N.getPreferences, () => ({})),
  self(N.updatePreferences, () => ({ onlyFromFollowing: false })),

  // --- realtime: the caller's own stream; presence is shown to anyone but users the subject blocked.
  self(R.subscribe, () => ({}), "the caller's own device stream"),
  self(R.setPresence, () => ({ hint: SetPresenceRequest_Hint.ACTIVE })),
  viewer(R.getPresence, { request: (fx) => ({ userIds: [fx.ana.userId] }), missing: (fx) => ({ userIds: [fx.missingId] }) }),
];

/**
 * Services in the descriptor set that get no cases, and why. Anything else
 * without a case fails the matrix.
 */
export const excludedServices: Record<string, string> = {
  "grpc.health.v1.Health": "the gRPC health protocol: every service answers it without a token by design (probes), and it reveals only SERVING/NOT_SERVING",
  "grpc.reflection.v1.ServerReflection": "gRPC server reflection: describes the contracts (public anyway in gen/openapi.json and gen/docs.html), holds no user data",
  "grpc.reflection.v1alpha.ServerReflection": "the same reflection protocol's older name, for older clients",
  "envoy.service.ratelimit.v3.RateLimitService": "Envoy's rate-limit protocol, served by the ratelimit service to Envoy alone; it holds no user data and is never routed at the edge",
};
