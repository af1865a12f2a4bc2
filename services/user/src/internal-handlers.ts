// UserInternalService: reads and push-delivery upkeep for other services,
// authorised by service tokens (scopes), never by a user's token. Only
// procedures listed in internalProcedures accept service tokens (see server.ts).
import type { ServiceImpl } from "@connectrpc/connect";
import { timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { UserInternalService } from "@aviary/gen/aviary/user/v1/user_internal_pb";
import { requireServiceScope } from "@aviary/runtime/context";
import type { Database } from "@aviary/runtime/db/database";
import { invalidArgument } from "@aviary/runtime/errors";
import { listDeliverableDevicesOfUsers, quarantineDevice, retireDevice, type DeviceRow } from "./store/devices.ts";
import { findProfile, findSummaries } from "./store/profiles.ts";
import { devicesPage, relationsPage, type RelationKind, type RelationRow } from "./store/export.ts";
import { exportScope, keysetRows } from "@aviary/runtime/export";
import { proceduresOf } from "@aviary/runtime/service-config";
import { usernameKey } from "./domain/username.ts";
import { presentDevice, presentProfile } from "./handlers.ts";

/** The scope a service token needs for BatchGetDevices. */
export const devicesReadScope = "user.devices.read";
/** The scope a service token needs for RetireDevice and QuarantineDevice. */
export const devicesWriteScope = "user.devices.write";
/** The scope a service token needs for BatchLookupUsers. */
export const profilesReadScope = "user.profiles.read";

/** The scope a service token needs for ExportUserData (the auth service's exporter). */
export const userExportScope = exportScope("user");

/** The procedures that take service tokens: all of UserInternalService, nothing of UserService. */
export const internalProcedures = proceduresOf(UserInternalService);

export function createUserInternalHandlers(deps: { database: Database; now?: () => Date }): ServiceImpl<typeof UserInternalService> {
  const now = deps.now ?? (() => new Date());
  const { db } = deps.database;

  return {
    async batchGetDevices(request, context) {
      requireServiceScope(context, devicesReadScope);
      // Validation already bounds the list (≤ 100 UUIDs); duplicates and case are folded here.
      const userIds = distinct(request.userIds.map((id) => id.toLowerCase()));
      const rows = await listDeliverableDevicesOfUsers(db, userIds);
      return { devices: rows.map((row) => ({ userId: row.userId, device: presentDevice(row), sessionId: row.sessionId ?? "" })) };
    },

    async retireDevice(request, context) {
      requireServiceScope(context, devicesWriteScope);
      const goneSince = request.goneSince === undefined ? now() : checkedTime(request.goneSince, "gone_since");
      return { deleted: await retireDevice(db, request.deviceId.toLowerCase(), goneSince) };
    },

    async quarantineDevice(request, context) {
      requireServiceScope(context, devicesWriteScope);
      // Validation requires a reason; one of only spaces says nothing either.
      const reason = request.reason.trim();
      if (reason === "") throw invalidArgument([{ field: "reason", description: "must name the provider's reason", reason: "REQUIRED" }]);
      return { quarantined: await quarantineDevice(db, request.deviceId.toLowerCase(), reason, now()) };
    },

    async batchLookupUsers(request, context) {
      requireServiceScope(context, profilesReadScope);
      // Both lists empty asks for nobody: an empty answer, not an error, so a
      // caller with no mentions to resolve needs no special case.
      const userIds = distinct(request.userIds.map((id) => id.toLowerCase()));
      // Keys as GetProfileByUsername makes them ("@Ada" finds "ada"); "" matches nobody.
      const keys = distinct(request.usernames.map(usernameKey).filter((key) => key !== ""));
      const rows = await findSummaries(db, userIds, keys);
      return { users: rows.map((row) => ({ userId: row.userId, username: row.username ?? "", displayName: row.displayName })) };
    },

    async *exportUserData(request, context) {
      requireServiceScope(context, userExportScope);
      const userId = request.userId.toLowerCase();
      const profile = await findProfile(db, userId);
      // As its owner sees it (the region included): the export goes to the owner.
      if (profile !== undefined) yield { item: { case: "profile", value: presentProfile(profile, userId) } };
      for (const kind of ["following", "follower", "blocked"] as const satisfies readonly RelationKind[]) {
        for await (const row of keysetRows<RelationRow>((after, limit) => relationsPage(db, kind, userId, after, limit))) {
          yield { item: { case: kind, value: { userId: row.userId, since: timestampFromDate(row.since) } } };
        }
      }
      for await (const row of keysetRows<DeviceRow>((after, limit) => devicesPage(db, userId, after, limit))) {
        // The push token stays out: it addresses the device, and anyone holding it could push to it.
        const { deviceId, platform, createdAt, updatedAt } = presentDevice(row);
        yield { item: { case: "device", value: { deviceId, platform, createdAt, updatedAt } } };
      }
    },
  };
}

function distinct(values: readonly string[]): string[] {
  return [...new Set(values)];
}

/** A timestamp as a Date; INVALID_ARGUMENT on `field` when it is outside what a Date holds. */
function checkedTime(value: Timestamp, field: string): Date {
  const at = timestampDate(value);
  if (Number.isNaN(at.getTime())) throw invalidArgument([{ field, description: "must be a valid time", reason: "TIMESTAMP" }]);
  return at;
}
