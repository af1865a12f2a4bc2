// What each security event becomes in the log: its kind, who did it, to whom
// or what, when, and the particulars worth keeping. One rule per event type;
// event types not listed here (on the same topics) are not security events
// and are skipped. An event whose ids or times cannot be trusted throws
// EventDecodeError, which the bus parks on the dead-letter topic.
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { DeliveredEvent } from "@aviary/runtime/bus/bus";
import { decodedEvent, eventTime, eventUuid, optionalEventUuid } from "@aviary/runtime/outbox/fields";
import {
  AccountDeletedSchema,
  AccountDeletionCancelledSchema,
  AccountDeletionScheduledSchema,
  DataExportRequestedSchema,
  LoginFailedSchema,
  LoginLimit,
  LoginLockedOutSchema,
  PasswordChangedSchema,
  PasswordResetSchema,
  RecoveryCodeUsedSchema,
  SecondFactorFailedSchema,
  SecondFactorFailure,
  SecondFactorMethod,
  SecondFactorPurpose,
  SessionRevokedReason,
  SessionRevokedSchema,
  SigningKeyRotatedSchema,
  TwoFactorDisabledSchema,
  TwoFactorEnabledSchema,
  UserLoggedInSchema,
  UserRegisteredSchema,
} from "@aviary/gen/aviary/events/v1/auth_events_pb";
import { RoleGrantedSchema, RoleRevokedSchema } from "@aviary/gen/aviary/events/v1/role_events_pb";
import {
  ContentRemovedSchema,
  ContentRestoredSchema,
  ReportCreatedSchema,
  ReportResolvedSchema,
  UserSuspendedSchema,
  UserUnsuspendedSchema,
} from "@aviary/gen/aviary/events/v1/moderation_events_pb";
import { Role } from "@aviary/gen/aviary/auth/v1/options_pb";
import { ReportReason, ResolutionAction, type ContentTarget, type Target } from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import { EventHeaders } from "@aviary/runtime/bus/bus";
import type { EntryFields } from "../domain/chain.ts";

type Recorded = Omit<EntryFields, "kind" | "sourceEventId">;

interface Rule {
  readonly typeName: string;
  readonly kind: string;
  toEntry(event: DeliveredEvent): EntryFields;
}

function rule<Desc extends DescMessage>(schema: Desc, kind: string, record: (message: MessageShape<Desc>, eventId: string) => Recorded): Rule {
  return {
    typeName: schema.typeName,
    kind,
    toEntry(event) {
      const { id, message } = decodedEvent(schema, event);
      return { kind, sourceEventId: id, ...record(message, id) };
    },
  };
}

/** An enum value's name without its prefix, lower-case ("LOGOUT" → "logout"); the number when unknown. */
function nameOf(names: Record<number, string>, value: number): string {
  return (names[value] ?? String(value)).toLowerCase();
}

function targetSubject(target: Target | ContentTarget | undefined, eventId: string): string {
  const kind = target?.kind;
  if (kind?.case === "postId") return `post:${eventUuid(kind.value, "target.post_id", eventId)}`;
  if (kind?.case === "commentId") return `comment:${eventUuid(kind.value, "target.comment_id", eventId)}`;
  if (kind?.case === "userId") return eventUuid(kind.value, "target.user_id", eventId);
  return eventUuid("", "target", eventId);
}

/** Details without the empty values (an absent report id, say). */
function details(values: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== ""));
}

/** Revocations the holder asked for themselves (the others are the system's doing or a moderator's, recorded on their own). */
const selfRevocations = new Set([SessionRevokedReason.LOGOUT, SessionRevokedReason.REVOKED_BY_USER, SessionRevokedReason.PASSWORD_CHANGED, SessionRevokedReason.PASSWORD_RESET]);

