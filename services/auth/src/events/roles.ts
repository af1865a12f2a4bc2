// Role and suspension events the auth service writes to its outbox (the audit
// log reads them from the auth topic).
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Tx } from "@aviary/runtime/db/database";
import { enqueueEvent } from "@aviary/runtime/outbox/enqueue";
import type { Role } from "@aviary/runtime/auth/roles";
import { RoleGrantedSchema, RoleRevokedSchema } from "@aviary/gen/aviary/events/v1/role_events_pb";
import { outboxEvents } from "../store/schema.ts";
import { authEventsTopic } from "./publish.ts";

const tables = { outboxEvents };

export function roleGranted(tx: Tx, grant: { userId: string; role: Role; actorId: string; at: Date }): Promise<void> {
  return enqueueEvent(tx, tables, {
    topic: authEventsTopic,
    key: grant.userId,
    schema: RoleGrantedSchema,
    message: create(RoleGrantedSchema, { userId: grant.userId, role: grant.role, actorId: grant.actorId, grantedAt: timestampFromDate(grant.at) }),
  });
}

export function roleRevoked(tx: Tx, revocation: { userId: string; role: Role; actorId: string; at: Date }): Promise<void> {
  return enqueueEvent(tx, tables, {
    topic: authEventsTopic,
    key: revocation.userId,
    schema: RoleRevokedSchema,
    message: create(RoleRevokedSchema, {
      userId: revocation.userId,
      role: revocation.role,
      actorId: revocation.actorId,
      revokedAt: timestampFromDate(revocation.at),
    }),
  });
}
