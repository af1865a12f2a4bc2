import { Code, ConnectError, type Client, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Platform, UserService, type DeviceSchema, type ProfileSchema } from "@aviary/gen/aviary/user/v1/user_pb";
import { MediaPurpose, type MediaService } from "@aviary/gen/aviary/media/v1/media_pb";
import type { Database } from "@aviary/runtime/db/database";
import type { Cache } from "@aviary/runtime/cache/cache";
import { bumpReachVersions } from "@aviary/runtime/cache/reach-versions";
import { asCaller, requirePrincipal } from "@aviary/runtime/context";
import { alreadyExists, failedPrecondition, invalidArgument, notFound, unavailable } from "@aviary/runtime/errors";
import { pageSize, type PageTokens } from "@aviary/runtime/pagination";
import { checkUsername, usernameKey } from "./domain/username.ts";
import { normaliseQuery } from "./domain/search.ts";
import { avatarViolation, canonicalMediaId, malformedMediaId, type AvatarCandidate } from "./domain/avatar.ts";
import {
  blockersAmong,
  ensureProfile,
  findProfile,
  findProfileByUsernameKey,
  lockProfiles,
  replaceNameTails,
  searchProfiles,
  updateProfile,
  type ProfileRow,
  type SearchCursor,
} from "./store/profiles.ts";
import {
  adjustCounts,
  blocksBetween,
  deleteBlock,
  deleteFollow,
  deleteFollowsBetween,
  edgeKey,
  existingFollows,
  insertBlock,
  insertFollow,
  listEdges,
  type EdgeCursor,
} from "./store/graph.ts";
import { userReadStatements, type ProfileWithBlocks } from "./store/read-statements.ts";
import { deleteDevice, listDevices, upsertDevice, type DeviceCursor, type DeviceRow, type PlatformName } from "./store/devices.ts";
import { followCreated, followDeleted, profileUpdated, userBlocked, userUnblocked } from "./events/publish.ts";

/** Everything the handlers need; assembled by server.ts, replaced in tests. */
export interface UserDeps {
  database: Database;
  /** Shared with the services that keep block answers (reach versions: runtime/cache/reach-versions.ts). */
  cache: Cache;
  /** The media service, asked (as the caller) about avatars before they are set. */
  media: Pick<Client<typeof MediaService>, "getMedia">;
  pageTokens: {
    followers: PageTokens;
    following: PageTokens;
    devices: PageTokens;
    search: PageTokens;
  };
  now?: () => Date;
}

const PROFILE_TYPE = "aviary.user.v1.Profile";

/** The profile message; `region` only when the viewer is its owner (it is private). */
export function presentProfile(row: ProfileRow, viewerId: string): MessageInitShape<typeof ProfileSchema> {
  return {
    userId: row.userId,
    username: row.username ?? "",
    displayName: row.displayName,
    bio: row.bio,
    avatarMediaId: row.avatarMediaId ?? "",
    followerCount: BigInt(row.followerCount),
    followingCount: BigInt(row.followingCount),
    createdAt: timestampFromDate(row.createdAt),
    updatedAt: timestampFromDate(row.updatedAt),
    region: row.userId === viewerId ? (row.region ?? "") : "",
  };
}

const platformNames: Record<number, PlatformName> = { [Platform.IOS]: "ios", [Platform.ANDROID]: "android", [Platform.WEB]: "web" };
const platformValues: Record<string, Platform> = { ios: Platform.IOS, android: Platform.ANDROID, web: Platform.WEB };

/** A device as clients (and, through UserInternalService, other services) see it. */
export function presentDevice(row: DeviceRow): MessageInitShape<typeof DeviceSchema> {
  return {
    deviceId: row.id,
    platform: platformValues[row.platform] ?? Platform.UNSPECIFIED,
    token: row.token,
    createdAt: timestampFromDate(row.createdAt),
    updatedAt: timestampFromDate(row.updatedAt),
    quarantineReason: row.quarantineReason ?? "",
  };
}

/** A unique violation from node-postgres or PGlite, possibly wrapped by drizzle. */
function isUniqueViolation(error: unknown): boolean {
  for (let e: unknown = error; typeof e === "object" && e !== null; e = (e as { cause?: unknown }).cause) {
    if ((e as { code?: unknown }).code === "23505") return true;
  }
  return false;
}

