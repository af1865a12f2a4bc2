// The list and the unread count. The page, the count and the watermark come
// from one statement (one snapshot), so the unread flags on a page and the
// count next to it are one consistent state even while notifications arrive.
import type { Client, HandlerContext } from "@connectrpc/connect";
import type { NotificationGroup } from "@aviary/gen/aviary/notification/v1/notification_pb";
import type { UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import { asCaller } from "@aviary/runtime/context";
import type { Database, Queryable } from "@aviary/runtime/db/database";
import { fromDependency } from "@aviary/runtime/errors";
import { listedKinds, type KindName } from "../domain/kinds.ts";
import { effectiveChannels } from "../domain/preferences.ts";
import { groupPage, type GroupRow } from "../store/notifications.ts";
import { loadPreferences } from "../store/preferences.ts";
import { presentGroup } from "./present.ts";

export interface ListDeps {
  database: Database;
  users: Client<typeof UserService>;
}

/** The kinds a read covers: those asked for (all listed kinds when none), minus those the user turned off in-app. */
export async function visibleKinds(db: Queryable, userId: string, requested: readonly KindName[]): Promise<KindName[]> {
  const preferences = await loadPreferences(db, userId);
  const asked = requested.length === 0 ? listedKinds : requested;
  return listedKinds.filter((kind) => asked.includes(kind) && effectiveChannels(preferences, kind).inApp);
}

export interface ListedPage {
  groups: NotificationGroup[];
  /** The last group's seq when more may follow. */
  nextBeforeSeq: number | undefined;
  unreadCount: number;
}

export async function listPage(deps: ListDeps, ctx: HandlerContext, userId: string, requested: readonly KindName[], size: number, beforeSeq: number | undefined): Promise<ListedPage> {
  const db = deps.database.db;
  const { rows, unread, seenSeq: seen } = await groupPage(db, userId, await visibleKinds(db, userId, requested), size + 1, beforeSeq);
  const page = rows.slice(0, size);
  const profiles = await sampleProfiles(deps, ctx, page);
  return {
    groups: page.map((row) => presentGroup(row, seen, profiles)),
    nextBeforeSeq: rows.length > size ? page[page.length - 1]!.latestSeq : undefined,
    unreadCount: unread,
  };
}

/** The sample actors' profiles, one batch call made as the caller (the user service applies its own visibility rules). */
async function sampleProfiles(deps: ListDeps, ctx: HandlerContext, page: readonly GroupRow[]) {
  const userIds = [...new Set(page.flatMap((row) => row.sampleActorIds))];
  if (userIds.length === 0) return new Map();
  const found = await fromDependency("user", () => deps.users.batchGetProfiles({ userIds }, asCaller(ctx)));
  return new Map(found.profiles.map((profile) => [profile.userId.toLowerCase(), profile]));
}
