// The two services the post service asks on its caller's behalf: the user
// service (who may see whom) and the media service (which uploads are
// confirmed). A port, so handlers and the read pipeline can be tested
// without them; the Connect adapter below is what server.ts wires.
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import { MediaService, type Media } from "@aviary/gen/aviary/media/v1/media_pb";
import { createServiceClient } from "@aviary/runtime/interceptors/client";
import { unavailable } from "@aviary/runtime/errors";
import { readyMedia } from "@aviary/runtime/media";
import type { asCaller } from "@aviary/runtime/context";

/** Call options that carry the caller's token, cancellation and remaining deadline. */
export type CallerOptions = ReturnType<typeof asCaller>;

export interface Peers {
  /**
   * Which of `userIds` the caller may see. The user service hides the
   * profiles of users who blocked the caller, so an absent id is a user whose
   * posts the caller must not see (or one without a profile).
   */
  visibleUsers(userIds: readonly string[], call: CallerOptions, options?: VisibilityOptions): Promise<Set<string>>;
  /** The confirmed (ready) media among `mediaIds`, by id; unknown and pending ids are absent. */
  readyMedia(mediaIds: readonly string[], call: CallerOptions): Promise<Map<string, Media>>;
}

export interface VisibilityOptions {
  /** Also hide the users the caller blocked (search does; feeds and posts by id do not). */
  omitBlocked?: boolean;
}

/** The batch RPCs' max_items: larger sets go in slices of this size (one call per 100 ids, not per item). */
const BATCH_LIMIT = 100;

function slices<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += BATCH_LIMIT) out.push(items.slice(i, i + BATCH_LIMIT));
  return out;
}

/**
 * What a failed call to another service becomes. Our caller's own problems
 * (token, deadline, cancellation) keep their code; an unreachable or failing
 * service is UNAVAILABLE with a message naming it, so a read never answers
 * with a silently partial result. Any other code means we sent something the
 * peer refused — our bug: a plain Error, which the errors interceptor logs
 * and reports as INTERNAL.
 */
export function peerFailure(service: string, error: unknown): Error {
  const e = ConnectError.from(error);
  switch (e.code) {
    case Code.Unauthenticated:
    case Code.DeadlineExceeded:
    case Code.Canceled:
      return e;
    case Code.Unavailable:
    case Code.Unknown:
    case Code.Internal:
    case Code.ResourceExhausted:
    case Code.Aborted:
    case Code.DataLoss:
    case Code.Unimplemented:
      return unavailable(`the ${service} service is unavailable, try again later`);
    default:
      return new Error(`${service} service refused a call: ${Code[e.code]} ${e.rawMessage}`);
  }
}

export function connectPeers(urls: { userUrl: string; mediaUrl: string }): Peers {
  const users: Client<typeof UserService> = createServiceClient(UserService, urls.userUrl);
  const media: Client<typeof MediaService> = createServiceClient(MediaService, urls.mediaUrl);
  return {
    async visibleUsers(userIds, call, options) {
      const ids = [...new Set(userIds)];
      if (ids.length === 0) return new Set();
      try {
        const answers = await Promise.all(slices(ids).map((slice) => users.batchGetProfiles({ userIds: slice, omitBlocked: options?.omitBlocked ?? false }, call)));
        return new Set(answers.flatMap((a) => a.profiles.map((p) => p.userId.toLowerCase())));
      } catch (error) {
        throw peerFailure("user", error);
      }
    },
    async readyMedia(mediaIds, call) {
      if (mediaIds.length === 0) return new Map();
      try {
        return await readyMedia(media, mediaIds, call);
      } catch (error) {
        throw peerFailure("media", error);
      }
    },
  };
}

/**
 * Suspended users are invisible to everyone else, like users who blocked the
 * reader: their posts and comments leave every read (GetPost, BatchGetPosts —
 * so every feed —, the profile's ListPostsByAuthor answers "no such user")
 * until they are unsuspended, and nothing is deleted meanwhile.
 */
export function withSuspensions(peers: Peers, suspendedAmong: (userIds: readonly string[]) => Promise<Set<string>>): Peers {
  return {
    ...peers,
    async visibleUsers(userIds, call, options) {
      const suspended = await suspendedAmong(userIds);
      const rest = userIds.filter((id) => !suspended.has(id));
      return rest.length === 0 ? new Set() : peers.visibleUsers(rest, call, options);
    },
  };
}
