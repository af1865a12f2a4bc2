// Suspensions and removals, applied in the caller's transaction (SuspendUser
// and friends open one; ResolveReport applies them in its own). Applying an
// action already in force writes nothing and emits nothing; undoing one that
// is not in force is FAILED_PRECONDITION.
import type { Tx } from "@aviary/runtime/db/database";
import { failedPrecondition } from "@aviary/runtime/errors";
import type { Removal, Suspension } from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import { presentRemoval, presentSuspension } from "../domain/present.ts";
import { contentTargetMessage, type ContentKindName, type StoredTarget } from "../domain/targets.ts";
import type { ModerationEvents } from "../events/publish.ts";
import { findRemoval, findSuspension, lockSubject, writeRemoval, writeSuspension } from "../store/actions.ts";

export interface Action {
  moderatorId: string;
  reason: string;
  at: Date;
  /** The report acted on, if any. */
  reportId?: string;
}

export async function suspend(tx: Tx, events: ModerationEvents, userId: string, action: Action): Promise<Suspension> {
  await lockSubject(tx, `user:${userId}`);
  const current = await findSuspension(tx, userId);
  if (current?.suspended === true) return presentSuspension(userId, current);
  const row = await writeSuspension(tx, { userId, suspended: true, reason: action.reason, moderatorId: action.moderatorId, reportId: action.reportId ?? null, changedAt: action.at });
  await events.userSuspended(tx, { userId, actorId: action.moderatorId, reason: action.reason, reportId: action.reportId ?? "", at: action.at });
  return presentSuspension(userId, row);
}

export async function unsuspend(tx: Tx, events: ModerationEvents, userId: string, action: Action): Promise<Suspension> {
  await lockSubject(tx, `user:${userId}`);
  const current = await findSuspension(tx, userId);
  if (current?.suspended !== true) {
    throw failedPrecondition("the user is not suspended", [{ type: "NOT_SUSPENDED", subject: `users/${userId}`, description: "nothing to lift" }]);
  }
  const row = await writeSuspension(tx, { userId, suspended: false, reason: action.reason, moderatorId: action.moderatorId, reportId: null, changedAt: action.at });
  await events.userUnsuspended(tx, { userId, actorId: action.moderatorId, reason: action.reason, at: action.at });
  return presentSuspension(userId, row);
}

export async function removeContent(tx: Tx, events: ModerationEvents, target: StoredTarget<ContentKindName>, action: Action): Promise<Removal> {
  await lockSubject(tx, `${target.kind}:${target.id}`);
  const current = await findRemoval(tx, target);
  if (current?.removed === true) return presentRemoval(current);
  const row = await writeRemoval(tx, {
    targetKind: target.kind,
    targetId: target.id,
    removed: true,
    reason: action.reason,
    moderatorId: action.moderatorId,
    reportId: action.reportId ?? null,
    changedAt: action.at,
  });
  await events.contentRemoved(tx, { target: contentTargetMessage(target), targetId: target.id, actorId: action.moderatorId, reason: action.reason, reportId: action.reportId ?? "", at: action.at });
  return presentRemoval(row);
}

export async function restoreContent(tx: Tx, events: ModerationEvents, target: StoredTarget<ContentKindName>, action: Action): Promise<Removal> {
  await lockSubject(tx, `${target.kind}:${target.id}`);
  const current = await findRemoval(tx, target);
  if (current?.removed !== true) {
    throw failedPrecondition("the content is not removed", [{ type: "NOT_REMOVED", subject: `${target.kind}s/${target.id}`, description: "nothing to restore" }]);
  }
  const row = await writeRemoval(tx, { ...current, removed: false, reason: action.reason, moderatorId: action.moderatorId, reportId: null, changedAt: action.at });
  await events.contentRestored(tx, { target: contentTargetMessage(target), targetId: target.id, actorId: action.moderatorId, reason: action.reason, at: action.at });
  return presentRemoval(row);
}