const rules: Rule[] = [
  rule(UserRegisteredSchema, "auth.user_registered", (m, id) => {
    const userId = eventUuid(m.userId, "user_id", id);
    return { occurredAt: eventTime(m.registeredAt, "registered_at", id), actorId: userId, subject: userId, details: details({ identity: m.email !== "" ? "email" : m.phone !== "" ? "phone" : "" }) };
  }),
  rule(UserLoggedInSchema, "auth.login_succeeded", (m, id) => {
    const userId = eventUuid(m.userId, "user_id", id);
    return { occurredAt: eventTime(m.loggedInAt, "logged_in_at", id), actorId: userId, subject: userId, details: details({ session_id: m.sessionId, device_name: m.deviceName, ip_address: m.ipAddress }) };
  }),
  rule(LoginFailedSchema, "auth.login_failed", (m, id) => ({
    occurredAt: eventTime(m.failedAt, "failed_at", id),
    actorId: undefined,
    subject: optionalEventUuid(m.userId, "user_id", id) ?? "",
    details: details({ identity: m.identityKind, ip_address: m.ipAddress }),
  })),
  rule(LoginLockedOutSchema, "auth.login_locked_out", (m, id) => ({
    occurredAt: eventTime(m.lockedAt, "locked_at", id),
    actorId: undefined,
    subject: optionalEventUuid(m.userId, "user_id", id) ?? "",
    details: details({
      limit: nameOf(LoginLimit, m.limit),
      identity: m.identityKind,
      ip_address: m.ipAddress,
      locked_until: eventTime(m.lockedUntil, "locked_until", id).toISOString(),
    }),
  })),
  rule(SecondFactorFailedSchema, "auth.second_factor_failed", (m, id) => ({
    occurredAt: eventTime(m.failedAt, "failed_at", id),
    // Someone who knew the password (or holds a session) and got the code wrong: not necessarily the holder.
    actorId: undefined,
    subject: eventUuid(m.userId, "user_id", id),
    details: details({
      method: nameOf(SecondFactorMethod, m.method),
      purpose: nameOf(SecondFactorPurpose, m.purpose),
      failure: nameOf(SecondFactorFailure, m.failure),
      ip_address: m.ipAddress,
    }),
  })),
  rule(PasswordChangedSchema, "auth.password_changed", (m, id) => {
    const userId = eventUuid(m.userId, "user_id", id);
    return { occurredAt: eventTime(m.changedAt, "changed_at", id), actorId: userId, subject: userId, details: {} };
  }),
  rule(PasswordResetSchema, "auth.password_reset", (m, id) => {
    const userId = eventUuid(m.userId, "user_id", id);
    return { occurredAt: eventTime(m.resetAt, "reset_at", id), actorId: userId, subject: userId, details: {} };
  }),
  rule(SessionRevokedSchema, "auth.session_revoked", (m, id) => {
    const userId = eventUuid(m.userId, "user_id", id);
    return {
      occurredAt: eventTime(m.revokedAt, "revoked_at", id),
      actorId: selfRevocations.has(m.reason) ? userId : undefined,
      subject: userId,
      details: details({ session_id: m.sessionId, reason: nameOf(SessionRevokedReason, m.reason) }),
    };
  }),
  rule(SigningKeyRotatedSchema, "auth.signing_key_rotated", (m, id) => ({
    occurredAt: eventTime(m.rotatedAt, "rotated_at", id),
    actorId: undefined,
    subject: `key:${m.kid}`,
    details: details({ activates_at: eventTime(m.activatesAt, "activates_at", id).toISOString() }),
  })),
  rule(TwoFactorEnabledSchema, "auth.two_factor_enabled", (m, id) => {
    const userId = eventUuid(m.userId, "user_id", id);
    return { occurredAt: eventTime(m.enabledAt, "enabled_at", id), actorId: userId, subject: userId, details: details({ method: nameOf(SecondFactorMethod, m.method) }) };
  }),
  rule(TwoFactorDisabledSchema, "auth.two_factor_disabled", (m, id) => {
    const userId = eventUuid(m.userId, "user_id", id);
    return { occurredAt: eventTime(m.disabledAt, "disabled_at", id), actorId: userId, subject: userId, details: details({ proof: nameOf(SecondFactorMethod, m.proof) }) };
  }),
  rule(RecoveryCodeUsedSchema, "auth.recovery_code_used", (m, id) => {
    const userId = eventUuid(m.userId, "user_id", id);
    return { occurredAt: eventTime(m.usedAt, "used_at", id), actorId: userId, subject: userId, details: details({ session_id: m.sessionId, remaining: String(m.remaining) }) };
  }),
  rule(AccountDeletionScheduledSchema, "auth.account_deletion_scheduled", (m, id) => {
    const userId = eventUuid(m.userId, "user_id", id);
    return { occurredAt: eventTime(m.requestedAt, "requested_at", id), actorId: userId, subject: userId, details: details({ purge_at: eventTime(m.purgeAt, "purge_at", id).toISOString() }) };
  }),
  rule(AccountDeletionCancelledSchema, "auth.account_deletion_cancelled", (m, id) => {
    const userId = eventUuid(m.userId, "user_id", id);
    return { occurredAt: eventTime(m.cancelledAt, "cancelled_at", id), actorId: userId, subject: userId, details: {} };
  }),
  rule(DataExportRequestedSchema, "auth.data_export_requested", (m, id) => {
    const userId = eventUuid(m.userId, "user_id", id);
    return {
      occurredAt: eventTime(m.requestedAt, "requested_at", id),
      actorId: userId,
      subject: userId,
      details: details({ export_id: eventUuid(m.exportId, "export_id", id) }),
    };
  }),
  rule(AccountDeletedSchema, "auth.account_deleted", (m, id) => ({
    occurredAt: eventTime(m.deletedAt, "deleted_at", id),
    actorId: undefined,
    subject: eventUuid(m.userId, "user_id", id),
    details: {},
  })),
  rule(RoleGrantedSchema, "auth.role_granted", (m, id) => ({
    occurredAt: eventTime(m.grantedAt, "granted_at", id),
    actorId: optionalEventUuid(m.actorId, "actor_id", id),
    subject: eventUuid(m.userId, "user_id", id),
    details: details({ role: nameOf(Role, m.role) }),
  })),
  rule(RoleRevokedSchema, "auth.role_revoked", (m, id) => ({
    occurredAt: eventTime(m.revokedAt, "revoked_at", id),
    actorId: optionalEventUuid(m.actorId, "actor_id", id),
    subject: eventUuid(m.userId, "user_id", id),
    details: details({ role: nameOf(Role, m.role) }),
  })),
  rule(ReportCreatedSchema, "moderation.report_created", (m, id) => {
    const report = m.report;
    return {
      occurredAt: eventTime(report?.createdAt, "report.created_at", id),
      actorId: eventUuid(report?.reporterId ?? "", "report.reporter_id", id),
      subject: `report:${eventUuid(report?.reportId ?? "", "report.report_id", id)}`,
      details: details({ target: targetSubject(report?.target, id), reason: nameOf(ReportReason, report?.reason ?? 0) }),
    };
  }),
  rule(ReportResolvedSchema, "moderation.report_resolved", (m, id) => {
    const report = m.report;
    return {
      occurredAt: eventTime(report?.resolvedAt, "report.resolved_at", id),
      actorId: eventUuid(m.actorId, "actor_id", id),
      subject: `report:${eventUuid(report?.reportId ?? "", "report.report_id", id)}`,
      details: details({ target: targetSubject(report?.target, id), resolution: nameOf(ResolutionAction, report?.resolution ?? 0), note: report?.resolutionNote ?? "" }),
    };
  }),
  rule(UserSuspendedSchema, "moderation.user_suspended", (m, id) => ({
    occurredAt: eventTime(m.suspendedAt, "suspended_at", id),
    actorId: eventUuid(m.actorId, "actor_id", id),
    subject: eventUuid(m.userId, "user_id", id),
    details: details({ reason: m.reason, report_id: m.reportId }),
  })),
  rule(UserUnsuspendedSchema, "moderation.user_unsuspended", (m, id) => ({
    occurredAt: eventTime(m.unsuspendedAt, "unsuspended_at", id),
    actorId: eventUuid(m.actorId, "actor_id", id),
    subject: eventUuid(m.userId, "user_id", id),
    details: details({ reason: m.reason }),
  })),
  rule(ContentRemovedSchema, "moderation.content_removed", (m, id) => ({
    occurredAt: eventTime(m.removedAt, "removed_at", id),
    actorId: eventUuid(m.actorId, "actor_id", id),
    subject: targetSubject(m.target, id),
    details: details({ reason: m.reason, report_id: m.reportId }),
  })),
  rule(ContentRestoredSchema, "moderation.content_restored", (m, id) => ({
    occurredAt: eventTime(m.restoredAt, "restored_at", id),
    actorId: eventUuid(m.actorId, "actor_id", id),
    subject: targetSubject(m.target, id),
    details: details({ reason: m.reason }),
  })),
];

const byType = new Map(rules.map((r) => [r.typeName, r]));

/** Every kind an entry can have (ListAuditEntries' kind filter accepts only these). */
export const auditKinds: ReadonlySet<string> = new Set(rules.map((r) => r.kind));

/** The entry an event becomes, or undefined for an event that is not a security event. */
export function entryOf(event: DeliveredEvent): EntryFields | undefined {
  return byType.get(event.headers[EventHeaders.type] ?? "")?.toEntry(event);
}
