// Store rows → contract messages.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { NotificationGroupSchema, type NotificationGroup } from "@aviary/gen/aviary/notification/v1/notification_pb";
import type { Profile } from "@aviary/gen/aviary/user/v1/user_pb";
import { kindOf } from "../domain/kinds.ts";
import type { GroupRow } from "../store/notifications.ts";

/** A group as the contract shows it; `profiles` (by user id) fills sample_actors where known. */
export function presentGroup(row: GroupRow, seenSeq: number, profiles?: ReadonlyMap<string, Profile>): NotificationGroup {
  return create(NotificationGroupSchema, {
    groupId: row.id,
    kind: kindOf(row.kind),
    postId: row.postId ?? "",
    latestSourceId: row.latestSourceId ?? "",
    notificationCount: row.notificationCount,
    actorCount: row.actorCount,
    sampleActorIds: row.sampleActorIds,
    sampleActors: profiles === undefined ? [] : row.sampleActorIds.flatMap((id) => profiles.get(id) ?? []),
    latestAt: timestampFromDate(row.latestAt),
    unread: row.latestSeq > seenSeq,
  });
}