export function createUserHandlers(deps: UserDeps): ServiceImpl<typeof UserService> {
  const now = deps.now ?? (() => new Date());
  const { db } = deps.database;
  const bumpReach = async (userIds: string[], failure: string) => {
    try {
      await bumpReachVersions(deps.cache, userIds);
    } catch (error) {
      throw new ConnectError(failure, Code.Unavailable, undefined, undefined, error);
    }
  };

  /**
   * The profile `userId` as `viewerId` may see it: NOT_FOUND when absent or
   * when its user blocked the viewer. (Users the viewer blocked stay visible
   * by id and username, so they can be unblocked; search and follow lists
   * leave them out.)
   */
  async function visibleProfile(viewerId: string, userId: string): Promise<ProfileRow> {
    let row = await findProfile(db, userId);
    if (row === undefined && userId === viewerId) {
      // The caller's own profile: their token proves the account exists, so a
      // lagging UserRegistered consumer must not make it "not found". Only on a
      // miss: a read should not write on every call.
      await ensureProfile(db, viewerId, now());
      row = await findProfile(db, userId);
    }
    if (row === undefined || (userId !== viewerId && (await blockersAmong(db, viewerId, [userId])).has(userId))) {
      throw notFound("no such user", { type: PROFILE_TYPE, name: userId });
    }
    return row;
  }

  /**
   * The avatar media id to store for `requested` ("" clears it: null). The
   * media service must report it ready, the caller's, and made for avatars.
   */
  async function checkedAvatar(requested: string, userId: string, context: HandlerContext): Promise<string | null> {
    if (requested === "") return null;
    const mediaId = canonicalMediaId(requested);
    if (mediaId === undefined) throw invalidArgument([malformedMediaId()]);
    let media: AvatarCandidate | undefined;
    try {
      const found = (await deps.media.getMedia({ mediaId }, asCaller(context))).media;
      if (found !== undefined) media = { ownerId: found.ownerId, purpose: found.purpose === MediaPurpose.AVATAR ? "avatar" : "other" };
    } catch (error) {
      const failure = ConnectError.from(error);
      // The caller's own deadline or cancellation stays what it is.
      if (failure.code === Code.DeadlineExceeded || failure.code === Code.Canceled) throw failure;
      // Unknown and unconfirmed media are both NOT_FOUND there; anything else means we cannot tell.
      if (failure.code !== Code.NotFound) throw unavailable("cannot check the avatar with the media service; try again");
    }
    const problem = avatarViolation(media, userId);
    if (problem !== undefined) throw invalidArgument([problem]);
    return mediaId;
  }

  async function listPage(direction: "followers" | "following", request: { userId: string; pageSize: number; pageToken: string }, viewerId: string) {
    await visibleProfile(viewerId, request.userId);
    const tokens = deps.pageTokens[direction];
    const limit = pageSize(request.pageSize, { default: 20, max: 100 });
    const after = request.pageToken === "" ? undefined : tokens.decode(request.pageToken, parseTimeCursor);
    const rows = await listEdges(db, direction, request.userId, viewerId, limit + 1, after);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      entries: page.map((r) => ({ profile: presentProfile(r.profile, viewerId), followedAt: timestampFromDate(r.followedAt) })),
      nextPageToken:
        rows.length > limit && last !== undefined
          ? tokens.encode({ createdAt: last.followedAt.toISOString(), id: last.profile.userId } satisfies EdgeCursor)
          : "",
    };
  }

  return {
    async getProfile(request, context) {
      const principal = requirePrincipal(context);
      return { profile: presentProfile(await visibleProfile(principal.userId, request.userId), principal.userId) };
    },

    async getProfileByUsername(request, context) {
      const principal = requirePrincipal(context);
      const row = await findProfileByUsernameKey(db, usernameKey(request.username));
      if (row === undefined) throw notFound("no such user", { type: PROFILE_TYPE, name: request.username });
      return { profile: presentProfile(await visibleProfile(principal.userId, row.userId), principal.userId) };
    },

    async batchGetProfiles(request, context) {
      const principal = requirePrincipal(context);
      const ids = [...new Set(request.userIds.map((id) => id.toLowerCase()))];
      const rows = await userReadStatements(db).profilesFor(principal.userId, ids);
      const hidden = (row: ProfileWithBlocks) => row.blocksViewer || (request.omitBlocked && row.blockedByViewer);
      return { profiles: rows.filter((row) => !hidden(row)).map((row) => presentProfile(row.profile, principal.userId)) };
    },

    async updateProfile(request, context) {
      const principal = requirePrincipal(context);
      const changes: Parameters<typeof updateProfile>[2] = {};
      const changed: string[] = [];
      if (request.username !== undefined) {
        const check = checkUsername(request.username);
        if (!check.ok) throw invalidArgument([{ field: "username", description: check.description, reason: check.reason }]);
        changes.username = check.username;
        changes.usernameKey = check.key;
        changed.push("username");
      }
      if (request.displayName !== undefined) {
        changes.displayName = request.displayName.trim();
        changed.push("display_name");
      }
      if (request.bio !== undefined) {
        changes.bio = request.bio;
        changed.push("bio");
      }
      if (request.avatarMediaId !== undefined) {
        // Checked last: the other fields' errors need no call to the media service.
        changes.avatarMediaId = await checkedAvatar(request.avatarMediaId, principal.userId, context);
        changed.push("avatar_media_id");
      }
      const at = now();
      await ensureProfile(db, principal.userId, at);
      if (changed.length === 0) return { profile: presentProfile(await visibleProfile(principal.userId, principal.userId), principal.userId) };
      if (changes.usernameKey !== undefined && changes.usernameKey !== null) {
        const holder = await findProfileByUsernameKey(db, changes.usernameKey);
        if (holder !== undefined && holder.userId !== principal.userId) throw alreadyExists("username is taken");
      }
      try {
        const row = await db.transaction(async (tx) => {
          const updated = await updateProfile(tx, principal.userId, changes, at);
          if (updated === undefined) throw notFound("no such user");
          if (changes.displayName !== undefined) await replaceNameTails(tx, principal.userId, changes.displayName);
          await profileUpdated(tx, updated, changed);
          return updated;
        });
        return { profile: presentProfile(row, principal.userId) };
      } catch (error) {
        // Two users racing for one name: the unique index decides.
        if (isUniqueViolation(error)) throw alreadyExists("username is taken");
        throw error;
      }
    },

    async searchUsers(request, context) {
      const principal = requirePrincipal(context);
      const query = normaliseQuery(request.query);
      if (query === "") throw invalidArgument([{ field: "query", description: "must contain a name to search for", reason: "REQUIRED" }]);
      const limit = pageSize(request.pageSize, { default: 20, max: 50 });
      const after = request.pageToken === "" ? undefined : deps.pageTokens.search.decode(request.pageToken, (v) => parseSearchCursor(v, query));
      const rows = await searchProfiles(db, principal.userId, query, limit + 1, after);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        profiles: page.map((row) => presentProfile(row, principal.userId)),
        nextPageToken: rows.length > limit && last !== undefined ? deps.pageTokens.search.encode({ q: query, rank: last.rank, id: last.userId }) : "",
      };
    },

    async follow(request, context) {
      const principal = requirePrincipal(context);
      const edge = { followerId: principal.userId, followeeId: request.userId.toLowerCase() };
      if (edge.followeeId === edge.followerId) throw invalidArgument([{ field: "user_id", description: "cannot follow yourself", reason: "SELF" }]);
      const at = now();
      await ensureProfile(db, principal.userId, at);
      await db.transaction(async (tx) => {
        // Both profiles locked: counters, block checks and the edge change together.
        const locked = await lockProfiles(tx, [edge.followerId, edge.followeeId]);
        if (!locked.some((p) => p.userId === edge.followeeId)) throw notFound("no such user", { type: PROFILE_TYPE, name: edge.followeeId });
        const { aBlockedB, bBlockedA } = await blocksBetween(tx, edge.followerId, edge.followeeId);
        // A blocker is invisible to the blocked user: same answer as an unknown user.
        if (bBlockedA) throw notFound("no such user", { type: PROFILE_TYPE, name: edge.followeeId });
        if (aBlockedB) throw failedPrecondition("you blocked this user; unblock them first");
        if (await insertFollow(tx, edge, at)) {
          await adjustCounts(tx, edge, 1);
          await followCreated(tx, edge.followerId, edge.followeeId, at);
        }
      });
      return {};
    },

    async unfollow(request, context) {
      const principal = requirePrincipal(context);
      const edge = { followerId: principal.userId, followeeId: request.userId.toLowerCase() };
      if (edge.followeeId === edge.followerId) throw invalidArgument([{ field: "user_id", description: "cannot unfollow yourself", reason: "SELF" }]);
      const at = now();
      await db.transaction(async (tx) => {
        await lockProfiles(tx, [edge.followerId, edge.followeeId]);
        if (await deleteFollow(tx, edge)) {
          await adjustCounts(tx, edge, -1);
          await followDeleted(tx, edge.followerId, edge, "unfollow", at);
        }
      });
      return {};
    },

    async listFollowers(request, context) {
      const principal = requirePrincipal(context);
      const { entries, nextPageToken } = await listPage("followers", request, principal.userId);
      return { followers: entries, nextPageToken };
    },

    async listFollowing(request, context) {
      const principal = requirePrincipal(context);
      const { entries, nextPageToken } = await listPage("following", request, principal.userId);
      return { following: entries, nextPageToken };
    },

    async checkFollows(request, context) {
      requirePrincipal(context);
      const pairs = request.pairs.map((p) => ({ followerId: p.followerId.toLowerCase(), followeeId: p.followeeId.toLowerCase() }));
      const found = await existingFollows(db, pairs);
      return { results: pairs.map((p) => ({ ...p, follows: found.has(edgeKey(p)) })) };
    },

    async block(request, context) {
      const principal = requirePrincipal(context);
      const blockedId = request.userId.toLowerCase();
      if (blockedId === principal.userId) throw invalidArgument([{ field: "user_id", description: "cannot block yourself", reason: "SELF" }]);
      const at = now();
      await ensureProfile(db, principal.userId, at);
      await db.transaction(async (tx) => {
        const locked = await lockProfiles(tx, [principal.userId, blockedId]);
        if (!locked.some((p) => p.userId === blockedId)) throw notFound("no such user", { type: PROFILE_TYPE, name: blockedId });
        if (!(await insertBlock(tx, principal.userId, blockedId, at))) return;
        for (const edge of await deleteFollowsBetween(tx, principal.userId, blockedId)) {
          await adjustCounts(tx, edge, -1);
          await followDeleted(tx, principal.userId, edge, "block", at);
        }
        await userBlocked(tx, principal.userId, blockedId, at);
        // Reach versions (runtime/cache/reach-versions.ts), so that a service
        // that kept "may write" for these two asks again. Once before the
        // commit: without the cache nothing is written.
        await bumpReach([principal.userId, blockedId], "the cache is unavailable, nothing was saved: retry");
      });
      // And once after it: an answer asked for while the transaction was
      // still open saw no block and may have been kept under the first
      // bump. Also when the block stood already, so a retry completes a
      // bump that failed here.
      await bumpReach([principal.userId, blockedId], "the block is saved, but other services may not have seen it yet: retry");
      return {};
    },

    async unblock(request, context) {
      const principal = requirePrincipal(context);
      const blockedId = request.userId.toLowerCase();
      await db.transaction(async (tx) => {
        // Only a block that existed is an event (unblocking twice is one unblock).
        // No reach bump: kept answers only ever allow, and this one gives reach back.
        if (await deleteBlock(tx, principal.userId, blockedId)) await userUnblocked(tx, principal.userId, blockedId, now());
      });
      return {};
    },

    async registerDevice(request, context) {
      const principal = requirePrincipal(context);
      const platform = platformNames[request.platform];
      if (platform === undefined) throw invalidArgument([{ field: "platform", description: "must be a known platform", reason: "DEFINED_ENUM" }]);
      // The session is recorded so push can skip a device whose session holds a foreground stream.
      const row = await upsertDevice(db, { userId: principal.userId, platform, token: request.token, sessionId: principal.sessionId }, now());
      return { device: presentDevice(row) };
    },

    async listDevices(request, context) {
      const principal = requirePrincipal(context);
      const limit = pageSize(request.pageSize, { default: 20, max: 100 });
      const after = request.pageToken === "" ? undefined : deps.pageTokens.devices.decode(request.pageToken, parseTimeCursor);
      const rows = await listDevices(db, principal.userId, limit + 1, after);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        devices: page.map(presentDevice),
        nextPageToken:
          rows.length > limit && last !== undefined
            ? deps.pageTokens.devices.encode({ createdAt: last.createdAt.toISOString(), id: last.id } satisfies DeviceCursor)
            : "",
      };
    },

    async removeDevice(request, context) {
      const principal = requirePrincipal(context);
      // Someone else's device and no device look the same.
      if (!(await deleteDevice(db, principal.userId, request.deviceId.toLowerCase()))) throw notFound("no such device");
      return {};
    },
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function parseTimeCursor(value: unknown): { createdAt: string; id: string } {
  if (typeof value === "object" && value !== null) {
    const { createdAt, id } = value as Record<string, unknown>;
    if (typeof createdAt === "string" && !Number.isNaN(Date.parse(createdAt)) && typeof id === "string" && UUID.test(id)) return { createdAt, id };
  }
  throw new Error("malformed cursor");
}

/** A search cursor only continues the query it was minted for. */
function parseSearchCursor(value: unknown, query: string): SearchCursor {
  if (typeof value === "object" && value !== null) {
    const { q, rank, id } = value as Record<string, unknown>;
    if (q === query && typeof rank === "number" && Number.isInteger(rank) && typeof id === "string" && UUID.test(id)) return { rank, id };
  }
  throw new Error("malformed search cursor");
}
