// The services chat asks on the caller's behalf (their token, deadline and
// cancellation): the user service (who exists for the caller) and the media
// service (which uploads are the caller's, confirmed). Ports, so the
// handlers can be tested without them (the embedded test hands in a fake).
import type { Client } from "@connectrpc/connect";
import type { UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import type { Media, MediaService } from "@aviary/gen/aviary/media/v1/media_pb";
import type { asCaller } from "@aviary/runtime/context";
import { fromDependency } from "@aviary/runtime/errors";
import { readyMedia } from "@aviary/runtime/media";

export type CallerOptions = ReturnType<typeof asCaller>;

export interface ChatUsers {
  /**
   * Which of `userIds` the caller (`callerId`, whose token `call` carries)
   * may talk to: users that exist and where neither blocked the other (the
   * user service leaves both out with omit_blocked). Lower-case ids.
   */
  reachable(callerId: string, userIds: readonly string[], call: CallerOptions): Promise<Set<string>>;
}

export interface ChatMedia {
  /** The confirmed items among `mediaIds`, by lower-case id (unknown and pending ones are absent). */
  ready(mediaIds: readonly string[], call: CallerOptions): Promise<Map<string, Media>>;
}

/** BatchGetProfilesRequest.user_ids max_items. */
const BATCH_LIMIT = 100;

export function chatUsersOver(users: Client<typeof UserService>): ChatUsers {
  return {
    async reachable(_callerId, userIds, call) {
      const ids = [...new Set(userIds)];
      const batches: string[][] = [];
      for (let start = 0; start < ids.length; start += BATCH_LIMIT) batches.push(ids.slice(start, start + BATCH_LIMIT));
      const answers = await fromDependency("user", () => Promise.all(batches.map((batch) => users.batchGetProfiles({ userIds: batch, omitBlocked: true }, call))));
      return new Set(answers.flatMap((answer) => answer.profiles.map((profile) => profile.userId.toLowerCase())));
    },
  };
}

/** BatchGetMedia as the caller; a media service that cannot answer makes the write UNAVAILABLE (nothing is written). */
export function chatMediaOver(media: Pick<Client<typeof MediaService>, "batchGetMedia">): ChatMedia {
  return {
    ready: (mediaIds, call) => (mediaIds.length === 0 ? Promise.resolve(new Map()) : fromDependency("media", () => readyMedia(media, mediaIds, call))),
  };
}
