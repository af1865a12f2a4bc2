// UserInternalService: reads for other services, authorised by service tokens
// (scopes), never by a user's token. Only procedures listed in
// internalProcedures accept service tokens (see server.ts).
import type { ServiceImpl } from "@connectrpc/connect";
import { UserInternalService } from "@aviary/gen/aviary/user/v1/user_internal_pb";
import { requireServiceScope } from "@aviary/runtime/context";
import type { Database } from "@aviary/runtime/db/database";
import { listDevicesOfUsers } from "./store/devices.ts";
import { presentDevice } from "./handlers.ts";

/** The scope a service token needs for BatchGetDevices. */
export const devicesReadScope = "user.devices.read";

/** The procedures that take service tokens: all of UserInternalService, nothing of UserService. */
export const internalProcedures = UserInternalService.methods.map((method) => `${UserInternalService.typeName}/${method.name}`);

export function createUserInternalHandlers(deps: { database: Database }): ServiceImpl<typeof UserInternalService> {
  return {
    async batchGetDevices(request, context) {
      requireServiceScope(context, devicesReadScope);
      // Validation already bounds the list (≤ 100 UUIDs); duplicates and case are folded here.
      const userIds = [...new Set(request.userIds.map((id) => id.toLowerCase()))];
      const rows = await listDevicesOfUsers(deps.database.db, userIds);
      return { devices: rows.map((row) => ({ userId: row.userId, device: presentDevice(row) })) };
    },
  };
}
