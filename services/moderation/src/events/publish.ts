// The moderation service's events, written to the outbox in the transaction
// of the change they describe (the relay publishes them). Each names the
// actor, the subject, the reason and the time, for the audit log.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Tx } from "@aviary/runtime/db/database";
import { enqueueEvent } from "@aviary/runtime/outbox/enqueue";
import type { ContentTarget, Report } from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import {
  ContentRemovedSchema,
  ContentRestoredSchema,
  ReportCreatedSchema,
  ReportResolvedSchema,
  UserSuspendedSchema,
  UserUnsuspendedSchema,
} from "@aviary/gen/aviary/events/v1/moderation_events_pb";
import { outboxEvents } from "../store/schema.ts";

/** The default topic (MODERATION_EVENTS_TOPIC). Keys: report id, suspended user id, content id. */
export const moderationEventsTopic = "aviary.moderation.events";

export interface ActionEvent {
  actorId: string;
  reason: string;
  at: Date;
}

export interface ModerationEvents {
  reportCreated(tx: Tx, report: Report): Promise<void>;
  reportResolved(tx: Tx, report: Report, actorId: string): Promise<void>;
  userSuspended(tx: Tx, event: ActionEvent & { userId: string; reportId: string }): Promise<void>;
  userUnsuspended(tx: Tx, event: ActionEvent & { userId: string }): Promise<void>;
  contentRemoved(tx: Tx, event: ActionEvent & { target: ContentTarget; targetId: string; reportId: string }): Promise<void>;
  contentRestored(tx: Tx, event: ActionEvent & { target: ContentTarget; targetId: string }): Promise<void>;
}

export function moderationEvents(topic: string): ModerationEvents {
  const tables = { outboxEvents };
  return {
    reportCreated: (tx, report) =>
      enqueueEvent(tx, tables, { topic, key: report.reportId, schema: ReportCreatedSchema, message: create(ReportCreatedSchema, { report }) }),
    reportResolved: (tx, report, actorId) =>
      enqueueEvent(tx, tables, { topic, key: report.reportId, schema: ReportResolvedSchema, message: create(ReportResolvedSchema, { report, actorId }) }),
    userSuspended: (tx, e) =>
      enqueueEvent(tx, tables, {
        topic,
        key: e.userId,
        schema: UserSuspendedSchema,
        message: create(UserSuspendedSchema, { userId: e.userId, actorId: e.actorId, reason: e.reason, reportId: e.reportId, suspendedAt: timestampFromDate(e.at) }),
      }),
    userUnsuspended: (tx, e) =>
      enqueueEvent(tx, tables, {
        topic,
        key: e.userId,
        schema: UserUnsuspendedSchema,
        message: create(UserUnsuspendedSchema, { userId: e.userId, actorId: e.actorId, reason: e.reason, unsuspendedAt: timestampFromDate(e.at) }),
      }),
    contentRemoved: (tx, e) =>
      enqueueEvent(tx, tables, {
        topic,
        key: e.targetId,
        schema: ContentRemovedSchema,
        message: create(ContentRemovedSchema, { target: e.target, actorId: e.actorId, reason: e.reason, reportId: e.reportId, removedAt: timestampFromDate(e.at) }),
      }),
    contentRestored: (tx, e) =>
      enqueueEvent(tx, tables, {
        topic,
        key: e.targetId,
        schema: ContentRestoredSchema,
        message: create(ContentRestoredSchema, { target: e.target, actorId: e.actorId, reason: e.reason, restoredAt: timestampFromDate(e.at) }),
      }),
  };
}
