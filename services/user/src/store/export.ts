// One user's share of the user schema, page by page, for ExportUserData.
// Keyset order is the other user's id (unique per user and relation), not
// the time: timestamps are not unique and lose precision as JS dates.
import { and, asc, eq, gt } from "drizzle-orm";
import type { Queryable } from "@aviary/runtime/db/database";
import { blocks, devices, follows } from "./schema.ts";
import type { DeviceRow } from "./devices.ts";

export type RelationKind = "following" | "follower" | "blocked";

export interface RelationRow {
  userId: string;
  since: Date;
}

const relationColumns = {
  following: { table: follows, self: follows.followerId, other: follows.followeeId, since: follows.createdAt },
  follower: { table: follows, self: follows.followeeId, other: follows.followerId, since: follows.createdAt },
  blocked: { table: blocks, self: blocks.blockerId, other: blocks.blockedId, since: blocks.createdAt },
} as const;

export function relationsPage(db: Queryable, kind: RelationKind, userId: string, after: RelationRow | undefined, limit: number): Promise<RelationRow[]> {
  const { table, self, other, since } = relationColumns[kind];
  return db
    .select({ userId: other, since })
    .from(table)
    .where(and(eq(self, userId), after ? gt(other, after.userId) : undefined))
    .orderBy(asc(other))
    .limit(limit);
}

export function devicesPage(db: Queryable, userId: string, after: DeviceRow | undefined, limit: number): Promise<DeviceRow[]> {
  return db
    .select()
    .from(devices)
    .where(and(eq(devices.userId, userId), after ? gt(devices.id, after.id) : undefined))
    .orderBy(asc(devices.id))
    .limit(limit);
}
