import type { ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { PreferencesSchema, type KindPreference, type NotificationService } from "@aviary/gen/aviary/notification/v1/notification_pb";
import { requirePrincipal } from "@aviary/runtime/context";
import type { Database } from "@aviary/runtime/db/database";
import { invalidArgument, notFound } from "@aviary/runtime/errors";
import { pageSize, type PageTokens } from "@aviary/runtime/pagination";
import { allKinds, kindName, kindOf, type KindName } from "./domain/kinds.ts";
import { effectiveChannels, type Channels, type Preferences } from "./domain/preferences.ts";
import { cursorPayload, parseCursor } from "./domain/page-token.ts";
import type { LiveUpdates } from "./events/live.ts";
import { listPage, visibleKinds, type ListDeps } from "./read/list.ts";
import { advanceWatermark, findGroup, seqAt, unreadCount } from "./store/notifications.ts";
import { loadPreferences, updatePreferences } from "./store/preferences.ts";

export interface NotificationDeps extends ListDeps {
  database: Database;
  pageTokens: PageTokens;
  /** Announces a moved watermark to the user's other devices; absent: none. */
  live?: LiveUpdates;
}

export function createNotificationHandlers(deps: NotificationDeps): ServiceImpl<typeof NotificationService> {
  const db = deps.database.db;
  return {
    async listNotifications(request, context) {
      const userId = requirePrincipal(context).userId.toLowerCase();
      const size = pageSize(request.pageSize, { default: 20, max: 50 });
      const kinds = requestedKinds(request.kinds);
      const filter = [...kinds].sort().join(",");
      let beforeSeq: number | undefined;
      if (request.pageToken !== "") {
        const cursor = deps.pageTokens.decode(request.pageToken, parseCursor);
        if (cursor.kinds !== filter) {
          throw invalidArgument([{ field: "page_token", description: "was issued for other kinds", reason: "INVALID_PAGE_TOKEN" }]);
        }
        beforeSeq = cursor.beforeSeq;
      }
      const page = await listPage(deps, context, userId, kinds, size, beforeSeq);
      return {
        groups: page.groups,
        nextPageToken: page.nextBeforeSeq === undefined ? "" : deps.pageTokens.encode(cursorPayload({ beforeSeq: page.nextBeforeSeq, kinds: filter })),
        unreadCount: BigInt(page.unreadCount),
      };
    },

    async getUnreadCount(request, context) {
      const userId = requirePrincipal(context).userId.toLowerCase();
      const kinds = requestedKinds(request.kinds);
      const count = await unreadCount(db, userId, await visibleKinds(db, userId, kinds));
      return { unreadCount: BigInt(count) };
    },

    async markSeen(request, context) {
      const userId = requirePrincipal(context).userId.toLowerCase();
      let seq: number;
      if (request.upTo.case === "groupId") {
        const group = await findGroup(db, userId, request.upTo.value.toLowerCase());
        // Someone else's group is as unknown as a missing one.
        if (group === undefined) throw notFound("no such notification group", { type: "aviary.notification.v1.NotificationGroup", name: request.upTo.value });
        seq = group.latestSeq;
      } else if (request.upTo.case === "time") {
        seq = await seqAt(db, userId, timestampDate(request.upTo.value));
      } else {
        // The validation interceptor rejects a request without up_to; kept for the type.
        throw invalidArgument([{ field: "up_to", description: "one of group_id, time is required", reason: "ONEOF_REQUIRED" }]);
      }
      const advanced = seq > 0 && (await db.transaction((tx) => advanceWatermark(tx, userId, seq)));
      const unread = await unreadCount(db, userId, await visibleKinds(db, userId, []));
      if (advanced) await deps.live?.afterMarkSeen(userId, seq);
      return { unreadCount: BigInt(unread), advanced };
    },

    async getPreferences(_request, context) {
      const userId = requirePrincipal(context).userId.toLowerCase();
      return { preferences: presentPreferences(await loadPreferences(db, userId)) };
    },

    async updatePreferences(request, context) {
      const userId = requirePrincipal(context).userId.toLowerCase();
      const channels = channelChanges(request.kinds);
      const updated = await updatePreferences(db, userId, { channels, onlyFromFollowing: request.onlyFromFollowing }, new Date());
      return { preferences: presentPreferences(updated) };
    },
  };
}

/** The kinds asked for, each once; the validation interceptor already refused unspecified or unknown values. */
function requestedKinds(kinds: readonly number[]): KindName[] {
  return [...new Set(kinds.map((kind) => kindName(kind)))];
}

/** One change per kind; a kind listed twice is ambiguous and refused (nothing is written). */
function channelChanges(kinds: readonly KindPreference[]): Partial<Record<KindName, Channels>> {
  const changes: Partial<Record<KindName, Channels>> = {};
  const violations = [];
  for (const [index, preference] of kinds.entries()) {
    const name = kindName(preference.kind);
    if (changes[name] !== undefined) {
      violations.push({ field: `kinds[${index}].kind`, description: `${name} is listed more than once`, reason: "DUPLICATE" });
      continue;
    }
    changes[name] = { inApp: preference.inApp, push: preference.push };
  }
  if (violations.length > 0) throw invalidArgument(violations);
  return changes;
}

/** Every kind's effective channels, as GetPreferences answers them (also the data export's). */
export function presentPreferences(preferences: Preferences) {
  return create(PreferencesSchema, {
    kinds: allKinds.map((kind) => ({ kind: kindOf(kind), ...effectiveChannels(preferences, kind) })),
    onlyFromFollowing: preferences.onlyFromFollowing,
  });
}
