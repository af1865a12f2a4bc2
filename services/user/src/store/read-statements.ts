// BatchGetProfiles' query, prepared (see services/runtime/src/db/prepared.ts):
// it runs on every GetHomeFeed hydration and every post read's visibility
// check. One statement answers both what was two queries (the profiles, then
// the blocks between them and the viewer), each block a primary-key probe.
import { sql } from "drizzle-orm";
import type { Db } from "@aviary/runtime/db/database";
import { idArray, perDatabase } from "@aviary/runtime/db/prepared";
import { blocks, profiles } from "./schema.ts";
import type { ProfileRow } from "./profiles.ts";

export interface ProfileWithBlocks {
  profile: ProfileRow;
  /** The profile's user blocked the viewer. */
  blocksViewer: boolean;
  /** The viewer blocked the profile's user. */
  blockedByViewer: boolean;
}

export interface UserReadStatements {
  /** The profiles among `userIds` (validated uuids), each with the blocks between it and the viewer. */
  profilesFor(viewerId: string, userIds: readonly string[]): Promise<ProfileWithBlocks[]>;
}

export const userReadStatements = perDatabase((db: Db): UserReadStatements => {
  const viewer = sql.placeholder("viewer");
  const withBlocks = db
    .select({
      profile: profiles,
      blocksViewer: sql<boolean>`exists (select 1 from ${blocks} where ${blocks.blockerId} = ${profiles.userId} and ${blocks.blockedId} = ${viewer}::uuid)`,
      blockedByViewer: sql<boolean>`exists (select 1 from ${blocks} where ${blocks.blockerId} = ${viewer}::uuid and ${blocks.blockedId} = ${profiles.userId})`,
    })
    .from(profiles)
    .where(sql`${profiles.userId} = any(${sql.placeholder("ids")}::uuid[])`)
    .prepare("user_profiles_with_blocks");
  return {
    profilesFor: (viewerId, userIds) => (userIds.length === 0 ? Promise.resolve([]) : withBlocks.execute({ viewer: viewerId, ids: idArray(userIds) })),
  };
});
